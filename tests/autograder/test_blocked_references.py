"""Blocking that cannot be forgotten: no lab leaves genlab's version of a graded part callable.

For every lab under ``autograder/`` (found by its ``lab.toml``), the graded parts are the
names its hidden tests ask for (``submission.function("X")``, ``.get("X")``, ``.has("X")``)
and the functions and classes its release notebook's solution cells define. Any function
or class of that name anywhere in ``genlab`` is a reference implementation a submission
could call instead of its own: it must be blocked in ``lab.toml``, by name, by a
``"module:*"`` entry, or as a re-export of a blocked object (the worker replaces those
too). Every blocked entry must resolve.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
from pathlib import Path

import nbformat
import pytest

import genlab
from autograder.runner import worker_blockers
from autograder.runner.lab import AUTOGRADER_DIR, Lab

LABS = sorted(AUTOGRADER_DIR.glob("*/lab.toml"))
ASKING = {"function", "get", "has"}   # the ``submission`` methods that fetch a notebook name


def names_asked_by_tests(lab: Lab) -> set[str]:
    """String literals passed to ``submission.function/get/has`` in the lab's hidden tests."""
    names = set()
    for path in lab.test_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ASKING and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "submission" and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                names.add(node.args[0].value)
    return names


def names_defined_in_solution_cells(lab: Lab) -> set[str]:
    """Top-level ``def``/``class`` names of the release notebook's nbgrader solution cells."""
    names = set()
    for cell in nbformat.read(lab.release, as_version=4).cells:
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        for node in ast.parse(cell.source).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
    return names


def genlab_modules() -> list:
    """Every importable genlab module (one that cannot be imported cannot be called either)."""
    modules = [genlab]
    for info in pkgutil.walk_packages(genlab.__path__, "genlab."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue  # runs the CLI when imported
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError:
            continue
    return modules


def blocked_objects(lab: Lab) -> tuple[set[str], list]:
    """The single entries the lab's ``blocked`` stands for, and the objects they resolve to."""
    singles = {single for ref in lab.blocked for single in worker_blockers.expand(ref)}
    return singles, [worker_blockers.lookup(single)[3] for single in sorted(singles)]


@pytest.fixture(scope="module")
def modules():
    return genlab_modules()


@pytest.mark.parametrize("toml", LABS, ids=lambda p: p.parent.name)
def test_every_blocked_entry_resolves(toml):
    lab = Lab.load(toml)
    assert lab.unresolved_blocked() == [], (
        f"{toml}: these `blocked` entries do not resolve (a typo, or the library moved): "
        f"{lab.unresolved_blocked()}")


def unblocked_references(lab: Lab, modules) -> set[str]:
    """``module:name`` of every genlab function or class named like a graded part that the
    lab's ``blocked`` does not cover (by name, by ``*`` or as the same object)."""
    graded = names_asked_by_tests(lab) | names_defined_in_solution_cells(lab)
    singles, objects = blocked_objects(lab)
    missing = set()
    for module in modules:
        for name in graded & set(vars(module)):
            value = vars(module)[name]
            if not (inspect.isroutine(value) or inspect.isclass(value)):
                continue
            if f"{module.__name__}:{name}" in singles or any(value is obj for obj in objects):
                continue
            home = getattr(value, "__module__", "")
            missing.add(f"{home}:{name}" if str(home).startswith("genlab") else f"{module.__name__}:{name}")
    return missing


@pytest.mark.parametrize("toml", LABS, ids=lambda p: p.parent.name)
def test_no_reference_of_a_graded_part_is_left_unblocked(toml, modules):
    lab = Lab.load(toml)
    assert names_asked_by_tests(lab) | names_defined_in_solution_cells(lab), (
        f"{toml}: found no graded part (no submission.function(...) in the tests, no def in solution cells)")
    missing = unblocked_references(lab, modules)
    assert not missing, (
        f"{toml}: a submission could call genlab's own version of a graded part instead of writing it. "
        f"Add to `blocked`: {sorted(missing)} (or the whole module, \"module:*\")")


def test_an_unblocked_reference_is_found(modules):
    """The check can fail: lab 03 without its genlab.nn.masks entries leaves causal_mask open."""
    lab = Lab.load(AUTOGRADER_DIR / "lab03_transformer" / "lab.toml")
    weakened = dataclasses.replace(lab, blocked=tuple(r for r in lab.blocked if not r.startswith("genlab.nn.masks:")))
    assert "genlab.nn.masks:causal_mask" in unblocked_references(weakened, modules)
    assert "genlab.nn.masks:causal_mask" not in unblocked_references(lab, modules)


def test_graded_names_come_from_tests_and_solution_cells(tmp_path):
    (tmp_path / "test_x.py").write_text(
        "def test_a(submission):\n    submission.function('alpha')\n    submission.get('BETA')\n"
        "    other.function('not_this')\n    submission.has(NAME)\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("def gamma():\n    pass\n\nclass Delta:\n    pass\n\nx = 1\n",
                                          metadata={"nbgrader": {"solution": True, "grade_id": "g"}}),
                nbformat.v4.new_code_cell("def not_graded():\n    pass\n")]
    nbformat.write(nb, tmp_path / "r.ipynb")
    (tmp_path / "lab.toml").write_text('name = "x"\nrelease = "./r.ipynb"\n')
    lab = Lab.load(tmp_path)
    assert names_asked_by_tests(lab) == {"alpha", "BETA"}
    assert names_defined_in_solution_cells(lab) == {"gamma", "Delta"}


def test_labs_are_found():
    assert Path(AUTOGRADER_DIR / "lab03_transformer" / "lab.toml") in LABS
