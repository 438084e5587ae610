"""Lab 03's notebooks: the release is generated from the solution (no drift), the structure
the grader relies on, the lab.toml, and the public checks."""
from __future__ import annotations

import importlib
import importlib.util
import re

import nbformat
import pytest
import torch

from autograder.runner.lab import Lab
from genlab.checks import lab03 as checks
from genlab.labs import generate_release

from . import cases

GRADED = {
    "scaled_dot_product_attention": ["def scaled_dot_product_attention(q, k, v, mask=None):"],
    "masks": ["def causal_mask(T):", "def combine_masks(causal, key_padding):"],
    "multi_head_attention": ["class MultiHeadAttention(nn.Module):", "def __init__(self, d_model, n_heads):",
                             "def split_heads(self, x):", "def merge_heads(self, x):",
                             "def forward(self, query, key, value, mask=None):"],
    "sinusoidal_positions": ["def sinusoidal_positions(T, d):"],
    "count_parameters": ["def count_parameters(config):"],
    "kv_cache_step": ["def kv_cache_step(q, k_new, v_new, cache_k=None, cache_v=None):"],
}


def _nbgrader(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _comparable(nb):
    return [(c.cell_type, c.source, _nbgrader(c), c.metadata.get("tags", []),
             c.metadata.get("editable"), c.metadata.get("deletable")) for c in nb.cells]


@pytest.fixture(scope="module")
def solution():
    return nbformat.read(cases.SOLUTION, as_version=4)


@pytest.fixture(scope="module")
def release():
    return nbformat.read(cases.RELEASE, as_version=4)


def test_release_is_generated_from_the_solution(tmp_path, release):
    """Regenerating labs/03_transformer from solutions/ gives the committed release (run `genlab labs`)."""
    written = generate_release("03_transformer", dest=tmp_path / "03_transformer")
    assert [p.name for p in written] == ["transformer.ipynb"]
    fresh = nbformat.read(written[0], as_version=4)
    assert _comparable(fresh) == _comparable(release), (
        "labs/03_transformer is out of date with solutions/03_transformer: run `genlab labs 03_transformer`"
    )
    assert fresh.metadata == release.metadata
    assert written[0].read_bytes() == cases.RELEASE.read_bytes(), "same cells, different bytes: regenerate the release"


def test_generation_is_deterministic(tmp_path):
    a = generate_release("03_transformer", dest=tmp_path / "a")[0].read_bytes()
    b = generate_release("03_transformer", dest=tmp_path / "b")[0].read_bytes()
    assert a == b


def test_no_outputs_committed(solution, release):
    for nb in (solution, release):
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, cell.metadata.get("nbgrader")


def test_graded_cells_keep_signatures_and_lose_solutions(solution, release):
    sol = {_nbgrader(c).get("grade_id"): c for c in solution.cells}
    rel = {_nbgrader(c).get("grade_id"): c for c in release.cells}
    for grade_id, signatures in GRADED.items():
        meta = _nbgrader(sol[grade_id])
        assert meta["solution"] is True and meta["grade"] is False and meta["locked"] is False, grade_id
        assert "### BEGIN SOLUTION" in sol[grade_id].source
        stub = rel[grade_id].source
        assert "BEGIN SOLUTION" not in stub and "raise NotImplementedError()" in stub, grade_id
        for signature in signatures:
            assert signature in stub, (grade_id, signature)


def test_each_graded_part_is_followed_by_a_locked_check(solution):
    cells = solution.cells
    for i, cell in enumerate(cells):
        grade_id = _nbgrader(cell).get("grade_id")
        if grade_id in GRADED:
            check = cells[i + 1]
            assert _nbgrader(check).get("locked") is True, grade_id
            assert check.metadata.get("tags") == ["check"], grade_id
            assert "checks.check_" in check.source, grade_id


def test_code_cells_are_nbgrader_cells_and_heavy_cells_are_tagged(solution):
    ids = []
    for cell in solution.cells:
        if cell.cell_type != "code":
            continue
        meta = _nbgrader(cell)
        assert meta.get("grade_id"), cell.source[:80]
        ids.append(meta["grade_id"])
        assert meta.get("solution") or meta.get("locked"), meta["grade_id"]
        if re.search(r"\b(Trainer|\.fit\(|generate\(|plots\.|Figure\()", cell.source):
            assert set(cell.metadata.get("tags", [])) & {"training", "plotting"}, meta["grade_id"]
    assert len(ids) == len(set(ids)), "duplicate grade_id"


def test_lab_toml_and_blocked_references_resolve():
    lab = Lab.load("03_transformer")
    assert lab.release == cases.RELEASE
    assert {"training", "plotting", "check"} <= set(lab.skip_tags)
    assert len(lab.test_files()) >= 6
    for ref in lab.blocked:
        module, _, attr = ref.partition(":")
        owner = importlib.import_module(module)
        for part in attr.split("."):
            owner = getattr(owner, part)  # the reference must exist where lab.toml says


def test_torch_mirror_of_gpt_matches_genlab_gpt():
    """The hidden test counts a plain-torch mirror of genlab's GPT; it must stay equal to the real one."""
    from genlab.models import GPT

    path = cases.REPO / "autograder" / "lab03_transformer" / "test_count_parameters.py"
    spec = importlib.util.spec_from_file_location("lab03_hidden_count", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for config in module.REAL_CONFIGS + [dict(vocab_size=103, block_size=64, n_layer=4, n_head=4, n_embd=128)]:
        real = sum(p.numel() for p in GPT(**{k: config[k] for k in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")}).parameters())
        mirror = sum(p.numel() for p in module.torch_gpt(**config).parameters())
        assert mirror == real, config


# ------------------------------------------------------------------ public checks

def test_public_checks_pass_on_the_library_reference(capsys):
    import genlab.nn as ref
    from genlab.models import count_parameters

    checks.check_scaled_dot_product_attention(ref.scaled_dot_product_attention)
    checks.check_masks(ref.causal_mask, ref.combine_masks)
    checks.check_multi_head_attention(ref.MultiHeadAttention)
    checks.check_sinusoidal_positions(ref.sinusoidal_positions)
    checks.check_count_parameters(count_parameters)
    checks.check_kv_cache_step(ref.kv_cache_step)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) >= 6 and all(line.startswith("✓") for line in lines), lines


def _unscaled(q, k, v, mask=None):
    w = torch.softmax(q @ k.transpose(-2, -1), -1)
    return w @ v, w


def _not_written(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("check, fn, words", [
    (checks.check_scaled_dot_product_attention, _unscaled, "sqrt"),
    (checks.check_scaled_dot_product_attention, _not_written, "not written yet"),
    (checks.check_sinusoidal_positions, lambda T, d: torch.zeros(T, d, dtype=torch.float64), "float32"),
    (checks.check_count_parameters, lambda c: 0, "off by"),
])
def test_public_checks_fail_with_a_hint(check, fn, words):
    with pytest.raises(AssertionError, match=re.escape(words)):
        check(fn)


def test_mask_check_names_an_off_by_one():
    with pytest.raises(AssertionError, match="diagonal"):
        checks.check_masks(lambda T: torch.ones(T, T, dtype=torch.bool).tril(-1),
                           lambda c, p: c[None, None] & p[:, None, None, :])
