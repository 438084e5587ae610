"""Public checks for lab 03 (the Transformer). Each prints one ✓ line or raises AssertionError.

The checks use small fixed inputs and independent formulas (float64 math, torch's own
``nn.MultiheadAttention``). They warn about everything the hidden tests require (shapes,
dtypes, exact zeros, float16 and autocast, int results); the hidden tests use other inputs.
Parts are numbered as in the notebook: 1 attention, 2 masks, 3 multi-head attention,
4 positions, 5 parameter count, 6 KV cache.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from genlab.checks import kit
from genlab.checks import lab03_bugs as bugs
from genlab.checks.contract import contract_problem

__all__ = [
    "check_scaled_dot_product_attention",
    "check_masks",
    "check_multi_head_attention",
    "check_sinusoidal_positions",
    "check_count_parameters",
    "check_kv_cache_step",
]


def _call(what: str, fn: Callable, *args, hint: str = "", **kwargs):
    """``kit.call`` whose message also gives the fix for this lab's known torch errors."""
    try:
        return kit.call(what, fn, *args, **kwargs)
    except AssertionError as exc:
        cause = exc.__cause__
        if cause is None:
            raise
        fix = bugs.explain_error(str(cause), hint)
        first = str(cause).splitlines()[0] if str(cause) else ""
        reason = f"{fix} ({type(cause).__name__}: {first})" if fix else f"{type(cause).__name__}: {first}"
        raise AssertionError(f"{what} raised an error: {reason}") from cause


def _pair(value, what: str) -> tuple:
    return kit.expect_tuple(value, 2, what, ("output", "weights"))


# ---------------------------------------------------------------- part 1

BATCHED_HINT = ("It works on 2-D inputs (T, d) but not with leading batch/head axes: transpose only the last two "
                "axes, k.transpose(-2, -1) (k.T reverses every axis), and multiply with @ (torch.matmul keeps "
                "leading axes; torch.mm and torch.bmm do not).")


def check_scaled_dot_product_attention(fn: Callable) -> None:
    """Shapes (2-D, 3-D, 4-D), the √d_k scale, the softmax axis, masks (broadcast, exact zeros,
    fully masked rows), float16 inputs (dtype kept, finite) and CPU float16 autocast."""
    g = torch.Generator().manual_seed(3)
    what = "scaled_dot_product_attention"
    # first: an input changed in place would make every value check below compare with the wrong q
    q, k, v = (torch.randn(2, 6, 8, generator=g) for _ in range(3))
    try:
        problem = contract_problem(fn, (q, k, v, bugs.causal_mask_formula(6)), what,
                                   names=("q", "k", "v", "mask"))
    except Exception:   # a crash is explained by the checks below, with the call that caused it
        problem = None
    kit.fail_if(problem)
    # unbatched first, so that a batched failure can be told apart (k.T, torch.mm)
    q, k, v = torch.randn(5, 4, generator=g), torch.randn(7, 4, generator=g), torch.randn(7, 6, generator=g)
    out, w = _pair(_call(what, fn, q, k, v), what)
    kit.fail_if(bugs.name_attention_bug(out, w, q, k, v), f"{what} (2-D inputs q (5, 4), k (7, 4), v (7, 6))")
    for d_k in (4, 64):
        q, k = torch.randn(2, 3, 5, d_k, generator=g), torch.randn(2, 3, 7, d_k, generator=g)
        v = torch.randn(2, 3, 7, 6, generator=g)
        out, w = _pair(_call(f"{what} on (B, H, T, d) inputs", fn, q, k, v, hint=BATCHED_HINT), what)
        kit.fail_if(bugs.name_attention_bug(out, w, q, k, v), f"{what} (no mask, d_k={d_k})")
        kit.expect_tensor(out, "for float32 inputs the output", dtype=torch.float32)
    q, k, v = (torch.randn(2, 6, 8, generator=g) for _ in range(3))
    mask = bugs.causal_mask_formula(6) & torch.tensor([[True] * 4 + [False] * 2, [True] * 6])[:, None, :]  # (2, 6, 6)
    mask[0, 2] = False  # a query with no allowed key
    out, w = _pair(_call(what, fn, q, k, v, mask=mask), what)
    kit.fail_if(bugs.name_attention_bug(out, w, q, k, v, mask), f"{what} (with a (B, T_q, T_k) mask)")
    q4, k4, v4 = (torch.randn(2, 3, 6, 8, generator=g) for _ in range(3))
    pad = bugs.key_padding_formula(torch.tensor([6, 3]), 6)[:, None, None, :]
    for m, shape in ((mask[1, :, :].clone(), "(T_q, T_k)"), (pad, "(B, 1, 1, T_k)")):
        out, w = _pair(_call(f"{what} with a {shape} mask", fn, q4, k4, v4, mask=m), what)
        kit.fail_if(bugs.name_attention_bug(out, w, q4, k4, v4, m), f"{what} (a {shape} mask broadcast over B, H)")
    h = (q.half(), k.half(), v.half())
    out16, w16 = _pair(_call(f"{what} on float16 inputs", fn, *h, mask=mask), what)
    kit.fail_if(bugs.name_half_attention_bug(out16, w16, *h, mask), f"{what} (float16 inputs)")
    with torch.autocast("cpu", dtype=torch.float16):
        result = _call(f"{what} under torch.autocast(float16)", fn, q, k, v, mask=mask)
    out, w = _pair(result, what)
    kit.fail_if(bugs.name_half_attention_bug(out, w, q, k, v, mask, dtype=None), f"{what} (under float16 autocast)")
    kit.ok(f"{what}: shapes, 1/√d_k scale, softmax over keys, masks, fully masked rows, float16, gradients "
           "and untouched inputs look right")


# ---------------------------------------------------------------- part 2

#: Lengths the causal mask is checked at: every known bug gives its own mask at the first one.
CAUSAL_LENGTHS = (5, 9, 1)


def check_masks(causal_mask: Callable, combine_masks: Callable) -> None:
    """causal_mask(T) for a few T (bugs differ at T=5, so it comes first), combine_masks on a
    padded batch, square and rectangular."""
    for T in CAUSAL_LENGTHS:
        kit.fail_if(bugs.name_causal_mask_bug(_call(f"causal_mask({T})", causal_mask, T), T), f"causal_mask({T})")
    causal = bugs.causal_mask_formula(5)
    pad = bugs.key_padding_formula(torch.tensor([5, 3, 1]), 5)
    cases = ((causal, pad, "(5, 5) causal, (3, 5) padding"),
             (causal[3:], pad[:2], "rectangular: (2, 5) causal for 2 new queries over 5 keys, (2, 5) padding"))
    for c, p, where in cases:
        got = _call("combine_masks", combine_masks, c, p, hint=bugs.COMBINE_BROADCAST_HINT)
        kit.fail_if(bugs.name_combine_masks_bug(got, c, p), f"combine_masks ({where})")
    kit.ok("causal_mask and combine_masks look right")


# ---------------------------------------------------------------- part 3

def _check_split_merge(mha, d: int, H: int) -> None:
    x = torch.arange(2 * 5 * d, dtype=torch.float32).reshape(2, 5, d)
    heads = _call("split_heads", mha.split_heads, x)
    if not isinstance(heads, Tensor) or heads.shape != (2, H, 5, d // H):
        raise AssertionError(f"split_heads should map (2, 5, {d}) to (2, {H}, 5, {d // H}) (B, H, T, d_h), "
                             f"got {kit.describe(heads)}.")
    if not kit.same(heads, bugs.split_heads_formula(x, H)):
        if kit.same(heads, bugs.split_heads_formula(x, H, "view_no_transpose")):
            raise AssertionError("split_heads reshapes (B, T, d) straight to (B, H, T, d_h), which mixes time steps "
                                 "and heads: view as (B, T, H, d_h) first, then .transpose(1, 2).")
        raise AssertionError("split_heads: head h must hold features [h*d_h:(h+1)*d_h] of every time step; view x "
                             "as (B, T, H, d_h) and then transpose(1, 2).")
    back = _call("merge_heads", mha.merge_heads, heads)
    if not isinstance(back, Tensor) or back.shape != x.shape:
        raise AssertionError(f"merge_heads should map (2, {H}, 5, {d // H}) back to (2, 5, {d}), got {kit.describe(back)}.")
    if not kit.same(back, x):
        if kit.same(back, heads.reshape(2, 5, d)):
            raise AssertionError("merge_heads reshapes (B, H, T, d_h) to (B, T, d) without moving the head axis: "
                                 "transpose(1, 2) to (B, T, H, d_h) first, then reshape.")
        raise AssertionError("merge_heads(split_heads(x)) should give x back: transpose(1, 2), then reshape to "
                             "(B, T, d_model).")


def check_multi_head_attention(cls: type) -> None:
    """Projections, split/merge, and equality with nn.MultiheadAttention given the same weights
    (self-attention with a causal mask, cross-attention with key padding, different key and
    value inputs, float16 autocast)."""
    d, H = 24, 3  # d_head = 8: √d_model, d_head and √d_head all differ
    mha = _call(f"MultiHeadAttention({d}, {H})", cls, d, H)
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        layer = getattr(mha, name, None)
        if not isinstance(layer, nn.Linear) or layer.weight.shape != (d, d) or layer.bias is None:
            raise AssertionError(f"MultiHeadAttention needs self.{name} = nn.Linear(d_model, d_model) (with bias); "
                                 f"found {kit.describe(layer) if not isinstance(layer, nn.Module) else layer}.")
    _check_split_merge(mha, d, H)
    ref, sd = bugs.torch_mha(d, H, 0)
    keys = _call("load_state_dict", mha.load_state_dict, sd, strict=False)
    if keys.missing_keys or keys.unexpected_keys:
        raise AssertionError(f"MultiHeadAttention({d}, {H}) should have exactly the parameters of q_proj, k_proj, "
                             f"v_proj and out_proj; missing {keys.missing_keys}, extra "
                             f"{[n for n, _ in mha.named_parameters() if n not in sd]}.")
    g = torch.Generator().manual_seed(1)
    x, mem, kx, vx = (torch.randn(2, n, d, generator=g) for n in (5, 7, 5, 5))
    causal = bugs.causal_mask_formula(5)
    pad = bugs.key_padding_formula(torch.tensor([7, 4]), 7)
    with torch.no_grad():
        got = _call("MultiHeadAttention.forward", mha, x, x, x, mask=causal)
        kit.fail_if(bugs.name_mha_bug(got, sd, H, x, x, x, causal), "self-attention with a causal mask")
        if not kit.close(got, ref(x, x, x, attn_mask=~causal, need_weights=False)[0], 1e-4):
            raise AssertionError("self-attention differs from nn.MultiheadAttention with the same weights.")
        got = _call("MultiHeadAttention.forward (cross-attention, query 5 steps, key/value 7 steps)",
                    mha, x, mem, mem, mask=pad[:, None, None, :],
                    hint="Keys and values come from `key` and `value`, whose length may differ from the query's.")
        kit.fail_if(bugs.name_mha_bug(got, sd, H, x, mem, mem, pad[:, None, None, :]),
                    "cross-attention (query 5 steps, key/value 7 steps, a (B, 1, 1, T_k) padding mask)")
        w = getattr(mha, "last_weights", None)
        if not isinstance(w, Tensor) or w.shape != (2, H, 5, 7):
            raise AssertionError(f"keep the attention weights in self.last_weights, shape (B, H, T_q, T_k) = "
                                 f"(2, {H}, 5, 7), every head's own (not their mean); found {kit.describe(w)}.")
        per_head = ref(x, mem, mem, key_padding_mask=~pad, need_weights=True, average_attn_weights=False)[1]
        kit.expect_close(w, per_head, "self.last_weights (cross-attention)", atol=1e-5,
                         hint="store the weights your scaled_dot_product_attention returned, per head.")
        got = _call("MultiHeadAttention.forward (different key and value)", mha, x, kx, vx)
        kit.fail_if(bugs.name_mha_bug(got, sd, H, x, kx, vx), "query, key and value three different tensors")
        with torch.autocast("cpu", dtype=torch.float16):
            got = _call("MultiHeadAttention.forward under torch.autocast(float16)", mha, x, x, x, mask=causal)
    got = kit.expect_tensor(got, "under float16 autocast the output", shape=(2, 5, d))
    kit.expect_finite(got, "under float16 autocast the output",
                      "Fill masked scores with torch.finfo(scores.dtype).min in your attention (part 1).")
    err = (got.double() - bugs.mha_formula(sd, H, x, x, x, causal)).abs().max().item()
    if err > 5e-2:
        raise AssertionError(f"under float16 autocast the output differs from float32 by {err:.3g}. " + bugs.PART1_NOTE)
    kit.fail_if(contract_problem(mha, (x, x, x, causal), "MultiHeadAttention.forward",
                                 names=("query", "key", "value", "mask")))
    kit.ok("MultiHeadAttention matches torch.nn.MultiheadAttention (self- and cross-attention, masks, per-head "
           "weights, float16 autocast, gradients)")


# ---------------------------------------------------------------- part 4

#: Table sizes checked (d/2 odd included); every known bug differs from the others at the first one.
POSITION_SIZES = ((10, 8), (50, 32), (7, 6), (1, 4))


def check_sinusoidal_positions(fn: Callable) -> None:
    """The table for a few sizes (d/2 odd included) against the formula in float64."""
    for T, d in POSITION_SIZES:
        got = _call(f"sinusoidal_positions({T}, {d})", fn, T, d)
        kit.fail_if(bugs.name_sinusoid_bug(got, T, d), f"sinusoidal_positions({T}, {d})")
    kit.ok("sinusoidal_positions matches sin/cos interleaved with frequencies 1/10000^(2i/d)")


# ---------------------------------------------------------------- part 5

COUNT_CONFIGS = (
    dict(vocab_size=50, block_size=16, n_layer=3, n_head=2, n_embd=32, dropout=0.0),
    dict(vocab_size=103, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0),
    dict(vocab_size=11, block_size=5, n_layer=1, n_head=1, n_embd=8, dropout=0.1),
)
CONFIG_HINT = "config is a plain dict with the keys vocab_size, block_size, n_layer, n_head, n_embd, dropout: read config['n_embd'] etc."
FORMULA = "N = L(12d² + 13d) + Vd + Td + 2d"


def check_count_parameters(fn: Callable) -> None:
    """A few configs counted by formula and, when genlab's GPT is available, against the real model."""
    for config in COUNT_CONFIGS:
        got = _call("count_parameters", fn, dict(config), hint=CONFIG_HINT)
        kit.fail_if(bugs.name_parameter_bug(got, config), f"count_parameters({config})")
    real = _real_gpt_count(COUNT_CONFIGS[0])
    if real is not None:
        got = fn(dict(COUNT_CONFIGS[0]))
        if got != real:
            raise AssertionError(f"genlab's GPT with {COUNT_CONFIGS[0]} has {real} parameters, your formula says {got}.")
    kit.ok(f"count_parameters is exact: {FORMULA}. Per layer attention 4d² + 4d (whatever the number of heads), "
           "MLP 8d² + 5d, LayerNorms 4d: the MLP holds about 2/3 of a block, attention 1/3"
           + (f"; the real GPT agrees ({real:,} parameters for the first config)." if real is not None else "."))


def _real_gpt_count(config: dict) -> int | None:
    try:
        from genlab.models import GPT
    except ImportError:
        return None
    model = GPT(**{k: config[k] for k in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")})
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- part 6

def check_kv_cache_step(fn: Callable) -> None:
    """Step-by-step decoding with the cache equals full causal attention."""
    g = torch.Generator().manual_seed(5)
    B, H, T, d_h = 2, 3, 6, 8
    q, k, v = (torch.randn(B, H, T, d_h, generator=g) for _ in range(3))
    full = bugs.attention_formula(q, k, v, bugs.causal_mask_formula(T))[0]  # (B, H, T, d_h), float64
    cache_k = cache_v = None
    for t in range(T):
        step = (q[:, :, t:t + 1], k[:, :, t:t + 1], v[:, :, t:t + 1], cache_k, cache_v)
        if t == 0:
            result = _call("kv_cache_step (first step, no cache)", fn, *step)
        else:
            past = tuple(cache_k.shape) if isinstance(cache_k, Tensor) else None
            result = _call(f"kv_cache_step at step {t} (cache_k of shape {past})", fn, *step,
                           hint="The first step worked, so look at how the cache grows: append the new key and "
                                "value along the time axis, torch.cat([cache_k, k_new], dim=-2), so that every "
                                "other axis still fits.")
        out, cache_k, cache_v = kit.expect_tuple(result, 3, "kv_cache_step", ("out", "cache_k", "cache_v"))
        kit.fail_if(bugs.name_kv_cache_bug(t, out, cache_k, cache_v, full[:, :, t:t + 1], k[:, :, :t + 1],
                                           v[:, :, :t + 1]), "kv_cache_step")
    kit.ok(f"kv_cache_step: {T} cached steps reproduce full causal attention")
