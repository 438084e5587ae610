"""Recognise the usual bugs of lab 03's graded parts from their outputs.

Each ``name_*_bug`` function compares a result against the correct answer and against
what the common mistakes would have produced, and returns a hint that names the likely
bug (or ``None`` when the result is right). Both the notebook's public checks and the
hidden autograder tests use them, so a student sees the same words in both places.
Every function works on plain tensors and numbers; none of them calls student code.

The namers test the most specific diagnosis first and the catch-all last, and the checks
that call them use sizes at which the known bugs give different numbers (the lab's tests
assert that they do).

Parts, numbered as in the notebook: 1 attention, 2 masks, 3 multi-head attention,
4 positions, 5 parameter count, 6 KV cache.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from genlab.checks.kit import KNOWN_ERRORS, close, describe, same
from genlab.checks.recorded import oracle

__all__ = [
    "ERROR_HINTS",
    "explain_error",
    "explained_call",
    "attention_formula",
    "name_attention_bug",
    "name_half_attention_bug",
    "causal_mask_formula",
    "key_padding_formula",
    "combine_masks_formula",
    "name_causal_mask_bug",
    "name_combine_masks_bug",
    "split_heads_formula",
    "torch_mha",
    "mha_formula",
    "name_mha_bug",
    "sinusoid_formula",
    "SINUSOID_BUGS",
    "name_sinusoid_bug",
    "gpt_parameter_formula",
    "PARAMETER_BUGS",
    "name_parameter_bug",
    "name_kv_cache_bug",
]


# ---------------------------------------------------------------- errors students cause

#: torch errors this lab's answers commonly raise (beyond ``kit.KNOWN_ERRORS``), each with its fix.
ERROR_HINTS: tuple[tuple[str, str], ...] = (
    ("t() expects a tensor with <= 2 dimensions",
     "k.t() only transposes 2-D tensors; with batch and head axes use k.transpose(-2, -1)"),
    ("must be a 3D tensor", "torch.bmm takes 3-D tensors only; use @ (torch.matmul), which keeps any leading axes"),
    ("self must be a matrix", "torch.mm takes 2-D tensors only; use @ (torch.matmul), which keeps any leading axes"),
    ("must be Tensor, not int",
     "torch.sqrt needs a tensor; for a Python number such as d_k use math.sqrt(d_k) or d_k ** 0.5"),
    ("must be Tensor, not float",
     "torch functions need tensors; for a Python number use the math module (math.sqrt, math.exp)"),
    ("expected scalar type", "a float32 tensor met a float16 one: compute in the inputs' own dtype instead of "
                             "calling .float() on only some of the tensors"),
    ("view size is not compatible with input tensor's size and stride",
     "after transpose(1, 2) the tensor is no longer contiguous, so .view cannot regroup its axes: use "
     ".reshape(B, T, d_model) (or .contiguous().view(...))"),
    ("Sizes of tensors must match except in dimension",
     "torch.cat joins tensors along one axis and needs every other axis equal: the cache and the new entry "
     "are (B, H, T, d_h), so append along the time axis, dim=-2"),
    ("object has no attribute 'n_", "config is a plain dict: read config['n_embd'], not config.n_embd"),
)


def explain_error(text: str, hint: str = "") -> str | None:
    """The fix for a torch error message a student's code raised, or ``None`` if none is known.

    This lab's own sentences come first, then ``hint`` (what the caller knows about the
    call), then the kit's generic ``KNOWN_ERRORS``.
    """
    for needle, sentence in ERROR_HINTS:
        if needle in text:
            return sentence
    if hint:
        return hint
    for needle, sentence in KNOWN_ERRORS:
        if needle in text:
            return sentence
    return None


def explained_call(call, fn, /, *args, hint: str = "", **kwargs):
    """``call(fn, *args, **kwargs)`` (the hidden tests' ``kit.call``); the AssertionError it
    raises for an error of the student's code gets the fix from ``explain_error`` appended."""
    try:
        return call(fn, *args, explain=False, **kwargs)
    except AssertionError as exc:
        fix = explain_error(str(exc), hint)
        raise AssertionError(f"{exc}\n{fix}." if fix else str(exc)) from None


# ---------------------------------------------------------------- 1. attention

def _scale(q: Tensor, k: Tensor, v: Tensor, scale: str | float) -> float:
    if not isinstance(scale, str):
        return float(scale)
    return {"sqrt": math.sqrt(q.shape[-1]), "dk": float(q.shape[-1]), "none": 1.0,
            "sqrt_dv": math.sqrt(v.shape[-1]), "sqrt_tk": math.sqrt(k.shape[-2])}[scale]


@oracle
def attention_formula(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None,
                      scale: str | float = "sqrt", dim: int = -1, mask_scores: bool = True,
                      zero_masked: bool = True) -> tuple[Tensor, Tensor]:
    """softmax(q kᵀ / s) v in float64, correct or with one of the usual bugs.

    scale: "sqrt" (√d_k, correct), "dk" (d_k), "none" (1), "sqrt_dv" (√d_v), "sqrt_tk" (√T_k),
    or a number. dim: -1 (over keys, correct) or -2 (over queries). mask_scores=False: the
    softmax sees every score and masked weights are zeroed only afterwards. zero_masked=False:
    masked weights are not zeroed after the softmax, so a fully masked row stays uniform.
    Correct: masked weights are 0 and fully masked rows give 0.
    """
    q, k, v = q.double(), k.double(), v.double()
    scores = q @ k.transpose(-2, -1) / _scale(q, k, v, scale)
    if mask is not None and mask_scores:
        scores = scores.masked_fill(~mask, torch.finfo(torch.float64).min)
    weights = torch.softmax(scores, dim=dim)
    if mask is not None and zero_masked:
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights


ATTENTION_SCALE_BUGS = (
    ("none", "the scores were not scaled: divide q @ kᵀ by math.sqrt(d_k), where d_k = q.shape[-1] "
             "(d_k = 64 gives 8)"),
    ("dk", "the scores were divided by d_k instead of √d_k: use math.sqrt(d_k)"),
    ("sqrt_dv", "the scores were divided by √d_v (v.shape[-1]); the scale is √d_k, the width of q and k: "
                "math.sqrt(q.shape[-1])"),
    ("sqrt_tk", "the scores were divided by the square root of the number of keys (k.shape[-2]); the scale is "
                "√d_k, the last axis of q and k: math.sqrt(q.shape[-1])"),
)


def name_attention_bug(out, weights, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None,
                       atol: float = 1e-4) -> str | None:
    """None if ``(out, weights)`` is right; otherwise a hint naming the likely bug.

    Masked weights must be exactly 0 and a query with no allowed key must get weights 0 and
    output 0, not merely small numbers.
    """
    want_out, want_w = attention_formula(q, k, v, mask)
    if not isinstance(out, Tensor) or not isinstance(weights, Tensor):
        return (f"expected two tensors (output, weights), got {describe(out)} and {describe(weights)}; "
                "return `output, weights`.")
    if out.shape != want_out.shape:
        return (f"output should have shape {tuple(want_out.shape)} (..., T_q, d_v) but has {tuple(out.shape)}; "
                "multiply the (..., T_q, T_k) weights by v (..., T_k, d_v).")
    if weights.shape != want_w.shape:
        return (f"weights should have shape {tuple(want_w.shape)} (..., T_q, T_k) but have {tuple(weights.shape)}; "
                "scores are q @ k.transpose(-2, -1).")
    if torch.isnan(out).any() or torch.isnan(weights).any():
        return ("the result contains NaN. A row whose keys are all masked is all -inf before the softmax "
                "and softmax gives 0/0 = NaN; fill with torch.finfo(scores.dtype).min instead of -inf, "
                "and set the weights of masked positions to exactly 0 after the softmax.")
    w, o = weights.double(), out.double()
    allowed = None if mask is None else mask.expand(want_w.shape)
    if close(out, want_out, atol) and close(weights, want_w, atol):
        if allowed is not None and (~allowed).any() and w.masked_select(~allowed).abs().max() != 0:
            leak = float(w.masked_select(~allowed).abs().max())
            return (f"masked positions must get weight exactly 0, but yours get up to {leak:.3g}: a moderate "
                    "negative fill (such as -100 or -1e4) leaves tiny weights. Fill with "
                    "torch.finfo(scores.dtype).min and set the masked weights to 0 after the softmax.")
        return None
    if allowed is not None:
        has_key = allowed.any(-1)  # (..., T_q)
        rows = has_key.unsqueeze(-1)
        if not has_key.all():
            rest_ok = close(w * rows, want_w, atol) and close(o * rows, want_out * rows, atol)
            if rest_ok:
                if close(weights, attention_formula(q, k, v, mask, zero_masked=False)[1], atol):
                    return ("a query whose keys are all masked got uniform weights (1/T_k each): every score in "
                            "its row is the same fill value, so the softmax spreads evenly. Such a row must get "
                            "weights exactly 0 and output 0: set the masked weights to 0 after the softmax "
                            "(weights.masked_fill(~mask, 0.0)).")
                return ("a query whose keys are all masked must get weights exactly 0 and output 0; the other rows "
                        "are right. Set the masked weights to 0 after the softmax (weights.masked_fill(~mask, 0.0)).")
        if close(weights, attention_formula(q, k, v, ~mask)[1], atol):
            return ("your weights follow the inverted mask: in genlab a mask is True where attention is "
                    "ALLOWED (the opposite of nn.MultiheadAttention's attn_mask). Fill the scores where ~mask.")
        if close(weights, attention_formula(q, k, v, mask, mask_scores=False)[1], atol):
            return ("the masked weights were set to 0 after the softmax, but the scores were not masked before it: "
                    "the weights left over no longer sum to 1. Fill the masked scores with "
                    "torch.finfo(scores.dtype).min before the softmax (and keep zeroing them after it).")
        leaked = w.masked_select(~allowed & rows)
        if leaked.numel() and float(leaked.abs().max()) > atol:
            return (f"masked positions got weight up to {float(leaked.abs().max()):.3g}; they must be exactly 0: "
                    "fill the scores where mask is False before the softmax (scores.masked_fill(~mask, ...)).")
    for scale, hint in ATTENTION_SCALE_BUGS:
        if close(out, attention_formula(q, k, v, mask, scale=scale)[0], atol):
            return f"output matches softmax(QKᵀ/s)V with the wrong scale: {hint}."
    if close(weights, attention_formula(q, k, v, mask, dim=-2)[1], atol):
        return ("your weights sum to 1 down each column (over queries) instead of along each row: "
                "the softmax must run over the keys, the last axis (dim=-1).")
    row_sums = w.sum(-1)
    has = want_w.sum(-1) > 0.5
    if has.any() and (row_sums[has] - 1).abs().max() > 1e-3:
        return (f"each row of the weights should sum to 1 over the allowed keys, but a row sums to "
                f"{float(row_sums[has][(row_sums[has] - 1).abs().argmax()]):.4g}; apply softmax(dim=-1) to the scores.")
    err_out = (o - want_out).abs().max().item()
    err_w = (w - want_w).abs().max().item()
    return (f"the result differs from softmax(QKᵀ/√d_k)·V (max error {err_out:.3g} in the output, {err_w:.3g} in "
            "the weights). Check the order: scores = q @ kᵀ / √d_k, mask, softmax over the last axis, weights @ v.")


def name_half_attention_bug(out, weights, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None,
                            dtype: torch.dtype | None = torch.float16, atol: float = 3e-2) -> str | None:
    """None if attention run in float16 (``.half()`` inputs, or under autocast with ``dtype=None``)
    is right: the output's dtype, no inf/NaN, masked weights exactly 0, close to float32."""
    if not isinstance(out, Tensor) or not isinstance(weights, Tensor):
        return f"expected two tensors (output, weights), got {describe(out)} and {describe(weights)}."
    want_out, want_w = attention_formula(q, k, v, mask)
    if out.shape != want_out.shape or weights.shape != want_w.shape:
        return (f"output and weights should have shapes {tuple(want_out.shape)} and {tuple(want_w.shape)}, got "
                f"{tuple(out.shape)} and {tuple(weights.shape)}.")
    if dtype is not None and out.dtype != dtype:
        return (f"{dtype} inputs should give a {dtype} output, got {out.dtype}: compute in the inputs' own dtype "
                "(under mixed precision a float32 result doubles the memory of every layer); if you convert to "
                "float32 inside, convert the output back with .to(q.dtype).")
    if not (torch.isfinite(out).all() and torch.isfinite(weights).all()):
        return ("in float16 the output or the weights contain inf/NaN. Fill masked scores with "
                "torch.finfo(scores.dtype).min (not -inf, not -1e9) and set masked weights to 0 after the softmax.")
    if mask is not None:
        allowed = mask.expand(want_w.shape)
        if (~allowed).any() and weights.masked_select(~allowed).abs().max() != 0:
            return ("in float16 masked positions (and queries whose keys are all masked) must get weight exactly 0: "
                    "set the masked weights to 0 after the softmax.")
    err = (out.double() - want_out).abs().max().item()
    if err > atol:
        return (f"in float16 the output differs from float32 attention by {err:.3g}, more than float16 rounding "
                "explains. If the float32 check fails too, fix that first.")
    return None


# ---------------------------------------------------------------- 2. masks

#: The usual causal-mask bugs, most specific first: (variant of ``causal_mask_formula``, hint).
CAUSAL_MASK_BUGS: tuple[tuple[str, str], ...] = (
    ("blocked", "this is the True = blocked convention (nn.MultiheadAttention's attn_mask, the triu(diagonal=1) of "
                "many tutorials). Here True marks what a query MAY attend to, its past and itself: "
                "torch.ones(T, T, dtype=torch.bool).tril(), or invert yours with ~."),
    ("no_diagonal", "the diagonal is False, so a position cannot attend to itself: key j is allowed when j <= i, "
                    "not j < i (an off-by-one; use tril() with diagonal=0)."),
    ("one_future", "each position may see one future position (an off-by-one): allow key j only when j <= i "
                   "(tril() with diagonal=0)."),
    ("transposed", "the mask is transposed: rows are queries and columns keys, so True belongs in the lower "
                   "triangle (j <= i), which is torch.tril, not torch.triu."),
)


@oracle
def causal_mask_formula(T: int, variant: str = "right") -> Tensor:
    """The (T, T) bool causal mask (True where key j <= query i), or one of ``CAUSAL_MASK_BUGS``."""
    ones = torch.ones(T, T, dtype=torch.bool)
    return {"right": ones.tril(), "blocked": ones.triu(1), "no_diagonal": ones.tril(-1), "one_future": ones.tril(1),
            "transposed": ones.triu()}[variant]


@oracle
def key_padding_formula(lengths: Tensor, T: int) -> Tensor:
    """(B, T) bool: True for the first ``lengths[b]`` positions of row b (the real tokens)."""
    return torch.arange(T)[None, :] < lengths[:, None]


def name_causal_mask_bug(got, T: int) -> str | None:
    """None if ``got`` is the (T, T) lower-triangular bool mask; otherwise the likely bug.

    Call it with T >= 3 first: at T = 1 and 2 several bugs give the same mask.
    """
    if not isinstance(got, Tensor):
        return f"causal_mask({T}) should return a bool tensor of shape ({T}, {T}), got {describe(got)}."
    if tuple(got.shape) != (T, T):
        return f"causal_mask({T}) should have shape ({T}, {T}), got {tuple(got.shape)}."
    if got.dtype != torch.bool:
        if got.is_floating_point() and bool(torch.isinf(got).any()):
            return (f"causal_mask returns an additive float mask (0 and -inf, dtype {got.dtype}); here a mask is "
                    "bool, True where a query may attend: torch.ones(T, T, dtype=torch.bool).tril().")
        return (f"causal_mask must return dtype torch.bool (True = may attend), got {got.dtype}; "
                "build it with dtype=torch.bool, e.g. torch.ones(T, T, dtype=torch.bool).tril().")
    if same(got, causal_mask_formula(T)):
        return None
    for variant, hint in CAUSAL_MASK_BUGS:
        if same(got, causal_mask_formula(T, variant)):
            return hint
    return f"causal_mask({T}) should be True exactly where key j <= query i (lower triangle incl. the diagonal)."


COMBINE_BROADCAST_HINT = ("causal (T_q, T_k) and key_padding (B, T_k) do not broadcast against each other as they "
                          "are: give them the axes of (B, 1, T_q, T_k) first, causal[None, None, :, :] and "
                          "key_padding[:, None, None, :], then combine them with &.")


@oracle
def combine_masks_formula(causal: Tensor, key_padding: Tensor, variant: str = "right") -> Tensor:
    """``causal (T_q, T_k) & key_padding (B, T_k)`` as (B, 1, T_q, T_k), or a usual bug: "or" (|),
    "rows" (padding applied to the queries; square only), "inverted_causal", "inverted_padding"."""
    c, p = causal[None, None], key_padding[:, None, None, :]
    if variant == "rows":
        return c & key_padding[:, None, :, None]
    return {"right": c & p, "or": c | p, "inverted_causal": ~c & p, "inverted_padding": c & ~p}[variant]


COMBINE_MASKS_BUGS: tuple[tuple[str, str], ...] = (
    ("or", "the masks were combined with OR (|): a key is allowed only if BOTH masks allow it, so combine them with "
           "AND (&)."),
    ("rows", "key_padding was applied to the queries (rows) instead of the keys (columns): index it as "
             "key_padding[:, None, None, :] so it varies along the last axis."),
    ("inverted_causal", "the causal mask was inverted (~causal): both masks are True where attention is allowed, use "
                        "them as given."),
    ("inverted_padding", "the padding mask was inverted: key_padding is True for real tokens (which may be attended "
                         "to), so use key_padding itself, not ~key_padding."),
)


def name_combine_masks_bug(got, causal: Tensor, key_padding: Tensor) -> str | None:
    """None if ``got`` is ``causal & key_padding`` as ``(B, 1, T_q, T_k)``; otherwise the likely bug."""
    B, T_q, T_k = key_padding.shape[0], causal.shape[0], causal.shape[1]
    if not isinstance(got, Tensor):
        return f"combine_masks should return a bool tensor of shape {(B, 1, T_q, T_k)}, got {describe(got)}."
    if got.dtype != torch.bool:
        return f"combine_masks must return dtype torch.bool (True = may attend), got {got.dtype}; combine with &."
    if tuple(got.shape) != (B, 1, T_q, T_k):
        hint = ""
        if got.dim() == 3:
            hint = " Keep a size-1 axis for the heads: (B, 1, T_q, T_k) broadcasts over (B, H, T_q, T_k)."
        elif T_q != T_k and got.dim() == 4 and tuple(got.shape[-2:]) in ((T_k, T_k), (T_q, T_q)):
            hint = (" The query and key lengths may differ (new queries over a longer past): take T_q from "
                    "causal.shape[0] and T_k from causal.shape[1], or let broadcasting do it.")
        return (f"combine_masks should return shape (B, 1, T_q, T_k) = {(B, 1, T_q, T_k)}, got {tuple(got.shape)}."
                + hint)
    if same(got, combine_masks_formula(causal, key_padding)):
        return None
    for variant, hint in COMBINE_MASKS_BUGS:
        if variant == "rows" and T_q != T_k:
            continue
        if same(got, combine_masks_formula(causal, key_padding, variant)):
            return hint
    return "combine_masks should be True exactly where causal[i, j] and key_padding[b, j] are both True."


# ---------------------------------------------------------------- 3. multi-head attention

PART1_NOTE = "(This part uses your scaled_dot_product_attention: if part 1's check fails, fix that first.)"


def _split_heads(x: Tensor, H: int, variant: str) -> Tensor:
    B, T, d = x.shape
    if variant == "view_no_transpose":
        return x.reshape(B, H, T, d // H)
    return x.reshape(B, T, H, d // H).transpose(1, 2)


@oracle
def split_heads_formula(x: Tensor, n_heads: int, variant: str = "right") -> Tensor:
    """(B, T, d) -> (B, H, T, d/H): head h holds features [h*d_h:(h+1)*d_h]; "view_no_transpose" is the usual bug."""
    return _split_heads(x, n_heads, variant)


def torch_mha(d_model: int, n_heads: int, seed: int) -> tuple[nn.MultiheadAttention, dict[str, Tensor]]:
    """Inputs, not an answer: torch's ``nn.MultiheadAttention(d_model, n_heads, batch_first=True)``
    in eval mode, drawn after ``torch.manual_seed(seed)`` and given random (non-zero) biases, and
    the same weights as a ``q_proj``/``k_proj``/``v_proj``/``out_proj`` state dict (q, k and v
    are the row blocks of its ``in_proj_weight``) to load into a ``MultiHeadAttention``."""
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
    with torch.no_grad():
        ref.in_proj_bias.normal_(0, 0.5)
        ref.out_proj.bias.normal_(0, 0.5)
    w, b = ref.in_proj_weight.detach().split(d_model), ref.in_proj_bias.detach().split(d_model)
    state = {}
    for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
        state[f"{name}.weight"], state[f"{name}.bias"] = w[i].clone(), b[i].clone()
    state["out_proj.weight"] = ref.out_proj.weight.detach().clone()
    state["out_proj.bias"] = ref.out_proj.bias.detach().clone()
    return ref.eval(), state


def _merge_heads(x: Tensor, variant: str) -> Tensor:
    B, H, T, d_h = x.shape
    if variant == "no_transpose":
        return x.reshape(B, T, H * d_h)
    return x.transpose(1, 2).reshape(B, T, H * d_h)


@oracle
def mha_formula(state: dict, n_heads: int, query: Tensor, key: Tensor, value: Tensor,
                mask: Tensor | None = None, split: str = "right", merge: str = "right",
                out_proj: bool = True, scale: str | float = "sqrt", dim: int = -1,
                sources: str = "right", biases: bool = True) -> Tensor:
    """Multi-head attention in float64 from a ``state_dict`` with q/k/v/out_proj weights and biases.

    split/merge/out_proj/biases select the usual bugs ("view_no_transpose", "no_transpose",
    False, False: q, k, v projected without their biases); sources: "right", "kv_from_query" (k and v projected from ``query``),
    "v_from_key"; scale/dim select attention bugs as in ``attention_formula`` ("sqrt_d_model":
    the scores divided by √d_model instead of √d_head).
    """
    sd = {name: t.double() for name, t in state.items()}

    def lin(x, name):
        y = x.double() @ sd[f"{name}.weight"].T
        return y + sd[f"{name}.bias"] if biases or name == "out_proj" else y

    k_in = query if sources == "kv_from_query" else key
    v_in = {"kv_from_query": query, "v_from_key": key}.get(sources, value)
    q = _split_heads(lin(query, "q_proj"), n_heads, split)
    k = _split_heads(lin(k_in, "k_proj"), n_heads, split)
    v = _split_heads(lin(v_in, "v_proj"), n_heads, split)
    if scale == "sqrt_d_model":
        scale = math.sqrt(query.shape[-1])
    out, _ = attention_formula(q, k, v, mask, scale=scale, dim=dim)
    if split == "view_no_transpose":
        merged = out.reshape(out.shape[0], out.shape[2], -1)
    else:
        merged = _merge_heads(out, merge)
    return lin(merged, "out_proj") if out_proj else merged


def _matches(got: Tensor, atol: float, formula, *args, **kwargs) -> bool:
    """True if ``got`` is close to ``formula(*args, **kwargs)``; a bug that cannot apply to
    these inputs (its shapes do not fit) simply does not match."""
    try:
        want = formula(*args, **kwargs)
    except RuntimeError:
        return False
    return close(got, want, atol)


_INSIDE = ("If forward calls your part-1 scaled_dot_product_attention, fix it there (part 1's check names the "
           "bug); if forward computes the scores itself, fix them there.")


def name_mha_bug(got, state: dict, n_heads: int, query, key, value, mask=None, atol: float = 1e-4) -> str | None:
    """None if ``got`` matches multi-head attention with these weights; otherwise the likely bug."""
    want = mha_formula(state, n_heads, query, key, value, mask)
    if not isinstance(got, Tensor):
        return f"forward should return a tensor of shape {tuple(want.shape)} (B, T_q, d_model), got {describe(got)}."
    if got.shape != want.shape:
        return (f"forward should return shape {tuple(want.shape)} (B, T_q, d_model), got {tuple(got.shape)}; "
                "merge the heads back to (B, T, d_model) and apply out_proj.")
    if close(got, want, atol):
        return None
    if torch.isnan(got).any():
        return "the output contains NaN; check the mask handling in your scaled_dot_product_attention (part 1)."
    d_model, d_head = query.shape[-1], query.shape[-1] // n_heads
    known = [
        (dict(out_proj=False), "the output skips out_proj (W_O): after merging the heads, apply self.out_proj."),
        (dict(merge="no_transpose"), "the heads are merged in the wrong order: (B, H, T, d_h) must become "
                                     "(B, T, H, d_h) with .transpose(1, 2) before reshaping to (B, T, d_model)."),
        (dict(split="view_no_transpose"), "split_heads reshapes (B, T, d) straight to (B, H, T, d_h), which mixes "
                                          "time steps and heads: view as (B, T, H, d_h), then .transpose(1, 2)."),
        (dict(sources="kv_from_query"), "the keys and values were projected from `query`: in cross-attention they "
                                        "come from `key` and `value` (the encoder's output), so use "
                                        "self.k_proj(key) and self.v_proj(value)."),
        (dict(sources="v_from_key"), "the values were projected from `key`: use self.v_proj(value). (In "
                                     "self-attention both are x, which hides the bug; in general they differ.)"),
        (dict(biases=False), "the q/k/v projections' biases are missing: apply the layers themselves "
                             "(self.q_proj(query)), not query @ self.q_proj.weight.T."),
        (dict(scale="sqrt_d_model"), f"the scores inside were divided by √d_model (√{d_model}); each head's dot "
                                     f"products have d_head = d_model / n_heads = {d_head} terms, so the scale is "
                                     "√d_head, which is q.shape[-1] inside the attention. " + _INSIDE),
    ]
    for kwargs, hint in known:
        if _matches(got, atol, mha_formula, state, n_heads, query, key, value, mask, **kwargs):
            return hint
    inside = [(dict(scale="none"), "the attention scores are not scaled by 1/√d_head"),
              (dict(scale="dk"), "the attention scores are divided by d_head instead of √d_head"),
              (dict(dim=-2), "the softmax runs over the queries (dim=-2) instead of the keys (dim=-1)")]
    for kwargs, what in inside:
        if _matches(got, atol, mha_formula, state, n_heads, query, key, value, mask, **kwargs):
            return f"the heads, projections and merge are right, but {what}. " + _INSIDE
    err = (got.double() - want).abs().max().item()
    return (f"the output differs from multi-head attention with the same weights (max error {err:.3g}). Head h must "
            "use features [h*d_h:(h+1)*d_h] of each projection (split with view(B, T, H, d_h).transpose(1, 2)), "
            "and q/k/v must come from query/key/value respectively. " + PART1_NOTE)


# ---------------------------------------------------------------- 4. positions

@oracle
def sinusoid_formula(T: int, d: int, variant: str = "right") -> Tensor:
    """The (T, d) sinusoidal table in float64, or one of its usual bugs (see ``SINUSOID_BUGS``)."""
    p = torch.arange(T, dtype=torch.float64)[:, None]
    two_i = torch.arange(0, d, 2, dtype=torch.float64)
    exponent = {"pair_index_exponent": two_i / 2 / d, "integer_exponent": torch.floor(two_i / d)}.get(
        variant, two_i / d)
    angle = p / torch.pow(10000.0, exponent)
    if variant == "multiplied":
        angle = p * torch.pow(10000.0, exponent)
    pe = torch.zeros(T, d, dtype=torch.float64)
    if variant == "column_exponent":
        j = torch.arange(d, dtype=torch.float64)
        a = p / torch.pow(10000.0, j / d)
        pe[:, 0::2] = torch.sin(a[:, 0::2])
        pe[:, 1::2] = torch.cos(a[:, 1::2])
    elif variant == "halves":
        pe[:, : d // 2] = torch.sin(angle[:, : d // 2])
        pe[:, d // 2:] = torch.cos(angle[:, : d - d // 2])
    elif variant == "swapped":
        pe[:, 0::2] = torch.cos(angle)
        pe[:, 1::2] = torch.sin(angle[:, : d // 2])
    else:
        pe[:, 0::2] = torch.sin(angle)
        pe[:, 1::2] = torch.cos(angle[:, : d // 2])
    return pe.trunc() if variant == "truncated" else pe


#: The usual bugs of part 4, most specific first: (variant of ``sinusoid_formula``, hint).
SINUSOID_BUGS: tuple[tuple[str, str], ...] = (
    ("swapped", "sin and cos are swapped: even columns 2i hold sin(p / 10000^(2i/d)), odd columns 2i+1 hold cos."),
    ("halves", "sin and cos are placed in two halves [sin | cos]; they must be interleaved: sin in the even "
               "columns (0::2) and cos in the odd columns (1::2)."),
    ("column_exponent", "the exponent uses the column index j (10000^(j/d)); a sin/cos pair shares one frequency, "
                        "10000^(2i/d) with i = j // 2, so the odd column 2i+1 must use the same angle as column 2i."),
    ("pair_index_exponent", "the exponent is i/d with the pair index i; it is 2i/d: with two_i = "
                            "torch.arange(0, d, 2), the frequencies are 1 / 10000^(two_i / d)."),
    ("integer_exponent", "every column turns at the same speed, as if the exponent 2i/d had been rounded down to 0: "
                         "integer division (//) or an integer tensor rounds it. Use true division (/) on float "
                         "tensors: two_i / d."),
    ("multiplied", "the position was multiplied by 10000^(2i/d) instead of divided by it: the angle is "
                   "p / 10000^(2i/d), so later pairs turn more slowly, not faster."),
    ("truncated", "almost every value is 0: the sin/cos values were written into an integer tensor, which truncates "
                  "them toward 0 (torch.zeros_like(position) takes the integer dtype of torch.arange(T)). Create the "
                  "table as a float tensor, e.g. torch.zeros(T, d)."),
)


def name_sinusoid_bug(got, T: int, d: int, atol: float = 2e-4) -> str | None:
    """None if ``got`` is the (T, d) float32 sinusoidal table; otherwise the likely bug."""
    want = sinusoid_formula(T, d)
    if not isinstance(got, Tensor):
        return f"sinusoidal_positions({T}, {d}) should return a float32 tensor of shape ({T}, {d}), got {describe(got)}."
    if got.shape != want.shape:
        return f"sinusoidal_positions({T}, {d}) should have shape ({T}, {d}) (positions x features), got {tuple(got.shape)}."
    if not got.is_floating_point():
        return (f"sinusoidal_positions returned an integer tensor ({got.dtype}): writing sin/cos values into an "
                "integer tensor truncates them to 0 or ±1. Create the table as float32, e.g. torch.zeros(T, d).")
    if got.dtype != torch.float32:
        return (f"sinusoidal_positions should return float32 (the dtype of the embeddings it is added to), "
                f"got {got.dtype}; convert at the end with .float().")
    if close(got, want, atol):
        return None
    for variant, hint in SINUSOID_BUGS:
        if close(got, sinusoid_formula(T, d, variant), atol):
            return hint
    err = (got.double() - want).abs().max().item()
    return (f"the table differs from PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d)) "
            f"(max error {err:.3g}); row 0 should be [0, 1, 0, 1, ...].")


# ---------------------------------------------------------------- 5. parameter count

@oracle
def gpt_parameter_formula(vocab_size: int, block_size: int, n_layer: int, n_embd: int, n_head: int = 1,
                          **bugs: bool) -> int:
    """genlab's GPT parameter count by formula; keyword flags switch on the usual bugs.

    Flags (see ``PARAMETER_BUGS``): per_head_qkv, per_head_qkv_weights, no_out_proj,
    no_biases, attention_no_bias, mlp_no_bias, mlp_hidden_d, no_layernorms, ln_scale_only,
    no_final_ln, untied, untied_with_bias, no_positions.
    """
    V, T, L, d, H = vocab_size, block_size, n_layer, n_embd, n_head
    attention_bias = not (bugs.get("no_biases") or bugs.get("attention_no_bias"))
    if bugs.get("per_head_qkv"):  # each head's W_Q, W_K, W_V as a full d x d layer with bias
        attention = 3 * H * (d * d + d * attention_bias) + d * d + d * attention_bias
    elif bugs.get("per_head_qkv_weights"):  # the same, with the biases counted right
        attention = 3 * H * d * d + d * d + 4 * d * attention_bias
    elif bugs.get("no_out_proj"):
        attention = 3 * d * d + 3 * d * attention_bias
    else:
        attention = 4 * d * d + 4 * d * attention_bias
    hidden = d if bugs.get("mlp_hidden_d") else 4 * d
    mlp_bias = not (bugs.get("no_biases") or bugs.get("mlp_no_bias"))
    mlp = 2 * d * hidden + (hidden + d) * mlp_bias
    norm = 0 if bugs.get("no_layernorms") else d if bugs.get("ln_scale_only") else 2 * d
    final = 0 if bugs.get("no_final_ln") else norm
    emb = V * d + (0 if bugs.get("no_positions") else T * d)
    head = V * d + V if bugs.get("untied_with_bias") else V * d if bugs.get("untied") else 0
    return L * (attention + mlp + 2 * norm) + emb + final + head


#: The usual counting mistakes of part 5, most specific first: (flags, hint).
PARAMETER_BUGS: tuple[tuple[dict, str], ...] = (
    (dict(per_head_qkv=True), "each head's Q, K and V were counted as full d x d layers (3·H·d² instead of 3d²): "
                              "the heads split the d x d projections into H slices of d/H features each, they do "
                              "not multiply them. Attention has 4d² + 4d parameters whatever the number of heads."),
    (dict(per_head_qkv_weights=True), "each head's W_Q, W_K and W_V were counted as full d x d matrices "
                                      "(3·H·d² instead of 3d²): the heads split the d x d projections into H slices, "
                                      "they do not multiply them. Attention has 4d² + 4d whatever the number of heads."),
    (dict(no_out_proj=True), "attention's output projection W_O (d x d plus a bias of d) is missing: attention has "
                             "four d x d projections, W_Q, W_K, W_V and W_O."),
    (dict(no_biases=True), "the Linear layers' biases are missing: nn.Linear(n_in, n_out) has n_in·n_out weights "
                           "and n_out biases."),
    (dict(mlp_no_bias=True), "the MLP's biases are missing: nn.Linear(d, 4d) has 4d biases and nn.Linear(4d, d) "
                             "has d more."),
    (dict(attention_no_bias=True), "attention's biases are missing: W_Q, W_K, W_V and W_O are nn.Linear(d, d) "
                                   "layers, each with a bias of d."),
    (dict(mlp_hidden_d=True), "the MLP's hidden layer is 4d wide (d -> 4d -> d), not d."),
    (dict(ln_scale_only=True), "each LayerNorm was counted as d parameters; it has 2d, a scale and a shift."),
    (dict(no_layernorms=True), "the LayerNorms are missing: each block has two, and the model ends with a final "
                               "one; each has a scale and a shift of size d."),
    (dict(no_final_ln=True), "the final LayerNorm after the last block (a scale and a shift, 2d) is missing."),
    (dict(untied_with_bias=True), "the output layer is counted as a separate Linear with a bias, but it is tied to "
                                  "the token embedding (the same V x d matrix, counted once) and has no bias."),
    (dict(untied=True), "the output layer is counted separately, but it is tied to the token embedding: "
                        "the same V x d matrix, counted once."),
    (dict(no_positions=True), "the learned position embedding (block_size x d) is missing."),
)


def name_parameter_bug(got, config: dict) -> str | None:
    """None if ``got`` is the exact count, as a Python int; otherwise the likely bug (never the hidden config)."""
    args = {k: int(config[k]) for k in ("vocab_size", "block_size", "n_layer", "n_embd")}
    args["n_head"] = int(config.get("n_head", 1))
    want = gpt_parameter_formula(**args)
    if isinstance(got, bool) or not isinstance(got, int):
        fix = ""
        if isinstance(got, float):
            fix = (" math.pow and / return floats even for whole numbers: use d * d or d ** 2, and // where you "
                   "divide, or wrap the result in int(...).")
        elif isinstance(got, Tensor):
            fix = " Count with plain Python ints (or return int(total.item()))."
        return f"count_parameters should return a Python int, got {describe(got)}.{fix}"
    if same(got, want):
        return None
    for flags, hint in PARAMETER_BUGS:
        if same(got, gpt_parameter_formula(**args, **flags)):
            return hint
    # never the size of the error: with it, want = got - error, and feedback on hidden configs would
    # hand out their answers
    return (f"the count is too {'high' if got > want else 'low'}. Count each layer as its shape "
            "says: nn.Linear(n_in, n_out) has n_in·n_out + n_out, nn.LayerNorm(d) has 2d, nn.Embedding(n, d) has n·d; "
            "the output layer is tied to the token embedding.")


# ---------------------------------------------------------------- 6. KV cache

def name_kv_cache_bug(step: int, out, cache_k, cache_v, want_out: Tensor, want_k: Tensor, want_v: Tensor,
                      atol: float = 1e-4) -> str | None:
    """Check one ``kv_cache_step`` result (0-based ``step``) against the uncached answer."""
    for name, got, want in (("out", out, want_out), ("cache_k", cache_k, want_k), ("cache_v", cache_v, want_v)):
        if not isinstance(got, Tensor):
            return f"at step {step} {name} should be a tensor of shape {tuple(want.shape)}, got {describe(got)}."
    if cache_k.shape != want_k.shape or cache_v.shape != want_v.shape:
        grown = [i for i in range(want_k.dim()) if cache_k.dim() == want_k.dim() and cache_k.shape[i] != want_k.shape[i]]
        if cache_k.dim() == want_k.dim() and grown and grown != [want_k.dim() - 2]:
            return (f"after step {step} cache_k has shape {tuple(cache_k.shape)}, expected {tuple(want_k.shape)}: "
                    f"new keys were concatenated along dim {grown[0]}; time is dim -2 of (B, H, T, d_h).")
        if cache_k.dim() == want_k.dim() and cache_k.shape[-2] == 1 and step > 0:
            return (f"after step {step} the cache holds 1 position, expected {step + 1}: append the new key/value "
                    "to the cache (torch.cat([cache_k, k_new], dim=-2)) instead of replacing it.")
        return (f"after step {step} cache_k/cache_v should have shape {tuple(want_k.shape)} (B, H, T_past + 1, d_h), "
                f"got {tuple(cache_k.shape)} and {tuple(cache_v.shape)}.")
    if not (close(cache_k, want_k, atol) and close(cache_v, want_v, atol)):
        if close(cache_k, want_k.flip(-2), atol) or close(cache_k, torch.cat([want_k[..., -1:, :], want_k[..., :-1, :]], -2), atol):
            return (f"after step {step} the newest key is in front of the older ones: the cache must keep positions "
                    "in order, old entries first: torch.cat([cache_k, k_new], dim=-2).")
        if close(cache_k, want_v, atol) and close(cache_v, want_k, atol):
            return f"after step {step} the key and value caches are swapped: return (out, cache_k, cache_v)."
        return (f"after step {step} the cached keys/values differ from the keys/values given so far: "
                "the cache must be the old cache followed by the new position, in order (old entries first).")
    if out.shape != want_out.shape:
        return f"at step {step} out should have shape {tuple(want_out.shape)} (B, H, 1, d_h), got {tuple(out.shape)}."
    if not close(out, want_out, atol):
        err = (out.double() - want_out).abs().max().item()
        return (f"at step {step} the output differs from full causal attention (max error {err:.3g}): the new query "
                "must attend over every cached position including the new one, with your scaled dot-product "
                "attention and no mask. " + PART1_NOTE)
    return None
