"""Helpers for the grading-core tests: the fixture lab and submissions built from it.

``fixture_lab/`` holds hidden tests (``test_*.py``) that only the grader may run: pytest
must not collect them here.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder.runner import zygote
from autograder.runner.grade import grade_notebook
from autograder.runner.lab import Lab
from autograder.runner.zygote import WorkerTemplate

collect_ignore = ["fixture_lab"]

FIXTURE = Path(__file__).resolve().parent / "fixture_lab"
SOURCE = FIXTURE / "source" / "fixture.ipynb"
RELEASE = FIXTURE / "release" / "fixture.ipynb"
FULL_MARKS = 8.0      # points of the fixture lab's CPU tests
GPU_POINTS = 1.0      # points of its gpu-marked test

# Anything that would show that the grader leaked hidden tests or their inputs.
LEAK_MARKERS = ("HIDDEN-CANARY", "31337", "def test_", "submission.function", "Traceback",
                "test_softmax.py", "test_add.py", "torch.softmax(x, dim=-1)", "_inputs()",
                "generator=g", "torch.allclose(out, a + b)", "counter.getattr", "isfinite(out)")


@pytest.fixture(scope="session")
def lab() -> Lab:
    return Lab.load(FIXTURE)


@pytest.fixture(scope="session")
def _template(lab):
    template = WorkerTemplate(lab)
    yield template
    template.close()


@pytest.fixture(autouse=True, params=["template"])
def spawn_mode(request, monkeypatch):
    """How workers start: forked from a worker template (``zygote.py``, as in a batch; the
    default here) or, for the tests that parametrise this fixture with ``python``, as a
    fresh ``python worker.py`` (a single ``grade_one``, GPU workers)."""
    if request.param == "template":
        monkeypatch.setenv(zygote.ENV_FD, str(request.getfixturevalue("_template").fd))
    else:
        monkeypatch.delenv(zygote.ENV_FD, raising=False)
    return request.param


#: ``@both_spawn_modes`` on a test: run it with template-forked workers and with fresh ones.
both_spawn_modes = pytest.mark.parametrize("spawn_mode", ["template", "python"], indirect=True)


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def solution_sources() -> dict[str, str]:
    """grade_id -> the source notebook's solution cell."""
    nb = nbformat.read(SOURCE, as_version=4)
    return {grade_id(c): c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")}


def solved_release(replace: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """The release as a student who solved everything submits it, with ``replace`` applied
    (grade_id -> new source; ids that the release lacks are appended as new code cells)."""
    nb = nbformat.read(RELEASE, as_version=4)
    sources = {**solution_sources(), **(replace or {})}
    seen = set()
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid in sources:
            cell.source = sources[gid]
            seen.add(gid)
    for gid, source in (replace or {}).items():
        if gid not in seen:
            nb.cells.append(nbformat.v4.new_code_cell(source))
    return nb


def write_nb(nb, path: Path) -> Path:
    nbformat.write(nb, str(path))
    return path


def lab_copy(tmp_path: Path, limits: dict | None = None, extra_files: dict[str, str] | None = None) -> Lab:
    """A copy of the fixture lab with other limits or extra hidden test files."""
    folder = tmp_path / "lab"
    shutil.copytree(FIXTURE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    if limits:
        text = (folder / "lab.toml").read_text()
        head, _, _ = text.partition("[limits]")
        body = "\n".join(f"{k} = {v}" for k, v in limits.items())
        (folder / "lab.toml").write_text(head + "[limits]\n" + body + "\n")
    for name, text in (extra_files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return Lab.load(folder)


def assert_no_leak(result) -> None:
    """Nothing from the hidden tests (source, inputs, tracebacks) in what students see."""
    texts = [result.to_json(), json.dumps(result.to_gradescope())]
    for text in texts:
        for marker in LEAK_MARKERS:
            assert marker not in text, f"{marker!r} leaked into the result"


def by_name(result) -> dict:
    return {t.name: t for t in result.tests}


@pytest.fixture
def grade(tmp_path, lab):
    """grade(notebook or path, lab=None) -> SubmissionResult, with the no-leak check."""

    def _grade(nb, lab_=None, name="submission.ipynb"):
        path = nb if isinstance(nb, Path) else write_nb(nb, tmp_path / name)
        result = grade_notebook(lab_ or lab, path, "student-1", log=tmp_path / "grading.log")
        assert result.error is None or not result.error.startswith("internal"), result.error
        assert_no_leak(result)
        return result

    return _grade
