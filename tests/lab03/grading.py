"""Grade a notebook with the real grader, in a fresh process (as ``genlab grade`` does)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from autograder.runner.results import SubmissionResult

LAB = "03_transformer"


def grade(notebook: Path, workdir: Path, student: str = "student") -> SubmissionResult:
    """Run ``autograder.runner.grade_one`` on ``notebook``; return its result (never raises on a bad score)."""
    out = workdir / f"{student}.json"
    log = workdir / f"{student}.log"
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    proc = subprocess.run(
        [sys.executable, "-m", "autograder.runner.grade_one", LAB, str(notebook), "--student", student,
         "--out", str(out), "--log", str(log)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    if not out.is_file():
        raise AssertionError(f"grade_one wrote no result (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = SubmissionResult.from_json(out.read_text(encoding="utf-8"))
    result.log = log.read_text(encoding="utf-8") if log.is_file() else ""  # type: ignore[attr-defined]
    return result


def summary(result: SubmissionResult) -> str:
    """One line per failed test, for assertion messages."""
    lines = [f"score {result.score}/{result.max_score} (pending {result.pending_points}), error={result.error!r}"]
    lines += [f"  {t.status:7s} {t.name}: {t.message[:300]}" for t in result.tests if t.status != "passed"]
    return "\n".join(lines)
