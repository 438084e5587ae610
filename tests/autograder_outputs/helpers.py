"""Helpers for the batch-layer tests: a fake grader process and notebook makers."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from autograder.runner.batch import LabInfo

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FAKE = HERE / "fake_grade_one.py"
FIXTURE_LAB = REPO / "tests" / "autograder" / "fixture_lab"
FAKE_LAB = LabInfo(name="fakelab", ref="fakelab", notebook="lab.ipynb")


def fake_command(lab, notebook, student, out):
    """GradeCommand running the fake grader (same argv shape as grade_one)."""
    return [sys.executable, str(FAKE), lab.ref, str(notebook), "--student", student, "--out", str(out)]


def make_nb(path: Path, **fake) -> Path:
    """A minimal valid notebook whose metadata tells the fake grader what to do."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {},
                     "outputs": [], "source": "x = 1"}],
          "metadata": {"fake": fake}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def read_trace(path: Path) -> list[tuple[str, str, int, float]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        word, student, pid, t = line.split()
        out.append((word, student, int(pid), float(t)))
    return out
