"""Turn the SUBMISSION arguments of ``genlab grade`` into (student id, notebook) pairs.

Accepted, per argument:

- a file: one submission, student id = the file's stem (``alice.ipynb`` -> ``alice``).
  It need not be a valid notebook: the grader scores a broken one 0 with a reason.
- a folder of notebooks: every ``*.ipynb`` directly inside, id = stem. Other files there
  are listed in ``Discovery.skipped`` (the CLI prints them), not graded.
- an nbgrader tree ``submitted/<student>/<lab>/<notebook>.ipynb`` (the ``submitted``
  folder itself, a course folder that contains it, one ``<student>`` folder, or one
  ``<student>/<lab>`` folder): id = the student folder's name.
- Gradescope's layout: a folder named ``submission`` (``/autograder/submission``), id =
  the first user's email in ``submission_metadata.json`` beside it, else ``submission``.

In a per-student folder (nbgrader or Gradescope) the notebook is the one named like the
lab's release notebook, else the only ``.ipynb`` there, else the only file there. A folder
with no usable file still yields a ``Handin`` whose ``problem`` says why; the batch
scores it 0 with that reason. Hidden files and ``.ipynb_checkpoints`` are ignored.

Two different files with the same student id raise ``DiscoveryError`` (we never rename
silently: the id names the output folder, and a rerun must find it again).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path


class DiscoveryError(ValueError):
    """A SUBMISSION argument that cannot be graded as given (message says how to fix it)."""


@dataclass(frozen=True)
class Handin:
    """One student's hand-in: what the batch grades (not the hidden tests' ``submission``).

    ``notebook`` is None when ``problem`` is set (nothing usable was submitted).
    ``timestamp`` is nbgrader's ``timestamp.txt`` content when there is one.
    """

    student: str
    notebook: Path | None
    layout: str  # "file" | "folder" | "nbgrader" | "gradescope"
    problem: str | None = None
    timestamp: str | None = None


@dataclass
class Discovery:
    submissions: list[Handin] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "path: reason", for the instructor


_SAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def safe_id(raw: str) -> str:
    """A student id usable as a folder name: path separators and odd characters -> '_'."""
    sid = _SAFE.sub("_", raw.strip()).strip("._") or "submission"
    return sid


def _hidden(p: Path) -> bool:
    return p.name.startswith(".") or p.name in {"__MACOSX", "__pycache__"}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not _hidden(p))


def _pick_notebook(folder: Path, release_name: str | None) -> tuple[Path | None, str | None]:
    """The notebook inside one student's folder (searched recursively), or a problem."""
    found = sorted(p for p in folder.rglob("*") if p.is_file()
                   and not any(_hidden(q) or q.name == ".ipynb_checkpoints"
                               for q in p.relative_to(folder).parents if q.name)
                   and not _hidden(p) and p.name != "timestamp.txt")
    notebooks = [p for p in found if p.suffix == ".ipynb"]
    if release_name:
        named = [p for p in notebooks if p.name == release_name]
        if len(named) == 1:
            return named[0], None
    if len(notebooks) == 1:
        return notebooks[0], None
    if notebooks:
        names = ", ".join(str(p.relative_to(folder)) for p in notebooks)
        want = f" Submit only {release_name}." if release_name else ""
        return None, f"Several notebooks were submitted ({names}) and none is the lab's notebook.{want}"
    if len(found) == 1:
        return found[0], None  # not a notebook: the grader says so and scores it 0
    if found:
        names = ", ".join(str(p.relative_to(folder)) for p in found[:5])
        return None, f"No .ipynb notebook was submitted (found: {names})."
    return None, "Nothing was submitted (the folder is empty)."


def _student_entry(student: str, folder: Path, release_name: str | None, layout: str) -> Handin:
    notebook, problem = _pick_notebook(folder, release_name)
    stamp = folder / "timestamp.txt"
    timestamp = stamp.read_text(encoding="utf-8", errors="replace").strip() if stamp.is_file() else None
    return Handin(safe_id(student), notebook, layout, problem, timestamp or None)


def _gradescope_id(folder: Path) -> str:
    meta = folder.parent / "submission_metadata.json"
    try:
        users = json.loads(meta.read_text(encoding="utf-8")).get("users") or []
        user = users[0]
        raw = user.get("email") or user.get("sid") or user.get("id")
        return safe_id(str(raw)) if raw not in (None, "") else "submission"
    except (OSError, ValueError, AttributeError, IndexError, TypeError):
        return "submission"


def _from_folder(folder: Path, lab: str, release_name: str | None, found: Discovery) -> None:
    if (folder / "submitted").is_dir():  # an nbgrader course folder
        folder = folder / "submitted"
    students = [d for d in sorted(folder.iterdir()) if d.is_dir() and not _hidden(d)]
    if any((d / lab).is_dir() for d in students):  # submitted/<student>/<lab>/
        for d in students:
            if (d / lab).is_dir():
                found.submissions.append(_student_entry(d.name, d / lab, release_name, "nbgrader"))
            else:
                found.skipped.append(f"{d}: no '{lab}' folder (this student did not submit the lab)")
        return
    if (folder / lab).is_dir():  # submitted/<student>/
        found.submissions.append(_student_entry(folder.name, folder / lab, release_name, "nbgrader"))
        return
    if folder.name == lab and folder.parent.name:  # submitted/<student>/<lab>/
        found.submissions.append(_student_entry(folder.parent.name, folder, release_name, "nbgrader"))
        return
    if folder.name == "submission" or (folder.parent / "submission_metadata.json").is_file():
        found.submissions.append(_student_entry(_gradescope_id(folder), folder, release_name, "gradescope"))
        return
    files = _files(folder)
    for p in files:
        if p.suffix == ".ipynb":
            found.submissions.append(Handin(safe_id(p.stem), p, "folder"))
        else:
            found.skipped.append(f"{p}: not a .ipynb file")
    for d in students:
        found.skipped.append(f"{d}: a sub-folder (pass it explicitly to grade what is inside)")
    if not any(p.suffix == ".ipynb" for p in files):
        raise DiscoveryError(
            f"{folder} contains no .ipynb notebook and is not an nbgrader submitted/<student>/{lab}/ "
            "tree or a Gradescope submission folder; pass notebook files or such a folder")


def discover(paths: list[Path | str], lab: str, release_name: str | None = None) -> Discovery:
    """Resolve SUBMISSION arguments for lab ``lab`` (its nbgrader assignment name).

    ``release_name`` is the lab's notebook file name (``transformer.ipynb``); in a
    per-student folder it picks the graded notebook among several. Raises
    ``DiscoveryError`` for a missing path or for two files claiming one student id.
    """
    if not paths:
        raise DiscoveryError("no SUBMISSION given: pass notebook files or folders of them")
    found = Discovery()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise DiscoveryError(f"submission path {str(raw)!r} does not exist (check the spelling, "
                                 "or quote paths with spaces)")
        path = path.resolve()
        if path.is_dir():
            _from_folder(path, lab, release_name, found)
        else:
            found.submissions.append(Handin(safe_id(path.stem), path, "file"))
    unique: dict[str, Handin] = {}
    for sub in found.submissions:
        prev = unique.get(sub.student)
        if prev is None:
            unique[sub.student] = sub
        elif (prev.notebook, prev.problem) != (sub.notebook, sub.problem) or prev.notebook is None:
            where = [str(s.notebook or "(folder with no notebook)") for s in (prev, sub)]
            raise DiscoveryError(
                f"two submissions have the student id {sub.student!r}: {where[0]} and {where[1]}. "
                "Rename one of the files (the id is the file's stem, or the student folder's name "
                "in an nbgrader tree), or grade them in separate runs with different --out folders")
    found.submissions = sorted(unique.values(), key=lambda s: s.student)
    return found
