"""The output folder of one lab's batch: the results on disk and the lock that guards them.

Layout under the output folder ``DIR`` (one folder per lab):

    DIR/<student>/result.json    our lossless SubmissionResult (what a rerun reads back)
    DIR/<student>/results.json   Gradescope's schema
    DIR/<student>/feedback.md    for the student
    DIR/<student>/grader.log     the grader's stdout/stderr, for the instructor only
    DIR/<student>/meta.json      notebook path + sha256, exit code, wall time; written last
    DIR/grades.csv               every student in DIR, rewritten after each submission
    DIR/similarity.csv           the instructor's similarity report (``similarity.py``)
    DIR/.lock, DIR/.work/        held (flock) by the one batch writing DIR; its scratch folder

The batch's own names are reserved (``RESERVED``, compared without case): a student whose
id is one of them gets an error result, stored in ``DIR/_<id>/`` (``folder``; ``safe_id``
never starts an id with ``_``), and the batch goes on.

Every file is written atomically (write, fsync, rename). ``meta.json`` is written last
and marks a submission finished: ``ResultStore.is_finished`` is true for a student whose
``meta.json`` says ``complete`` for the same lab and the same notebook bytes (sha256).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path

from . import reports
from .discover import Handin
from .results import SubmissionResult

RESERVED = frozenset({"grades.csv", "similarity.csv", "summary.txt", "gradebook.db"})


class BatchError(RuntimeError):
    """The batch cannot start (output folder in use, or it holds another lab's results)."""


def reserved(student: str) -> bool:
    """Whether ``student`` is a name the batch keeps for its own files."""
    return student.lower() in RESERVED or student.startswith(("_", "."))


def reserved_problem(student: str) -> str:
    return (f"Your submission's name gives the student id {student!r}, which the grader keeps for its own "
            f"files ({', '.join(sorted(RESERVED))}). Rename the notebook (to your student id, for example) "
            "and submit again.")


def folder_name(student: str) -> str:
    """The folder of ``student`` under DIR: the id itself, or ``_<id>`` for a reserved id."""
    return "_" + student if reserved(student) else student


def fingerprint(handin: Handin) -> str:
    """sha256 of the submitted bytes (or of the problem text when nothing usable was sent);
    a hand-in graded on some parts only carries them, so that it never counts as fully graded."""
    if handin.notebook is None:
        return "problem:" + hashlib.sha256((handin.problem or "").encode()).hexdigest()
    h = hashlib.sha256()
    with open(handin.notebook, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest() + (f"|parts={','.join(handin.parts)}" if handin.parts else "")


class ResultStore:
    """The output folder of one lab: reads back finished results, writes new ones."""

    def __init__(self, out_dir: Path, lab: str):
        self.dir = Path(out_dir)
        self.lab = lab
        self.results: dict[str, SubmissionResult] = {}
        self.warnings: list[str] = []
        for path in sorted(self.dir.glob("*/result.json")):
            try:
                r = SubmissionResult.from_json(path.read_text(encoding="utf-8"))
            except (OSError, ValueError, TypeError, KeyError) as e:
                self.warnings.append(f"{path}: unreadable ({e}); that student will be regraded if given")
                continue
            if r.lab != lab:
                raise BatchError(
                    f"{self.dir} already holds results for lab {r.lab!r} ({path.parent.name}); "
                    f"grade {lab!r} into another folder, e.g. --out {self.dir.parent / lab}")
            if folder_name(r.student) != path.parent.name:
                self.warnings.append(f"{path}: holds student {r.student!r}, not {path.parent.name!r}; ignored")
                continue
            self.results[r.student] = r

    def folder(self, student: str) -> Path:
        """Where ``student``'s files live (``folder_name``)."""
        return self.dir / folder_name(student)

    def meta(self, student: str) -> dict | None:
        try:
            return json.loads((self.folder(student) / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def is_finished(self, student: str, sha: str) -> bool:
        m = self.meta(student)
        return (student in self.results and isinstance(m, dict) and m.get("complete") is True
                and m.get("lab") == self.lab and m.get("sha256") == sha)

    def render(self, result: SubmissionResult) -> None:
        """(Re)write the files derived from a result: results.json and feedback.md."""
        d = self.folder(result.student)
        reports.write_atomic(d / "results.json", reports.gradescope_json(result))
        reports.write_atomic(d / "feedback.md", reports.feedback_markdown(result))

    def save(self, result: SubmissionResult, meta: dict, log: str | None) -> None:
        d = self.folder(result.student)
        if log is not None:
            reports.write_atomic(d / "grader.log", log)
        self.render(result)
        reports.write_atomic(d / "result.json", result.to_json() + "\n")
        reports.write_atomic(d / "meta.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
        self.results[result.student] = result
        self.write_csv()

    def write_csv(self) -> None:
        reports.write_atomic(self.dir / "grades.csv", reports.grades_csv(self.results.values()))


class DirLock:
    """An exclusive flock on DIR/.lock: two batches never write one folder at once."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / ".lock"

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise BatchError(f"another `genlab grade` is writing {self.path.parent}; wait for it "
                             "or choose another --out") from None
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
