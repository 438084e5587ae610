"""Part 2: causal_mask(T) and combine_masks(causal, key_padding)."""
import pytest
import torch

from autograder import kit
from genlab.checks import lab03_bugs as bugs

CAUSAL_LENGTHS = (5, 16, 2, 1)  # longest first: at T = 1 several bugs give the same mask (tests/lab03 checks)


def _call(fn, /, *args, hint="", **kwargs):
    return bugs.explained_call(kit.call, fn, *args, hint=hint, **kwargs)


@pytest.mark.points(1)
def test_causal_mask_shape_and_dtype(submission):
    """causal_mask(T) is a (T, T) bool tensor."""
    causal_mask = submission.function("causal_mask")
    got = _call(causal_mask, 6)
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != (6, 6):
        raise AssertionError(f"causal_mask(6) should return a (6, 6) tensor, got {kit.describe(got)}.")
    if got.dtype != torch.bool:
        raise AssertionError(bugs.name_causal_mask_bug(got, 6))


@pytest.mark.points(5)
def test_causal_mask_values(submission):
    """True exactly where key j <= query i, for several lengths (the longer ones first: at T = 1
    several bugs give the same mask)."""
    causal_mask = submission.function("causal_mask")
    for T in CAUSAL_LENGTHS:
        kit.fail_if(bugs.name_causal_mask_bug(_call(causal_mask, T), T), f"causal_mask({T})")


@pytest.mark.points(1)
def test_combine_masks_shape(submission):
    """combine_masks((T_q, T_k), (B, T_k)) has shape (B, 1, T_q, T_k) and dtype bool."""
    combine_masks = submission.function("combine_masks")
    causal = torch.ones(4, 4, dtype=torch.bool).tril()
    pad = torch.tensor([[True, True, True, False], [True, True, False, False], [True] * 4])
    got = _call(combine_masks, causal, pad, hint=bugs.COMBINE_BROADCAST_HINT)
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != (3, 1, 4, 4):
        raise AssertionError(f"combine_masks should return shape (B, 1, T_q, T_k) = (3, 1, 4, 4), got "
                             f"{kit.describe(got)}. The size-1 axis broadcasts over the heads.")
    if got.dtype != torch.bool:
        raise AssertionError(f"combine_masks must return dtype torch.bool, got {got.dtype}.")


@pytest.mark.points(4)
def test_combine_masks_values(submission):
    """A key is allowed only if the causal mask AND the key padding allow it."""
    combine_masks = submission.function("combine_masks")
    g = torch.Generator().manual_seed(0)
    T = 7
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    lengths = torch.tensor([7, 5, 2, 1])
    pad = torch.arange(T)[None, :] < lengths[:, None]
    got = _call(combine_masks, causal, pad, hint=bugs.COMBINE_BROADCAST_HINT)
    kit.fail_if(bugs.name_combine_masks_bug(got, causal, pad))
    random_pad = torch.rand(3, T, generator=g) > 0.5
    got = _call(combine_masks, causal, random_pad, hint=bugs.COMBINE_BROADCAST_HINT)
    kit.fail_if(bugs.name_combine_masks_bug(got, causal, random_pad))


@pytest.mark.points(2)
def test_combine_masks_rectangular(submission):
    """T_q != T_k (e.g. new queries against a longer cached past) works too."""
    combine_masks = submission.function("combine_masks")
    causal = torch.ones(5, 5, dtype=torch.bool).tril()[3:]  # last two queries over 5 keys
    pad = torch.tensor([[True] * 5, [True, True, True, True, False]])
    got = _call(combine_masks, causal, pad, context="with a (2, 5) causal mask (2 new queries over 5 keys)",
                hint=bugs.COMBINE_BROADCAST_HINT)
    kit.fail_if(bugs.name_combine_masks_bug(got, causal, pad), "with a (2, 5) causal mask (2 new queries over 5 keys)")
