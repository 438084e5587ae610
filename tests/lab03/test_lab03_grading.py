"""Lab 03 through the real grader: solution, release, mutants and correct variants.

Each case is graded in a fresh process (``autograder.runner.grade_one``), a few seconds each;
the parametrised cases spread over xdist workers.
"""
from __future__ import annotations

from collections import Counter

import pytest

from . import cases
from .grading import grade, summary

pytestmark = pytest.mark.slow

INTERNAL = "internal grader error"
GRADED_CELLS = {cases.SDPA, cases.MASKS, cases.MHA, cases.POS, cases.COUNT, cases.KV}


def _no_internal_errors(result):
    assert result.error is None, summary(result)
    bad = [t.name for t in result.tests if INTERNAL in t.message]
    assert not bad, f"internal grader errors in {bad}\n{getattr(result, 'log', '')[-4000:]}"


def test_solution_scores_full_marks(tmp_path):
    result = grade(cases.SOLUTION, tmp_path, "solution")
    _no_internal_errors(result)
    assert result.notebook_issues == [], result.notebook_issues
    assert result.max_score == 100, summary(result)
    assert result.score == result.max_score, summary(result)
    parts = Counter(t.part for t in result.tests)
    assert set(parts) == {"attention", "masks", "multi_head_attention", "positions", "count_parameters",
                          "kv_cache", "mixed_precision"}, parts


def test_release_scores_zero_without_crashing(tmp_path):
    result = grade(cases.RELEASE, tmp_path, "release")
    _no_internal_errors(result)
    assert result.score == 0, summary(result)
    assert result.tests and all(t.status in ("failed", "not_run") for t in result.tests), summary(result)
    for t in result.tests:
        if t.status == "failed":
            assert "NotImplementedError" in t.message, (t.name, t.message)


def test_every_graded_cell_has_two_mutants_and_a_variant():
    mutants = Counter(m.grade_id for m in cases.MUTANTS)
    variants = Counter(v.grade_id for v in cases.VARIANTS)
    for grade_id in GRADED_CELLS:
        assert mutants[grade_id] >= 2, (grade_id, mutants)
        assert variants[grade_id] >= 1, (grade_id, variants)
    assert len({c.name for c in cases.MUTANTS + cases.VARIANTS}) == len(cases.MUTANTS) + len(cases.VARIANTS)


@pytest.mark.parametrize("mutant", cases.MUTANTS, ids=lambda m: m.name)
def test_mutant_loses_points_with_feedback_naming_the_bug(mutant, tmp_path):
    notebook = cases.write_case(mutant, tmp_path / f"{mutant.name}.ipynb")
    result = grade(notebook, tmp_path, mutant.name)
    _no_internal_errors(result)
    assert result.score < result.max_score, f"mutant {mutant.name} kept full marks"
    failed = [t for t in result.tests if t.status == "failed"]
    in_parts = [t for t in failed if t.part in mutant.parts]
    assert in_parts, f"mutant {mutant.name} lost no points in {mutant.parts}:\n{summary(result)}"
    words = [k.lower() for k in mutant.keywords]
    named = [t for t in in_parts if any(k in t.message.lower() for k in words)]
    assert named, f"no feedback in {mutant.parts} names the bug ({mutant.keywords}):\n{summary(result)}"


@pytest.mark.parametrize("variant", cases.VARIANTS, ids=lambda v: v.name)
def test_correct_variant_keeps_full_marks(variant, tmp_path):
    notebook = cases.write_case(variant, tmp_path / f"{variant.name}.ipynb")
    result = grade(notebook, tmp_path, variant.name)
    _no_internal_errors(result)
    assert result.score == result.max_score == 100, f"variant {variant.name} ({variant.notes}):\n{summary(result)}"


@pytest.mark.parametrize("cheat", cases.CHEATS, ids=lambda c: c.name)
def test_calling_genlab_instead_of_writing_it_earns_nothing(cheat, tmp_path):
    notebook = cases.write_case(cheat, tmp_path / f"{cheat.name}.ipynb")
    result = grade(notebook, tmp_path, cheat.name)
    _no_internal_errors(result)
    in_parts = [t for t in result.tests if t.part in cheat.parts and t.status != "not_run"]
    assert in_parts and all(t.score == 0 for t in in_parts), f"cheat {cheat.name} earned points:\n{summary(result)}"
    assert all("write your own implementation" in t.message for t in in_parts), summary(result)
