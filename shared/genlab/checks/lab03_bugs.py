"""Recognise the usual bugs of lab 03's graded parts from their outputs.

Each ``name_*_bug`` function compares a result against the correct answer and against
what the common mistakes would have produced, and returns a hint that names the likely
bug (or ``None`` when the result is right). Both the notebook's public checks and the
hidden autograder tests use them, so a student sees the same words in both places.
Every function works on plain tensors and numbers; none of them calls student code.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from genlab.checks.kit import close, describe

__all__ = [
    "attention_formula",
    "name_attention_bug",
    "name_causal_mask_bug",
    "name_combine_masks_bug",
    "mha_formula",
    "name_mha_bug",
    "sinusoid_formula",
    "name_sinusoid_bug",
    "gpt_parameter_formula",
    "name_parameter_bug",
    "name_kv_cache_bug",
]


# ---------------------------------------------------------------- 1. attention

def attention_formula(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None,
                      scale: str = "sqrt", dim: int = -1) -> tuple[Tensor, Tensor]:
    """softmax(q kᵀ / s) v in float64, with the scale ``s`` and the softmax axis selectable.

    scale: "sqrt" (√d_k, correct), "dk" (d_k), "none" (1). dim: -1 (over keys, correct) or
    -2 (over queries, a bug). Masked weights are 0; fully masked rows give 0.
    """
    q, k, v = q.double(), k.double(), v.double()
    d_k = q.shape[-1]
    s = {"sqrt": math.sqrt(d_k), "dk": float(d_k), "none": 1.0}[scale]
    scores = q @ k.transpose(-2, -1) / s
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=dim).nan_to_num(0.0)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights


def name_attention_bug(out, weights, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None,
                       atol: float = 1e-4) -> str | None:
    """None if ``(out, weights)`` is right; otherwise a hint naming the likely bug."""
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
    if close(out, want_out, atol) and close(weights, want_w, atol):
        return None
    if mask is not None and isinstance(weights, Tensor) and weights.shape == want_w.shape:
        leaked = weights.double().masked_select(~mask.expand_as(weights)).abs().max() if (~mask).any() else 0.0
        if float(leaked) > atol:
            if close(weights, attention_formula(q, k, v, ~mask)[1], atol):
                return ("your weights follow the inverted mask: in genlab a mask is True where attention is "
                        "ALLOWED (the opposite of nn.MultiheadAttention's attn_mask). Fill scores where ~mask.")
            return (f"masked positions got weight up to {float(leaked):.3g}; they must be exactly 0: fill the "
                    "scores where mask is False before the softmax (masked_fill(~mask, ...)).")
    for scale, hint in (("none", "the scores were not scaled: divide q @ kᵀ by math.sqrt(d_k), where d_k = q.shape[-1] "
                                 "(d_k = 64 gives 8)"),
                        ("dk", "the scores were divided by d_k instead of √d_k: use math.sqrt(d_k)")):
        if close(out, attention_formula(q, k, v, mask, scale=scale)[0], atol):
            return f"output matches softmax(QKᵀ/s)V with the wrong scale: {hint}."
    if close(weights, attention_formula(q, k, v, mask, dim=-2)[1], atol):
        return ("your weights sum to 1 down each column (over queries) instead of along each row: "
                "the softmax must run over the keys, the last axis (dim=-1).")
    row_sums = weights.double().sum(-1)
    has_key = want_w.sum(-1) > 0.5
    if has_key.any() and (row_sums[has_key] - 1).abs().max() > 1e-3:
        return (f"each row of the weights should sum to 1 over the allowed keys, but a row sums to "
                f"{float(row_sums[has_key][(row_sums[has_key] - 1).abs().argmax()]):.4g}; apply softmax(dim=-1).")
    if mask is not None and not has_key.all():
        rows = ~has_key
        if weights.double()[rows].abs().max() > atol or out.double()[rows.expand(out.shape[:-1])].abs().max() > atol:
            return ("a query whose keys are all masked must get weights exactly 0 and output 0 "
                    "(the softmax alone makes such a row uniform); zero the masked weights after the softmax.")
    err_out = (out.double() - want_out).abs().max().item()
    err_w = (weights.double() - want_w).abs().max().item()
    return (f"the result differs from softmax(QKᵀ/√d_k)·V (max error {err_out:.3g} in the output, {err_w:.3g} in "
            "the weights). Check the order: scores = q @ kᵀ / √d_k, mask, softmax over the last axis, weights @ v.")


# ---------------------------------------------------------------- 2. masks

def name_causal_mask_bug(got, T: int) -> str | None:
    """None if ``got`` is the (T, T) lower-triangular bool mask; otherwise the likely bug."""
    want = torch.ones(T, T, dtype=torch.bool).tril()
    if not isinstance(got, Tensor):
        return f"causal_mask({T}) should return a bool tensor of shape ({T}, {T}), got {describe(got)}."
    if got.shape != want.shape:
        return f"causal_mask({T}) should have shape ({T}, {T}), got {tuple(got.shape)}."
    if got.dtype != torch.bool:
        return (f"causal_mask must return dtype torch.bool (True = may attend), got {got.dtype}; "
                "build it with dtype=torch.bool or compare, e.g. `... .tril().bool()`.")
    if torch.equal(got, want):
        return None
    ones = torch.ones(T, T, dtype=torch.bool)
    known = [
        (ones.tril(-1), "the diagonal is False, so a position cannot attend to itself: key j is allowed "
                        "when j <= i, not j < i (an off-by-one; use tril() with diagonal=0)."),
        (ones.tril(1), "each position may see one future position (an off-by-one): allow key j only when "
                       "j <= i (tril() with diagonal=0)."),
        (ones.triu(), "the mask is transposed: rows are queries and columns keys, so True belongs in the lower "
                      "triangle (j <= i), which is torch.tril, not torch.triu."),
        (ones.triu(1), "the mask is inverted: True must mark what a query MAY attend to (the past and itself). "
                       "True-means-hidden is nn.MultiheadAttention's convention, not ours."),
        (~ones.tril(-1), "the mask is transposed and inverted at once: use torch.ones(T, T).tril() as bool."),
    ]
    for pattern, hint in known:
        if torch.equal(got, pattern):
            return hint
    return f"causal_mask({T}) should be True exactly where key j <= query i (lower triangle incl. the diagonal)."


def name_combine_masks_bug(got, causal: Tensor, key_padding: Tensor) -> str | None:
    """None if ``got`` is ``causal & key_padding`` as ``(B, 1, T_q, T_k)``; otherwise the likely bug."""
    want = causal[None, None] & key_padding[:, None, None, :]
    B, T_q, T_k = key_padding.shape[0], causal.shape[0], causal.shape[1]
    if not isinstance(got, Tensor):
        return f"combine_masks should return a bool tensor of shape {tuple(want.shape)}, got {describe(got)}."
    if got.dtype != torch.bool:
        return f"combine_masks must return dtype torch.bool, got {got.dtype}."
    if got.shape != want.shape:
        hint = ""
        if got.dim() == 3:
            hint = " Keep a size-1 axis for the heads: (B, 1, T_q, T_k) broadcasts over (B, H, T_q, T_k)."
        return (f"combine_masks should return shape (B, 1, T_q, T_k) = {(B, 1, T_q, T_k)}, got {tuple(got.shape)}."
                + hint)
    if torch.equal(got, want):
        return None
    if torch.equal(got, causal[None, None] | key_padding[:, None, None, :]):
        return ("the masks were combined with OR (|): a key is allowed only if BOTH masks allow it, "
                "so combine them with AND (&).")
    if T_q == T_k and torch.equal(got, causal[None, None] & key_padding[:, None, :, None]):
        return ("key_padding was applied to the queries (rows) instead of the keys (columns): index it as "
                "key_padding[:, None, None, :] so it varies along the last axis.")
    return "combine_masks should be True exactly where causal[i, j] and key_padding[b, j] are both True."


# ---------------------------------------------------------------- 3. multi-head attention

PART1_HINT = ("the heads, projections and merge are right, but the attention inside is not: the result matches a "
              "known bug of scaled_dot_product_attention (part 1), which this part calls. Fix part 1 first.")
PART1_NOTE = "(This part uses your scaled_dot_product_attention: if part 1's tests fail, fix those first.)"

def _split(x: Tensor, H: int, variant: str) -> Tensor:
    B, T, d = x.shape
    if variant == "view_no_transpose":
        return x.reshape(B, H, T, d // H)
    return x.reshape(B, T, H, d // H).transpose(1, 2)


def _merge(x: Tensor, variant: str) -> Tensor:
    B, H, T, d_h = x.shape
    if variant == "no_transpose":
        return x.reshape(B, T, H * d_h)
    return x.transpose(1, 2).reshape(B, T, H * d_h)


def mha_formula(state: dict, n_heads: int, query: Tensor, key: Tensor, value: Tensor,
                mask: Tensor | None = None, split: str = "right", merge: str = "right",
                out_proj: bool = True, scale: str = "sqrt", dim: int = -1) -> Tensor:
    """Multi-head attention in float64 from a ``state_dict`` with q/k/v/out_proj weights and biases.

    split/merge/out_proj select the usual bugs ("view_no_transpose", "no_transpose", False);
    scale/dim select attention bugs as in ``attention_formula``.
    """
    sd = {name: t.double() for name, t in state.items()}

    def lin(x, name):
        return x.double() @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]

    q = _split(lin(query, "q_proj"), n_heads, split)
    k = _split(lin(key, "k_proj"), n_heads, split)
    v = _split(lin(value, "v_proj"), n_heads, split)
    out, _ = attention_formula(q, k, v, mask, scale=scale, dim=dim)
    if split == "view_no_transpose":
        merged = out.reshape(out.shape[0], out.shape[2], -1)
    else:
        merged = _merge(out, merge)
    return lin(merged, "out_proj") if out_proj else merged


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
        return "the output contains NaN; check the mask handling in your scaled_dot_product_attention."
    known = [
        (dict(out_proj=False), "the output skips out_proj (W_O): after merging the heads, apply self.out_proj."),
        (dict(merge="no_transpose"), "the heads are merged in the wrong order: (B, H, T, d_h) must become "
                                     "(B, T, H, d_h) with .transpose(1, 2) before reshaping to (B, T, d_model)."),
        (dict(split="view_no_transpose"), "split_heads reshapes (B, T, d) straight to (B, H, T, d_h), which mixes "
                                          "time steps and heads: view as (B, T, H, d_h), then .transpose(1, 2)."),
    ]
    for kwargs, hint in known:
        if close(got, mha_formula(state, n_heads, query, key, value, mask, **kwargs), atol):
            return hint
    for kwargs in (dict(scale="none"), dict(scale="dk"), dict(dim=-2)):
        if close(got, mha_formula(state, n_heads, query, key, value, mask, **kwargs), atol):
            return PART1_HINT
    err = (got.double() - want).abs().max().item()
    return (f"the output differs from multi-head attention with the same weights (max error {err:.3g}). Head h must "
            "use features [h*d_h:(h+1)*d_h] of each projection (split with view(B, T, H, d_h).transpose(1, 2)), "
            "and q/k/v must come from query/key/value respectively. " + PART1_NOTE)


# ---------------------------------------------------------------- 4. positions

def sinusoid_formula(T: int, d: int, variant: str = "right") -> Tensor:
    """The (T, d) sinusoidal table in float64, or one of its usual bugs.

    variant: "right", "swapped" (cos on even columns), "column_exponent" (10000^(j/d) with the
    column index j), "halves" ([sin | cos] side by side instead of interleaved).
    """
    p = torch.arange(T, dtype=torch.float64)[:, None]
    two_i = torch.arange(0, d, 2, dtype=torch.float64)
    angle = p / torch.pow(10000.0, two_i / d)
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
    return pe


def name_sinusoid_bug(got, T: int, d: int, atol: float = 2e-4) -> str | None:
    """None if ``got`` is the (T, d) float32 sinusoidal table; otherwise the likely bug."""
    want = sinusoid_formula(T, d)
    if not isinstance(got, Tensor):
        return f"sinusoidal_positions({T}, {d}) should return a float32 tensor of shape ({T}, {d}), got {describe(got)}."
    if got.shape != want.shape:
        return f"sinusoidal_positions({T}, {d}) should have shape ({T}, {d}) (positions x features), got {tuple(got.shape)}."
    if got.dtype != torch.float32:
        return f"sinusoidal_positions should return float32 (the dtype of the embeddings it is added to), got {got.dtype}."
    if close(got, want, atol):
        return None
    known = [
        ("swapped", "sin and cos are swapped: even columns 2i hold sin(p / 10000^(2i/d)), odd columns 2i+1 hold cos."),
        ("column_exponent", "the exponent uses the column index j (10000^(j/d)); a sin/cos pair shares one frequency, "
                            "10000^(2i/d) with i = j // 2, so the odd column 2i+1 must use the same angle as column 2i."),
        ("halves", "sin and cos are placed in two halves [sin | cos]; they must be interleaved: sin in the even "
                   "columns (0::2) and cos in the odd columns (1::2)."),
    ]
    for variant, hint in known:
        if close(got, sinusoid_formula(T, d, variant), atol):
            return hint
    err = (got.double() - want).abs().max().item()
    return (f"the table differs from PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d)) "
            f"(max error {err:.3g}); row 0 should be [0, 1, 0, 1, ...].")


# ---------------------------------------------------------------- 5. parameter count

def gpt_parameter_formula(vocab_size: int, block_size: int, n_layer: int, n_embd: int, **bugs: bool) -> int:
    """genlab's GPT parameter count by formula; keyword flags switch on the usual bugs.

    Flags: no_biases, no_layernorms, attention_no_bias, no_final_ln, untied, no_positions,
    mlp_hidden_d (MLP d -> d -> d).
    """
    V, T, L, d = vocab_size, block_size, n_layer, n_embd
    attention = 4 * d * d + (0 if bugs.get("no_biases") or bugs.get("attention_no_bias") else 4 * d)
    hidden = d if bugs.get("mlp_hidden_d") else 4 * d
    mlp = 2 * d * hidden + (0 if bugs.get("no_biases") else hidden + d)
    norms = 0 if bugs.get("no_layernorms") else 4 * d
    final = 0 if bugs.get("no_layernorms") or bugs.get("no_final_ln") else 2 * d
    emb = V * d + (0 if bugs.get("no_positions") else T * d)
    head = V * d if bugs.get("untied") else 0
    return L * (attention + mlp + norms) + emb + final + head


def name_parameter_bug(got, config: dict) -> str | None:
    """None if ``got`` is the exact count; otherwise the likely bug (never the hidden config)."""
    keys = ("vocab_size", "block_size", "n_layer", "n_embd")
    args = {k: int(config[k]) for k in keys}
    want = gpt_parameter_formula(**args)
    if isinstance(got, bool) or not isinstance(got, (int, float)) and not (isinstance(got, Tensor) and got.numel() == 1):
        return f"count_parameters should return an int, got {describe(got)}."
    value = float(got.item() if isinstance(got, Tensor) else got)
    if value == want:
        return None
    if value != int(value):
        return f"count_parameters should return a whole number, got {value}."
    value = int(value)
    known = [
        (dict(no_biases=True), "the Linear layers' biases are missing: attention has 4d² + 4d parameters "
                               "and the MLP 8d² + 5d (its hidden layer has 4d biases, its output d)."),
        (dict(no_layernorms=True), "the LayerNorms are missing: each block has two (4d parameters: a scale and a "
                                   "shift of size d each) and the model ends with a final one (2d)."),
        (dict(attention_no_bias=True), "the count is 4d per layer short: attention has 4d² + 4d parameters "
                                       "(W_Q, W_K, W_V, W_O and their four d-sized biases), not just 4d² - or "
                                       "the two per-layer LayerNorms (4d) are missing."),
        (dict(no_final_ln=True), "the final LayerNorm after the last block (2d parameters) is missing."),
        (dict(untied=True), "the output layer is counted separately, but it is tied to the token embedding: "
                            "the same V x d matrix, counted once."),
        (dict(no_positions=True), "the learned position embedding (block_size x d) is missing."),
        (dict(mlp_hidden_d=True), "the MLP's hidden layer is 4d wide (d -> 4d -> d: 8d² + 5d), not d."),
    ]
    for flags, hint in known:
        if value == gpt_parameter_formula(**args, **flags):
            return hint
    diff = value - want
    return (f"the count is off by {diff:+d} (relative {diff / want:+.2%}). Per layer: attention 4d² + 4d, MLP 8d² + 5d, "
            "LayerNorms 4d; plus V·d token embedding (tied with the output), block_size·d positions, final LayerNorm 2d.")


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
        return (f"after step {step} the cached keys/values differ from the keys/values given so far: "
                "the cache must be the old cache followed by the new position, in order (old first).")
    if out.shape != want_out.shape:
        return f"at step {step} out should have shape {tuple(want_out.shape)} (B, H, 1, d_h), got {tuple(out.shape)}."
    if not close(out, want_out, atol):
        err = (out.double() - want_out).abs().max().item()
        return (f"at step {step} the output differs from full causal attention (max error {err:.3g}): the new query "
                "must attend over every cached position including the new one, with your scaled dot-product attention. "
                + PART1_NOTE)
    return None
