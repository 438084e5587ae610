"""The demo's grading job: ``genlab grade`` on every lab's solution, its untouched release and
the shipped example submissions, and the scores it wrote.

Grading is the autograder's: this module only lays the notebooks out under distinct student
ids (``solution``, ``release``, ``example``), runs ``genlab grade LAB ... --out DIR --jobs N``
in a child process, one lab at a time, and reads back the ``grades.csv`` and the
``result.json`` files the grader wrote. Expected: the solution full marks, the release zero;
an example submission anything in between, with feedback.
"""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["LabNotebooks", "GradeResult", "find_labs", "grade_lab", "repo_root", "failed_tests"]

#: What each kind of submission should score: "full", "zero", or None (anything).
EXPECTED = {"solution": "full", "release": "zero", "example": None}


def repo_root() -> Path:
    """The repository holding ``shared/genlab`` (where ``autograder/``, ``labs/`` and ``solutions/`` are)."""
    return Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class LabNotebooks:
    """One lab and the notebooks the demo grades for it, by student id."""

    name: str
    notebooks: dict[str, Path]


def find_labs(root: Path | None = None, labs: list[str] | None = None) -> list[LabNotebooks]:
    """Every lab in ``root/autograder/lab*/lab.toml`` (or the ``labs`` named), with its solution,
    its release and any example submission in ``root/examples/submissions/<lab>/``.

    Raises ``FileNotFoundError`` without an ``autograder/`` folder (the student build has none),
    and ``ValueError`` for an unknown lab name.
    """
    root = Path(root or repo_root())
    tomls = sorted((root / "autograder").glob("lab*/lab.toml"))
    if not tomls:
        raise FileNotFoundError(f"no autograder/lab*/lab.toml under {root}: grading needs the full repository "
                                "(the student build has no autograder); run the demo with --no-grade")
    found = []
    for path in tomls:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
        name, release = spec["name"], root / spec["release"]
        solution = root / "solutions" / release.relative_to(root / "labs")
        notebooks = {"solution": solution, "release": release}
        examples = sorted((root / "examples" / "submissions" / name).glob("*.ipynb"))
        for i, example in enumerate(examples):
            notebooks["example" if i == 0 else f"example{i + 1}"] = example
        found.append(LabNotebooks(name, notebooks))
    if labs:
        known = {lab.name: lab for lab in found}
        unknown = [n for n in labs if n not in known]
        if unknown:
            raise ValueError(f"unknown lab {', '.join(unknown)}; labs: {', '.join(known)}")
        found = [known[n] for n in labs]
    return found


@dataclass
class GradeResult:
    """One graded notebook: its score and where its feedback is (relative to the demo folder)."""

    lab: str
    student: str
    score: float | None
    max_score: float | None
    feedback: str | None
    expected: str | None
    error: str = ""
    failed: list[dict] = field(default_factory=list)  # the failed tests: name, score, points, message

    @property
    def as_expected(self) -> bool:
        """Whether the score is what this kind of submission should get (see ``EXPECTED``)."""
        if self.score is None or self.max_score is None:
            return False
        if self.expected == "full":
            return self.score == self.max_score
        if self.expected == "zero":
            return self.score == 0
        return True

    def as_dict(self) -> dict:
        return {**asdict(self), "as_expected": self.as_expected}


def failed_tests(result_json: Path) -> list[dict]:
    """The failed tests of a grader ``result.json``: ``name``, ``score``, ``points``, ``message``."""
    if not result_json.is_file():
        return []
    tests = json.loads(result_json.read_text(encoding="utf-8")).get("tests", [])
    return [{k: t.get(k) for k in ("name", "score", "points", "message")} for t in tests
            if t.get("status") == "failed"]


def _kind(student: str) -> str:
    return "example" if student.startswith("example") else student


def grade_lab(lab: LabNotebooks, out: Path, jobs: int = 2, base: Path | None = None) -> tuple[list[GradeResult], float]:
    """Grade ``lab``'s notebooks with ``genlab grade`` into ``out/<lab>/``; the results and the wall time.

    The grader's own output (its progress bar and table) goes to this terminal.
    """
    folder = Path(out) / lab.name
    inbox = folder / "submitted"
    if inbox.exists():
        shutil.rmtree(inbox)
    inbox.mkdir(parents=True)
    copies = []
    for student, notebook in lab.notebooks.items():
        if not notebook.is_file():
            raise FileNotFoundError(f"{notebook} is missing: regenerate it (make labs) or restore it from git")
        copies.append(inbox / f"{student}.ipynb")
        shutil.copyfile(notebook, copies[-1])   # a copy: the grader refuses links
    command = [sys.executable, "-m", "genlab", "grade", lab.name, *map(str, copies), "--out", str(folder),
               "--jobs", str(jobs), "--force"]
    start = time.perf_counter()
    run = subprocess.run(command, cwd=repo_root(), check=False)
    seconds = time.perf_counter() - start
    rows = _read_grades(folder / "grades.csv")
    base = Path(base or out)
    results = []
    for student in lab.notebooks:
        row = rows.get(student)
        feedback = folder / student / "feedback.md"
        if row is None:
            error = f"genlab grade exited with status {run.returncode} and wrote no score for {student}"
        else:
            error = row.get("error") or ""
        results.append(GradeResult(
            lab=lab.name, student=student,
            score=_number(row, "score"), max_score=_number(row, "max_score"),
            feedback=feedback.relative_to(base).as_posix() if feedback.is_file() else None,
            expected=EXPECTED.get(_kind(student)),
            error=error,
            failed=failed_tests(folder / student / "result.json"),
        ))
    return results, seconds


def _read_grades(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def _number(row: dict | None, key: str) -> float | None:
    if not row or row.get(key) in (None, ""):
        return None
    return float(row[key])
