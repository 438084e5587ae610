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

Nothing is graded from outside the submission: a submitted notebook (or a folder on the way
to it) that is a symbolic link, or that resolves outside the student's folder, is that
student's ``problem`` ("a link is not graded"), never followed. Student-made names are
cleaned before they are printed or reported (``text``), a student id is at most
``MAX_ID`` characters (longer ones keep a hash, so they stay distinct), and ``timestamp.txt``
is read only as a small regular file.

Two different files with the same student id raise ``DiscoveryError`` (we never rename
silently: the id names the output folder, and a rerun must find it again).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from . import text

MAX_ID = 80
MAX_STAMP_BYTES = 256
LINK_PROBLEM = ("The submitted {what} {name} is a symbolic link, which is not graded (links can point "
                "outside your submission). Submit the notebook file itself.")


class DiscoveryError(ValueError):
    """A SUBMISSION argument that cannot be graded as given (message says how to fix it)."""


@dataclass(frozen=True)
class Handin:
    """One student's hand-in: what the batch grades (not the hidden tests' ``submission``).

    ``notebook`` is None when ``problem`` is set (nothing usable was submitted).
    ``timestamp`` is nbgrader's ``timestamp.txt`` content when there is one.
    ``parts``: grade only these hidden-test parts (file stems without ``test_``); None: all.
    """

    student: str
    notebook: Path | None
    layout: str  # "file" | "folder" | "nbgrader" | "gradescope"
    problem: str | None = None
    timestamp: str | None = None
    parts: tuple[str, ...] | None = None


@dataclass
class Discovery:
    submissions: list[Handin] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "path: reason", for the instructor


_SAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def safe_id(raw: str) -> str:
    """A student id usable as a folder name: path separators and odd characters -> '_';
    at most ``MAX_ID`` characters (a longer one ends with a hash of the whole id)."""
    sid = _SAFE.sub("_", raw.strip()).strip("._") or "submission"
    if len(sid) > MAX_ID:
        digest = hashlib.sha256(sid.encode("utf-8", "replace")).hexdigest()[:10]
        sid = sid[: MAX_ID - 11].rstrip("._") + "-" + digest
    return sid


def _shown(p: Path, base: Path | None = None) -> str:
    """A student-made path, safe to print (relative to ``base`` when given)."""
    try:
        rel = p.relative_to(base) if base is not None else p
    except ValueError:
        rel = p
    return text.one_line(str(rel), 160)


def _link_problem(what: str, p: Path, base: Path | None = None) -> str:
    return LINK_PROBLEM.format(what=what, name=_shown(p, base))


def _read_stamp(path: Path) -> str | None:
    """nbgrader's ``timestamp.txt``: a small regular file (never a link), as one clean line."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return None
        data = fh.read(MAX_STAMP_BYTES + 1)
    if len(data) > MAX_STAMP_BYTES:
        return None
    return text.one_line(data.decode("utf-8", "replace").strip(), MAX_STAMP_BYTES) or None


def _hidden(p: Path) -> bool:
    return p.name.startswith(".") or p.name in {"__MACOSX", "__pycache__"}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if (p.is_file() or p.is_symlink()) and not _hidden(p))


def _walk(folder: Path) -> list[Path]:
    """Every entry under ``folder`` that is a file or a link (a linked folder is listed, never
    entered), without hidden entries and checkpoints."""
    out = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        keep = []
        for d in dirs:
            if _hidden(Path(d)) or d == ".ipynb_checkpoints":
                continue
            if os.path.islink(os.path.join(root, d)):
                out.append(Path(root, d))   # reported as a link if it is picked, never entered
            else:
                keep.append(d)
        dirs[:] = keep
        out += [Path(root, f) for f in files if not _hidden(Path(f)) and f != "timestamp.txt"]
    return sorted(out)


def _pick_notebook(folder: Path, release_name: str | None) -> tuple[Path | None, str | None]:
    """The notebook inside one student's folder (searched recursively), or a problem."""
    found = _walk(folder)
    notebooks = [p for p in found if p.suffix == ".ipynb"]
    pick = None
    if release_name:
        named = [p for p in notebooks if p.name == release_name]
        if len(named) == 1:
            pick = named[0]
    if pick is None and len(notebooks) == 1:
        pick = notebooks[0]
    if pick is None and notebooks:
        names = ", ".join(_shown(p, folder) for p in notebooks[:10])
        want = f" Submit only {release_name}." if release_name else ""
        return None, f"Several notebooks were submitted ({names}) and none is the lab's notebook.{want}"
    if pick is None and len(found) == 1:
        pick = found[0]  # not a notebook: the grader says so and scores it 0
    if pick is not None:
        return _inside(pick, folder)
    if found:
        names = ", ".join(_shown(p, folder) for p in found[:5])
        return None, f"No .ipynb notebook was submitted (found: {names})."
    return None, "Nothing was submitted (the folder is empty)."


def _inside(path: Path, folder: Path) -> tuple[Path | None, str | None]:
    """``path`` if it is a regular file inside ``folder`` reached without any link, else a problem."""
    if path.is_symlink():
        return None, _link_problem("file", path, folder)
    try:
        real = path.resolve(strict=True)
        root = folder.resolve(strict=True)
    except OSError:
        return None, f"The submitted file {_shown(path, folder)} cannot be read."
    if not real.is_relative_to(root) or real.relative_to(root) != path.relative_to(folder):
        return None, _link_problem("file", path, folder)
    if not path.is_file():
        return None, f"The submitted {_shown(path, folder)} is not a regular file."
    return path, None


def _student_entry(student: str, folder: Path, release_name: str | None, layout: str) -> Handin:
    if folder.is_symlink() or (folder.parent.is_symlink() and layout == "nbgrader"):
        link = folder if folder.is_symlink() else folder.parent
        return Handin(safe_id(student), None, layout, _link_problem("folder", link, link.parent.parent))
    notebook, problem = _pick_notebook(folder, release_name)
    return Handin(safe_id(student), notebook, layout, problem, _read_stamp(folder / "timestamp.txt"))


def _gradescope_id(folder: Path) -> str:
    meta = folder.parent / "submission_metadata.json"
    try:
        if meta.stat().st_size > 1 << 20:
            return "submission"
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
                found.skipped.append(f"{_shown(d)}: no '{lab}' folder (this student did not submit the lab)")
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
            problem = _link_problem("notebook", p, folder) if p.is_symlink() else None
            found.submissions.append(Handin(safe_id(p.stem), None if problem else p, "folder", problem))
        else:
            found.skipped.append(f"{_shown(p)}: not a .ipynb file")
    for d in students:
        found.skipped.append(f"{_shown(d)}: a sub-folder (pass it explicitly to grade what is inside)")
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
        if not path.exists() and not path.is_symlink():
            raise DiscoveryError(f"submission path {text.one_line(repr(str(raw)), 300)} does not exist (check "
                                 "the spelling, or quote paths with spaces)")
        if path.is_symlink() and not path.is_dir():   # a notebook given as a link: not followed
            absolute = Path(os.path.abspath(path))
            found.submissions.append(Handin(safe_id(path.stem), None, "file", _link_problem("notebook", absolute)))
            continue
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
            where = [_shown(s.notebook) if s.notebook else "(a submission with no usable notebook)" for s in (prev, sub)]
            raise DiscoveryError(
                f"two submissions have the student id {sub.student!r}: {where[0]} and {where[1]}. "
                "Rename one of the files (the id is the file's stem, or the student folder's name "
                "in an nbgrader tree), or grade them in separate runs with different --out folders")
    found.submissions = sorted(unique.values(), key=lambda s: s.student)
    return found
