"""Every lab through the real grader and its own public checks.

For each lab found by its ``lab.toml``: the solution scores full marks; the untouched
release scores 0 without crashing the grader; every mutant loses points in its parts with
feedback that names the bug, and fails its public check; every variant keeps full marks and
passes its public check; every cheat earns nothing in its parts. A lab's cases are graded
as one batch (``genlab grade``), on one xdist worker (``--dist loadgroup``).
"""
from __future__ import annotations

from collections import Counter

import pytest

from .harness import Cheat, Mutant, Variant, all_labs, grade_cases, public_check, summary

pytestmark = pytest.mark.slow
INTERNAL = "internal grader error"


def _params(kind):
    out = []
    for lab in all_labs():
        for case in lab.cases:
            if isinstance(case, kind):
                out.append(pytest.param(lab, case, id=f"{lab.name}-{case.name}",
                                        marks=pytest.mark.xdist_group(lab.name)))
    return out


def _labs():
    return [pytest.param(lab, id=lab.name, marks=pytest.mark.xdist_group(lab.name)) for lab in all_labs()]


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    def get(lab):
        return grade_cases(lab, tmp_path_factory.mktemp(f"grade-{lab.name}"))
    return get


def _no_internal_errors(result):
    assert result.error is None, summary(result)
    bad = [t.name for t in result.tests if INTERNAL in t.message]
    assert not bad, f"internal grader errors in {bad}\n{getattr(result, 'log', '')[-4000:]}"


@pytest.mark.parametrize("lab", _labs())
def test_solution_scores_full_marks(lab, graded):
    result = graded(lab)["solution"]
    _no_internal_errors(result)
    assert result.notebook_issues == [], result.notebook_issues
    assert result.max_score > 0 and result.score == result.max_score, summary(result)


@pytest.mark.parametrize("lab", _labs())
def test_release_scores_zero_without_crashing(lab, graded):
    result = graded(lab)["release"]
    _no_internal_errors(result)
    assert result.score == 0, summary(result)
    assert result.tests and all(t.status in ("failed", "not_run") for t in result.tests), summary(result)
    for t in result.tests:
        if t.status == "failed":
            assert "NotImplementedError" in t.message or "not written yet" in t.message, (t.name, t.message)


@pytest.mark.parametrize("lab", _labs())
def test_every_graded_cell_has_two_mutants_and_a_variant(lab):
    mutants = Counter(m.grade_id for m in lab.mutants)
    variants = Counter(v.grade_id for v in lab.variants)
    for grade_id in lab.graded_ids():
        assert mutants[grade_id] >= 2, (grade_id, mutants)
        assert variants[grade_id] >= 1, (grade_id, variants)
    names = [c.name for c in lab.cases]
    assert len(set(names)) == len(names), "case names must be unique"
    assert not {"solution", "release"} & set(names)


@pytest.mark.parametrize("lab, mutant", _params(Mutant))
def test_mutant_loses_points_with_feedback_naming_the_bug(lab, mutant, graded):
    result = graded(lab)[mutant.name]
    _no_internal_errors(result)
    assert result.score < result.max_score, f"mutant {mutant.name} kept full marks"
    in_parts = [t for t in result.tests if t.status == "failed" and t.part in mutant.parts]
    assert in_parts, f"mutant {mutant.name} lost no points in {mutant.parts}:\n{summary(result)}"
    words = [k.lower() for k in mutant.keywords]
    assert any(k in t.message.lower() for t in in_parts for k in words), (
        f"no feedback in {mutant.parts} names the bug ({mutant.keywords}):\n{summary(result)}")


@pytest.mark.parametrize("lab, mutant", _params(Mutant))
def test_public_check_warns_about_the_mutant(lab, mutant):
    """A student who runs the check under a part is never surprised by the grade."""
    message = public_check(lab, mutant)
    if mutant.hidden_only:
        return
    assert message is not None, (f"the public check of {mutant.grade_id!r} passes mutant {mutant.name}, which the "
                                 "hidden tests fail: make the check warn about it (or mark it hidden_only with a reason)")
    assert "raised an error" not in message or "(" in message, message


@pytest.mark.parametrize("lab, variant", _params(Variant))
def test_correct_variant_keeps_full_marks(lab, variant, graded):
    result = graded(lab)[variant.name]
    _no_internal_errors(result)
    assert result.score == result.max_score, f"variant {variant.name} ({variant.notes}):\n{summary(result)}"


@pytest.mark.parametrize("lab, variant", _params(Variant))
def test_correct_variant_passes_its_public_check(lab, variant):
    assert public_check(lab, variant) is None, variant.name


@pytest.mark.parametrize("lab, cheat", _params(Cheat))
def test_cheat_earns_nothing(lab, cheat, graded):
    result = graded(lab)[cheat.name]
    _no_internal_errors(result)
    in_parts = [t for t in result.tests if t.part in cheat.parts and t.status != "not_run"]
    assert in_parts and all(t.score == 0 for t in in_parts), f"cheat {cheat.name} earned points:\n{summary(result)}"
    assert all("write your own implementation" in t.message for t in in_parts), summary(result)


@pytest.mark.parametrize("lab", _labs())
def test_a_labs_batch_runs_on_one_worker(lab, request):
    """Under ``--dist loadgroup`` every test of a lab carries its group, so one worker grades the
    batch once. pytest 9.2 broke this for pytest-xdist 3.8 (read-only node ids), which graded
    every batch on both workers and doubled the suite's time; pyproject pins pytest < 9.2."""
    if request.config.getvalue("loadgroup"):
        assert request.node.nodeid.endswith(f"@{lab.name}"), (
            f"{request.node.nodeid} lost its xdist group: pytest-xdist cannot group tests with this pytest")
