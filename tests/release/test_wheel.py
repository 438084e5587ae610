"""What the student wheel holds: no hidden test, probe or solution code, no autograder, and
dependency ranges that keep a student's own torch."""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.release.bundle import all_labs
from autograder.release.library import graded_parts
from autograder.runner.lab import AUTOGRADER_DIR, REPO_ROOT

#: One worker builds the session's bundle and venv once (make test runs pytest-xdist --dist loadgroup).
pytestmark = pytest.mark.xdist_group("release")

LIBRARY = REPO_ROOT / "shared" / "genlab"
MIN_LINE = 30   # shorter lines ("return out", "import torch") are not distinctive


def _wheel_texts(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as zf:
        return {n: zf.read(n).decode("utf-8", "replace") for n in zf.namelist()}


def _library_lines() -> set[str]:
    return {ln.strip() for p in LIBRARY.rglob("*.py") for ln in p.read_text(encoding="utf-8").splitlines()}


def distinctive_lines(text: str, common: set[str]) -> set[str]:
    """Lines of ``text`` long enough to identify it and absent from the full library."""
    return {ln.strip() for ln in text.splitlines()
            if len(ln.strip()) >= MIN_LINE and ln.strip() not in common and not ln.strip().startswith("#")}


def _hidden_files() -> list[Path]:
    return sorted(p for p in AUTOGRADER_DIR.rglob("*.py")
                  if p.name.startswith("test_") or "probes" in p.parts)


def _solution_lines() -> dict[str, set[str]]:
    lines: dict[str, set[str]] = {}
    for nb in sorted((REPO_ROOT / "solutions").glob("*/*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                src = "".join(cell["source"])
                for block in re.findall(r"### BEGIN SOLUTION(.*?)### END SOLUTION", src, flags=re.S):
                    lines.setdefault(nb.parent.name, set()).update(block.splitlines())
    return lines


def _leaks(texts: dict[str, str], needles: set[str]) -> list[str]:
    blob = "\n".join(ln.strip() for t in texts.values() for ln in t.splitlines())
    haystack = set(blob.splitlines())
    return sorted(n for n in needles if n in haystack)


def test_wheel_has_no_autograder_package_and_keeps_the_package_data(bundle):
    names = list(_wheel_texts(bundle.wheel))
    assert not [n for n in names if n.startswith("autograder") or "/autograder/" in n]
    assert not [n for n in names if not n.startswith(("genlab/", "genlab-"))], "only genlab and its dist-info"
    assert {f"genlab/configs/{p.name}" for p in (LIBRARY / "configs").glob("*.yaml")} <= set(names)
    assert "genlab/_graded.py" in names


def test_wheel_holds_no_line_of_a_hidden_test_or_probe(bundle):
    texts, common = _wheel_texts(bundle.wheel), _library_lines()
    hidden = set().union(*(distinctive_lines(p.read_text(encoding="utf-8"), common) for p in _hidden_files()))
    assert len(hidden) > 200, "the search must have something to look for"
    assert _leaks(texts, hidden) == []


def test_the_leak_search_finds_a_hidden_test_when_one_is_there(bundle):
    """The search above can fail: a wheel with a hidden test file in it is caught."""
    texts, common = _wheel_texts(bundle.wheel), _library_lines()
    test_file = _hidden_files()[0]
    texts["genlab/oops.py"] = test_file.read_text(encoding="utf-8")
    assert _leaks(texts, distinctive_lines(test_file.read_text(encoding="utf-8"), common))


def test_wheel_holds_no_solution_cell_code(bundle):
    texts, common = _wheel_texts(bundle.wheel), _library_lines()
    solution = set().union(*(distinctive_lines("\n".join(v), common) for v in _solution_lines().values()))
    assert len(solution) > 50
    assert _leaks(texts, solution) == []


def test_the_leak_search_finds_solution_code_when_it_is_there(bundle):
    texts, common = _wheel_texts(bundle.wheel), _library_lines()
    lab, lines = next(iter(_solution_lines().items()))
    texts[f"genlab/{lab}.py"] = "\n".join(lines)
    assert _leaks(texts, distinctive_lines("\n".join(lines), common))


def test_stubbed_parts_have_no_body_left(bundle):
    """Every student-build stub's body is its docstring and one raise."""
    texts = _wheel_texts(bundle.wheel)
    stubs = 0
    for name, text in texts.items():
        if not name.endswith(".py") or "GradedPartError(" not in text or name == "genlab/_graded.py":
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(s, ast.Raise) and "GradedPartError" in ast.unparse(s) for s in node.body):
                stubs += 1
                body = node.body[1:] if ast.get_docstring(node) is not None else node.body
                assert len(body) == 1, f"{name}: {node.name} keeps code besides its raise"
    assert stubs >= len(graded_parts(all_labs()))


def test_wheel_depends_on_ranges_and_the_hangul_font(bundle):
    texts = _wheel_texts(bundle.wheel)
    (meta,) = [t for n, t in texts.items() if n.endswith(".dist-info/METADATA")]
    requires = [ln.split(": ", 1)[1] for ln in meta.splitlines() if ln.startswith("Requires-Dist: ")]
    assert "torch>=2.4" in requires and "torchvision>=0.19" in requires
    assert any(r.startswith("koreanize-matplotlib") for r in requires)
    assert not [r for r in requires if "==" in r], "exact pins belong in constraints.txt"
    assert not [r for r in requires if r.startswith("nbgrader")], "nbgrader is the instructor's"


def test_bundle_has_release_notebooks_with_an_install_cell_and_a_readme(bundle):
    labs = all_labs()
    assert len(bundle.notebooks) == len(labs)
    for lab, nb_path in zip(labs, bundle.notebooks, strict=True):
        cells = json.loads(nb_path.read_text(encoding="utf-8"))["cells"]
        assert "install" in cells[0]["metadata"]["tags"] and str(bundle.wheel) in "".join(cells[0]["source"])
        release = json.loads(lab.release.read_text(encoding="utf-8"))["cells"]
        assert [c["source"] for c in cells[1:]] == [c["source"] for c in release], "the rest is the release"
    readme = bundle.readme.read_text(encoding="utf-8")
    for word in ("## Install", "## Run a lab", "## Submit", bundle.wheel.name):
        assert word in readme
    assert not (bundle.out / "autograder").exists() and not (bundle.out / "solutions").exists()


@pytest.mark.parametrize("path", ["pyproject.toml"])
def test_pyproject_has_ranges_and_constraints_pin_this_machine(path):
    text = (REPO_ROOT / path).read_text(encoding="utf-8")
    assert '"torch>=2.4"' in text and '"torchvision>=0.19"' in text and "torch==" not in text
    pins = (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8").split()
    assert {"torch==2.14.1", "torchvision==0.29.1", "pytest==9.1.1"} <= set(pins)
    assert "-c constraints.txt" in (REPO_ROOT / "Makefile").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.xdist_group("release-grading")   # its own worker: it does not need the session's bundle
def test_bundle_notebooks_with_their_install_cell_grade_as_before(tmp_path):
    """The extra first cell does not upset the grader: the bundle's lab-03 notebook with the
    solution's cells scores full marks, and the untouched bundle notebook scores 0."""
    from autograder.release.notebooks import write_release_notebook
    from autograder.runner.results import SubmissionResult

    lab = next(lab for lab in all_labs() if lab.name == "03_transformer")
    subs = tmp_path / "submitted"
    write_release_notebook(REPO_ROOT / "solutions" / lab.name / lab.release.name, subs / "solution.ipynb", "w.whl")
    write_release_notebook(lab.release, subs / "release.ipynb", "w.whl")   # as the bundle writes it
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    proc = subprocess.run([sys.executable, "-m", "genlab", "grade", lab.name, str(subs), "--out", str(tmp_path / "g"),
                           "--jobs", "2"], capture_output=True, text=True, env=env, timeout=900)
    scores = {p.parent.name: SubmissionResult.from_json(p.read_text(encoding="utf-8"))
              for p in (tmp_path / "g").glob("*/result.json")}
    assert set(scores) == {"solution", "release"}, proc.stderr[-3000:]
    assert scores["solution"].score == scores["solution"].max_score > 0 and not scores["solution"].notebook_issues
    assert scores["release"].score == 0 and not scores["release"].error


def _oracle_body_lines() -> set[str]:
    """Lines of the full library's ``@oracle`` bodies (not their docstrings) that no other code of it has."""
    inside, outside = set(), set()
    for path in LIBRARY.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        spans = []
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef) and any(ast.unparse(d).endswith("oracle") for d in node.decorator_list):
                body = node.body[1:] if ast.get_docstring(node) is not None else node.body
                if body:
                    spans.append((body[0].lineno, node.end_lineno))
        for i, line in enumerate(lines, start=1):
            (inside if any(a <= i <= b for a, b in spans) else outside).add(line.strip())
    return {ln for ln in inside - outside if len(ln) >= MIN_LINE}


def test_wheel_holds_no_oracle_body_and_ships_every_labs_recording(bundle):
    """The public checks' formulas are gone from the wheel; their recorded answers are there."""
    texts = _wheel_texts(bundle.wheel)
    body = _oracle_body_lines()
    assert len(body) > 10, "the search must have something to look for"
    assert _leaks(texts, body) == []
    names = set(texts)
    assert {f"genlab/checks/recorded/lab{lab.number}.pt" for lab in all_labs()} <= names
    oracles = sum(text.count("raise OracleRemoved(") for name, text in texts.items() if name.startswith("genlab/checks/"))
    assert oracles >= 8, "lab 03 alone has eight oracles"
