"""Which recordings of the public checks' answers the student build needs, and whether they are current.

The student build replaces every ``@oracle`` of a lab's checks by a stub and answers from
``genlab/checks/recorded/labNN.pt`` (``genlab.checks.recorded``). A recording is made by
``make recordings`` (``python -m tests.labs.recordings``): the lab's public checks run on
its solution and on every case of ``tests/labNN/cases.py``. It is current while nothing it
depends on has changed, which its ``digest`` of those sources says.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import nbformat
import torch

from autograder.runner.lab import REPO_ROOT, Lab
from genlab.checks.recorded import Table, table_path

from .stubs import StubError

CHECKS = REPO_ROOT / "shared" / "genlab" / "checks"
#: The checks' shared modules: every lab's answers depend on them.
SHARED_CHECK_MODULES = ("kit.py", "recorded.py", "contract.py")
REMAKE = "make recordings (python -m tests.labs.recordings)"


def check_sources(lab: Lab) -> list[Path]:
    """The lab's own check modules (``labNN.py``, ``labNN_bugs.py``) and the shared ones."""
    own = sorted(CHECKS.glob(f"lab{lab.number}*.py"))
    return own + [CHECKS / name for name in SHARED_CHECK_MODULES]


def solution_notebook(lab: Lab) -> Path:
    return REPO_ROOT / "solutions" / lab.name / lab.release.name


def cases_file(lab: Lab) -> Path:
    return REPO_ROOT / "tests" / f"lab{lab.number}" / "cases.py"


def recording_digest(lab: Lab) -> str:
    """A digest of what lab ``lab``'s recording depends on: its check modules, the solution's
    code cells, its case list and torch's version (which draws the checks' random inputs)."""
    h = hashlib.sha256(f"torch {torch.__version__.split('+')[0]}\n".encode())
    for path in [*check_sources(lab), cases_file(lab)]:
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes() if path.is_file() else b"(missing)")
    nb = nbformat.read(solution_notebook(lab), as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    h.update(json.dumps(code).encode())
    return h.hexdigest()


def recording_problem(lab: Lab) -> str | None:
    """None if lab ``lab``'s recording exists and is current; otherwise what is wrong and the fix."""
    path = table_path(lab.number)
    if not path.is_file():
        return f"{lab.name}: no recording of its public checks' answers at {path}; run {REMAKE}"
    table = Table.load(path)
    if table.digest != recording_digest(lab):
        return (f"{lab.name}: the recording {path.name} is out of date (the checks, the solution's code, the case "
                f"list or torch changed since it was made); run {REMAKE}")
    return None


def require_recordings(labs: Sequence[Lab]) -> None:
    """Raise ``StubError`` naming every lab whose recording is missing or stale."""
    problems = [p for p in (recording_problem(lab) for lab in labs) if p]
    if problems:
        raise StubError("the student build needs current recordings:\n  " + "\n  ".join(problems))
