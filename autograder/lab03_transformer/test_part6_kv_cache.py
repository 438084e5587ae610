"""Part 6: kv_cache_step(q, k_new, v_new, cache_k=None, cache_v=None) -> (out, cache_k, cache_v)."""
import pytest
import torch
import torch.nn.functional as F

from autograder import kit
from genlab.checks import lab03_bugs as bugs

NAME = "kv_cache_step"


def _qkv(seed, B, H, T, d_h):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(B, H, T, d_h, generator=g) for _ in range(3))


def _decode(fn, q, k, v):
    """Run kv_cache_step position by position; return the list of (out, cache_k, cache_v)."""
    steps, cache_k, cache_v = [], None, None
    for t in range(q.shape[-2]):
        step = (q[..., t:t + 1, :], k[..., t:t + 1, :], v[..., t:t + 1, :], cache_k, cache_v)
        if t == 0:
            result = bugs.explained_call(kit.call, fn, *step, context="at the first step (no cache)")
        else:
            past = tuple(cache_k.shape) if isinstance(cache_k, torch.Tensor) else None
            result = bugs.explained_call(
                kit.call, fn, *step, context=f"at step {t} (cache_k of shape {past})",
                hint="The first step worked, so look at how the cache grows: append the new key and value along "
                     "the time axis, torch.cat([cache_k, k_new], dim=-2), so that every other axis still fits")
        out, cache_k, cache_v = kit.expect_tuple(result, 3, NAME, ("out", "cache_k", "cache_v"))
        steps.append((out, cache_k, cache_v))
    return steps


@pytest.mark.points(2)
def test_first_step(submission):
    """With no cache: caches are the new key/value, and the output is v_new (one key gets weight 1)."""
    fn = submission.function(NAME)
    q, k, v = _qkv(0, 2, 3, 1, 8)
    result = bugs.explained_call(kit.call, fn, q, k, v, None, None, context="at the first step (no cache)")
    out, cache_k, cache_v = kit.expect_tuple(result, 3, NAME, ("out", "cache_k", "cache_v"))
    hint = bugs.name_kv_cache_bug(0, out, cache_k, cache_v, v, k, v)
    if hint is not None:
        raise AssertionError(f"first step (cache_k=cache_v=None): {hint}")


@pytest.mark.points(3)
def test_cache_grows_in_order(submission):
    """After step t the caches hold the keys/values of positions 0..t, oldest first, (B, H, t+1, d_h)."""
    fn = submission.function(NAME)
    q, k, v = _qkv(1, 2, 2, 5, 4)
    for t, (out, cache_k, cache_v) in enumerate(_decode(fn, q, k, v)):
        if not isinstance(cache_k, torch.Tensor) or cache_k.shape != k[..., :t + 1, :].shape:
            hint = bugs.name_kv_cache_bug(t, out, cache_k, cache_v, q[..., :1, :], k[..., :t + 1, :], v[..., :t + 1, :])
            raise AssertionError(hint or f"after step {t} cache_k should have shape {tuple(k[..., :t + 1, :].shape)}.")
        if not (torch.equal(cache_k, k[..., :t + 1, :]) and torch.equal(cache_v, v[..., :t + 1, :])):
            raise AssertionError(f"after step {t} the caches should be the keys/values of positions 0..{t} in order, "
                                 "old entries first: torch.cat([cache_k, k_new], dim=-2).")


@pytest.mark.points(6)
def test_matches_full_causal_attention(submission):
    """Step-by-step outputs equal causal attention over the whole sequence at once."""
    fn = submission.function(NAME)
    for seed, (B, H, T, d_h) in ((2, (2, 4, 7, 8)), (3, (1, 1, 5, 16))):
        q, k, v = _qkv(seed, B, H, T, d_h)
        full = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        for t, (out, cache_k, cache_v) in enumerate(_decode(fn, q, k, v)):
            hint = bugs.name_kv_cache_bug(t, out, cache_k, cache_v, full[..., t:t + 1, :],
                                          k[..., :t + 1, :], v[..., :t + 1, :])
            if hint is not None:
                raise AssertionError(hint)
