"""One case harness for every lab: mutants, correct variants and cheats, graded for real.

A lab lists its cases as data in ``tests/labNN/cases.py`` (``MUTANTS``, ``VARIANTS``,
``CHEATS``). Each case rewrites one graded cell of the lab's solution notebook, found by its
nbgrader ``grade_id``: a mutant by text replacements (so it breaks loudly with
``MutantDrift`` when the solution changes under it), a variant or cheat by a whole new cell.

The harness finds every lab by its ``autograder/<folder>/lab.toml``, grades all of a lab's
cases as one batch (``grade_batch``, the fork server, two jobs; a mutant or a cheat on its
own parts only), and runs each case's cell through the notebook's own public check in this
process, as a student would.
"""
from __future__ import annotations

import copy
import functools
import importlib
import io
import os
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import torch

from autograder.runner.batch import LabInfo, grade_batch
from autograder.runner.discover import Handin
from autograder.runner.lab import AUTOGRADER_DIR, REPO_ROOT, Lab
from autograder.runner.results import SubmissionResult

__all__ = ["Mutant", "Variant", "Cheat", "MutantDrift", "LabCases", "all_labs", "grade_cases", "public_check",
           "run_checks", "check_ids", "summary", "nbgrader_meta"]


class MutantDrift(AssertionError):
    """A mutant's replacement text no longer occurs in the solution cell."""


@dataclass(frozen=True)
class Mutant:
    """A realistic bug in cell ``grade_id``: ``replace`` pairs applied to the solution's source.

    ``parts``: hidden-test parts (file stems without ``test_``) that must lose points.
    ``keywords``: one must appear (case-insensitive) in the feedback of a failing test of those parts.
    ``hidden_only``: why the public check may pass this mutant (the default: it must fail it).
    """

    name: str
    grade_id: str
    replace: tuple[tuple[str, str], ...]
    parts: tuple[str, ...]
    keywords: tuple[str, ...]
    hidden_only: str | None = None


@dataclass(frozen=True)
class Variant:
    """A correct implementation of cell ``grade_id`` written differently: keeps full marks."""

    name: str
    grade_id: str
    source: str
    notes: str = field(default="")


@dataclass(frozen=True)
class Cheat:
    """A cell that delegates to a reference instead of being written: earns nothing in ``parts``."""

    name: str
    grade_id: str
    source: str
    parts: tuple[str, ...]


Case = Mutant | Variant | Cheat


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _cell(nb, grade_id: str, where: Path):
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == grade_id:
            return cell
    raise KeyError(f"no cell with grade_id {grade_id!r} in {where}")


@dataclass(frozen=True)
class LabCases:
    """A lab's grading configuration, its notebooks and its case list."""

    lab: Lab
    solution: Path
    mutants: tuple[Mutant, ...]
    variants: tuple[Variant, ...]
    cheats: tuple[Cheat, ...]

    @property
    def name(self) -> str:
        return self.lab.name

    @property
    def release(self) -> Path:
        return self.lab.release

    @property
    def cases(self) -> tuple[Case, ...]:
        return self.mutants + self.variants + self.cheats

    def read_solution(self):
        return nbformat.read(self.solution, as_version=4)

    def graded_ids(self) -> list[str]:
        """grade_ids of the cells a student writes (nbgrader ``solution: true``)."""
        return [nbgrader_meta(c)["grade_id"] for c in self.read_solution().cells if nbgrader_meta(c).get("solution")]

    def case_source(self, case: Case) -> str:
        """The cell source of ``case`` (a mutant's replacements applied to the solution)."""
        if not isinstance(case, Mutant):
            return case.source.strip("\n")
        source = _cell(self.read_solution(), case.grade_id, self.solution).source
        for old, new in case.replace:
            if old not in source:
                raise MutantDrift(f"mutant {case.name}: {old!r} no longer occurs in cell {case.grade_id!r}")
            source = source.replace(old, new)
        return source

    def write_case(self, case: Case, dest: Path) -> Path:
        """The solution notebook with the case's cell replaced, written to ``dest``."""
        nb = copy.deepcopy(self.read_solution())
        _cell(nb, case.grade_id, self.solution).source = self.case_source(case)
        dest.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dest)
        return dest


def _cases_module(folder: Path):
    """``tests/labNN/cases.py`` for ``autograder/labNN_name/``."""
    short = folder.name.split("_", 1)[0]
    return importlib.import_module(f"tests.{short}.cases")


@functools.cache
def all_labs() -> tuple[LabCases, ...]:
    """Every lab under ``autograder/`` (a folder with ``lab.toml``), with its cases."""
    labs = []
    for toml in sorted(AUTOGRADER_DIR.glob("*/lab.toml")):
        lab = Lab.load(toml.parent)
        cases = _cases_module(toml.parent)
        solution = REPO_ROOT / "solutions" / lab.name / lab.release.name
        labs.append(LabCases(lab, solution, tuple(cases.MUTANTS), tuple(cases.VARIANTS), tuple(getattr(cases, "CHEATS", ()))))
    return tuple(labs)


def lab_by_name(name: str) -> LabCases:
    return next(lab for lab in all_labs() if lab.name == name)


# ------------------------------------------------------------------ grading

_GRADED: dict[str, dict[str, SubmissionResult]] = {}


def grade_cases(lab: LabCases, workdir: Path) -> dict[str, SubmissionResult]:
    """Grade the solution, the release and every case of ``lab`` as one batch (cached per process).

    ``grade_batch`` with the fork server and two jobs, as ``genlab grade LAB folder --jobs 2``
    does. The solution, the release and the variants run every hidden test; a mutant or a
    cheat only the tests of the parts it names, since only those are checked (a lab's slow
    training tests then run for the cases that concern them). Results by student, where the
    student is ``solution``, ``release`` or the case's name.
    """
    if lab.name in _GRADED:
        return _GRADED[lab.name]
    subs = workdir / "submitted"
    subs.mkdir(parents=True, exist_ok=True)
    handins = []
    for student, source in (("solution", lab.solution), ("release", lab.release)):
        (subs / f"{student}.ipynb").write_bytes(source.read_bytes())
        handins.append(Handin(student, subs / f"{student}.ipynb", "file"))
    for case in lab.cases:
        notebook = lab.write_case(case, subs / f"{case.name}.ipynb")
        handins.append(Handin(case.name, notebook, "file", parts=getattr(case, "parts", None)))
    out = workdir / "grades"
    with _outside_pytest():
        outcome = grade_batch(LabInfo.from_lab(lab.lab), handins, out, jobs=2, progress=False)
    results = {}
    for student, result in outcome.results.items():
        log = out / student / "grader.log"
        result.log = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""  # type: ignore[attr-defined]
        results[student] = result
    expected = {"solution", "release", *(c.name for c in lab.cases)}
    if not expected <= set(results):
        raise AssertionError(f"grading {lab.name} left {sorted(expected - set(results))} ungraded "
                             f"(failed: {outcome.failed}; warnings: {outcome.warnings})")
    _GRADED[lab.name] = results
    return results


@contextmanager
def _outside_pytest():
    """The graders (forked from a server started here) see no trace of this pytest run."""
    saved = {k: os.environ.pop(k) for k in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "PYTEST_CURRENT_TEST")
             if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def summary(result: SubmissionResult) -> str:
    """One line per test that did not pass, for assertion messages."""
    lines = [f"score {result.score}/{result.max_score} (pending {result.pending_points}), error={result.error!r}"]
    lines += [f"  {t.status:7s} {t.name}: {t.message[:300]}" for t in result.tests if t.status != "passed"]
    return "\n".join(lines)


# ------------------------------------------------------------- public checks

class _IPythonStub:
    """Enough of ``get_ipython()`` for magics such as ``%matplotlib inline``."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _python(source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def check_ids(lab: LabCases) -> list[str]:
    """grade_ids of the solution's public-check cells (``check_<grade_id>``), in order."""
    return [gid for c in lab.read_solution().cells
            if c.cell_type == "code" and (gid := nbgrader_meta(c).get("grade_id", "")).startswith("check_")]


def _run_cell(source: str, name: str, namespace: dict) -> None:
    exec(compile(_python(source), name, "exec"), namespace)


def _run_check(source: str, check_id: str, namespace: dict, catch: type[BaseException] = AssertionError) -> str | None:
    """Run one check cell; the message of its AssertionError (or of any ``catch``), or None when it passes."""
    try:
        _run_cell(source, f"<{check_id}>", namespace)
    except catch as exc:
        return str(exc) or type(exc).__name__
    return None


def _cells(lab: LabCases, case: Case | None):
    """``(grade_id, source, is_check)`` of every code cell the grader would run, and every check
    cell, with ``case``'s cell in place of the solution's."""
    skip = set(lab.lab.skip_tags)
    for cell in lab.read_solution().cells:
        if cell.cell_type != "code":
            continue
        gid = nbgrader_meta(cell).get("grade_id")
        if gid and gid.startswith("check_"):
            yield gid, cell.source, True
        elif not skip & set(cell.metadata.get("tags", [])):
            yield gid, lab.case_source(case) if case is not None and gid == case.grade_id else cell.source, False


def run_checks(lab: LabCases, catch: type[BaseException] = AssertionError) -> dict[str, str | None]:
    """Run the solution notebook's every public check in this process: ``{check id: message or None}``.

    A check that raises ``catch`` (an AssertionError: it failed) does not stop the ones after it.
    """
    namespace = {"__name__": "__main__", "get_ipython": _IPythonStub}
    messages = {}
    with redirect_stdout(io.StringIO()), torch.enable_grad():   # a case that turned autograd off does not leak
        for gid, source, is_check in _cells(lab, None):
            if is_check:
                messages[gid] = _run_check(source, gid, namespace, catch)
            else:
                _run_cell(source, f"<cell {gid}>", namespace)
    return messages


def public_check(lab: LabCases, case: Case) -> str | None:
    """Run the notebook up to ``case``'s public check, with the case's cell in place.

    Executes, in a fresh namespace, every code cell the grader would run (those not tagged
    with the lab's skip tags), replacing the case's cell, then the case's own check cell
    ``check_<grade_id>``. Returns ``None`` when the check passes, else its message.
    """
    check_id = f"check_{case.grade_id}"
    namespace = {"__name__": "__main__", "get_ipython": _IPythonStub}
    with redirect_stdout(io.StringIO()), torch.enable_grad():   # a case that turned autograd off does not leak
        for gid, source, is_check in _cells(lab, case):
            if gid == check_id:
                return _run_check(source, check_id, namespace)
            if not is_check:
                _run_cell(source, f"<cell {gid}>", namespace)
    raise AssertionError(f"{lab.solution.name} has no check cell {check_id!r} under {case.grade_id!r}")
