"""Lab 03's own checks: the hidden tests' plain-torch GPT mirror, and the public checks on the
library's reference and on typical wrong answers. (Grading, mutants and the notebooks are
covered for every lab by ``tests/labs/``.)"""
from __future__ import annotations

import importlib
import importlib.util
import re

import pytest
import torch

from autograder.runner.lab import AUTOGRADER_DIR
from genlab.checks import lab03 as checks


def test_torch_mirror_of_gpt_matches_genlab_gpt():
    """The hidden test counts a plain-torch mirror of genlab's GPT; it must stay equal to the real one."""
    from genlab.models import GPT

    path = AUTOGRADER_DIR / "lab03_transformer" / "test_count_parameters.py"
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
