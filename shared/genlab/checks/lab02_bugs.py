"""Recognise the usual bugs of lab 02's graded parts from their outputs.

Each ``name_*_bug`` function compares a result with the right answer and with what the
common mistakes would have produced, and returns a hint naming the likely bug (``None``
when the result is right). The notebook's public checks and the hidden tests both use them,
so a student reads the same words in both places. The ``*_formula`` and ``*_oracle``
functions compute the right answers independently (float64, written out; sacrebleu for
BLEU); none of them calls student code. Each is an ``@oracle`` (``genlab.checks.recorded``): the
student build keeps only its answers on the public checks' own inputs.

Parts: 1 padding_mask, 2 AdditiveAttention, 3 decoder_step / teacher_forcing / sequence_loss,
4 greedy_decode / beam_search, 5 corpus_bleu.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.checks.kit import close, describe, same
from genlab.checks.recorded import oracle

__all__ = [
    "PADDING_MASK_BUGS",
    "padding_mask_formula",
    "name_padding_mask_bug",
    "ADDITIVE_BUGS",
    "additive_formula",
    "name_additive_bug",
    "decoder_step_formula",
    "teacher_forcing_formula",
    "name_decoder_step_bug",
    "name_teacher_forcing_bug",
    "sequence_loss_formula",
    "name_loss_bug",
    "explain_decoder_error",
    "explain_error",
    "PADDING_ERRORS",
    "ATTENTION_ERRORS",
    "markov_step",
    "rnn_step",
    "greedy_oracle",
    "beam_oracle",
    "pad_rows",
    "name_greedy_bug",
    "name_beam_bug",
    "REORDER_HINT",
    "ids_to_text_oracle",
    "bleu_formula",
    "name_bleu_bug",
    "PART2_NOTE",
]

PART2_NOTE = "(If the tests of part 2, AdditiveAttention, fail too, fix those first.)"


def _tensor(x) -> bool:
    return isinstance(x, Tensor)


# ---------------------------------------------------------------- 1. padding mask

#: The usual padding-mask bugs, in the order they are tried: (variant of ``padding_mask_formula``, hint).
PADDING_MASK_BUGS: tuple[tuple[str, str], ...] = (
    ("inverted", "the mask is inverted: True must mark REAL tokens (t < length) and False the padding "
                 "(the convention of torch's scaled_dot_product_attention, not nn.MultiheadAttention's)."),
    ("inclusive", "off by one: position t is real when t < length, not t <= length (a sequence of length 3 "
                  "has positions 0, 1 and 2)."),
    ("short", "off by one: the last real token is marked as padding; use t < length (not t < length - 1)."),
)


@oracle
def padding_mask_formula(lengths: Tensor, max_len: int, variant: str = "right") -> Tensor:
    """``(B, max_len)`` bool, True where ``t < lengths[b]``, by a loop; or a usual bug (see
    ``PADDING_MASK_BUGS``): "inverted" (True at the padding), "inclusive" (``t <= lengths[b]``),
    "short" (``t < lengths[b] - 1``)."""
    extra = {"right": 0, "inverted": 0, "inclusive": 1, "short": -1}[variant]
    out = torch.zeros(len(lengths), int(max_len), dtype=torch.bool)
    for b, n in enumerate(lengths.tolist()):
        out[b, :max(n + extra, 0)] = True
    return ~out if variant == "inverted" else out


def name_padding_mask_bug(got, lengths: Tensor, max_len: int) -> str | None:
    """None if ``got`` is the ``(B, max_len)`` bool padding mask; otherwise the likely bug."""
    B = len(lengths)
    if not _tensor(got):
        return f"padding_mask should return a bool tensor of shape (B, max_len) = {(B, max_len)}, got {describe(got)}."
    if tuple(got.shape) == (max_len, B) and max_len != B:
        return (f"the mask has shape {tuple(got.shape)}: it is transposed. Rows are sequences and columns "
                "positions: compare positions[None, :] with lengths[:, None] to get (B, max_len).")
    if tuple(got.shape) != (B, max_len):
        hint = ""
        if got.dim() == 1:
            hint = (" Compare with broadcasting: positions[None, :] (1, max_len) against lengths[:, None] (B, 1) "
                    "gives (B, max_len).")
        if got.dim() == 2 and got.shape[0] == B and got.shape[1] == int(lengths.max()):
            hint = (" It has lengths.max() columns: use the max_len argument, the padded length of the batch, "
                    "which can be longer than the longest sequence.")
        return f"padding_mask should have shape (B, max_len) = {(B, max_len)}, got {tuple(got.shape)}.{hint}"
    if got.dtype != torch.bool:
        return (f"padding_mask must return dtype torch.bool (True = real token), got {got.dtype}: a comparison "
                "such as positions < lengths already gives bool; do not convert it with .float() or .long().")
    if same(got, padding_mask_formula(lengths, max_len)):
        return None
    for variant, hint in PADDING_MASK_BUGS:
        if same(got, padding_mask_formula(lengths, max_len, variant)):
            return hint
    return "padding_mask[b, t] should be True exactly when t < lengths[b]."


# ---------------------------------------------------------------- 2. additive attention

ADDITIVE_VARIANTS = ("right", "inverted_mask", "mask_after_softmax", "softmax_batch", "no_tanh", "keys_as_values",
                     "no_mask")
#: Variants that only differ from the right answer when there is a mask.
MASK_VARIANTS = ("inverted_mask", "mask_after_softmax", "no_mask")

#: The usual bugs of AdditiveAttention, in the order they are tried: (variant of ``additive_formula``, hint).
ADDITIVE_BUGS: tuple[tuple[str, str], ...] = (
    ("inverted_mask", "the mask is inverted: it is True for REAL tokens, so fill the scores where the mask is "
                      "False: scores.masked_fill(~mask, torch.finfo(scores.dtype).min)."),
    ("mask_after_softmax", "the mask was applied after the softmax without renormalising: the weights of the "
                           "real positions no longer sum to 1. Fill the masked scores BEFORE the softmax."),
    ("softmax_batch", "the softmax runs over the batch axis (dim=0): each sentence's weights must sum to 1 "
                      "over its source positions, the last axis (dim=-1)."),
    ("no_tanh", "the tanh is missing: e_j = vᵀ tanh(W s + U h_j); without it the score is linear."),
    ("keys_as_values", "the context averages the keys: it must be Σ_j α_j values_j (values may differ from "
                       "keys)."),
    ("no_mask", "the mask was ignored: padded positions got weight. Fill the scores where the mask is False "
                "with torch.finfo(scores.dtype).min before the softmax."),
)


@oracle
def additive_formula(state: dict, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None,
                     variant: str = "right") -> tuple[Tensor, Tensor]:
    """Bahdanau attention in float64 from ``W.weight (d_a, d_q)``, ``U.weight (d_a, d_k)``,
    ``v.weight (1, d_a)``, or one of its usual bugs (``variant``, see ``ADDITIVE_VARIANTS``).

    Returns ``context (B, d_v)`` and ``weights (B, S)``.
    """
    W, U, v = (state[f"{n}.weight"].double() for n in ("W", "U", "v"))
    q, k, val = query.double(), keys.double(), values.double()
    hidden = (q @ W.T)[:, None, :] + k @ U.T  # (B, S, d_a)
    if variant != "no_tanh":
        hidden = torch.tanh(hidden)
    scores = (hidden @ v[0]).clone()  # (B, S)
    dim = 0 if variant == "softmax_batch" else -1
    lowest = torch.finfo(torch.float64).min  # as a float16 fill does: a fully masked row becomes uniform
    if mask is not None and variant in ("right", "softmax_batch", "no_tanh", "keys_as_values"):
        scores = scores.masked_fill(~mask, lowest)
    if mask is not None and variant == "inverted_mask":
        scores = scores.masked_fill(mask, lowest)
    weights = torch.softmax(scores, dim=dim)
    if mask is not None and variant == "mask_after_softmax":
        weights = weights * mask
    context = (weights[:, :, None] * (k if variant == "keys_as_values" else val)).sum(1)
    return context, weights


def name_additive_bug(context, weights, state: dict, query: Tensor, keys: Tensor, values: Tensor,
                      mask: Tensor | None = None, atol: float = 1e-4) -> str | None:
    """None if ``(context, weights)`` is additive attention with these weights; else the likely bug.

    ``query (B, d_q)``, ``keys (B, S, d_k)``, ``values (B, S, d_v)``, ``mask (B, S)`` or None.
    """
    (B, S), d_v = keys.shape[:2], values.shape[-1]
    if not (_tensor(context) and _tensor(weights)):
        return (f"expected two tensors (context, weights), got {describe(context)} and {describe(weights)}; "
                "return `context, weights`.")
    if tuple(weights.shape) != (B, S):
        hint = " Squeeze the last axis of v's output: (B, S, 1) -> (B, S)." if weights.dim() == 3 else ""
        return f"weights should have shape (B, S) = {(B, S)}, got {tuple(weights.shape)}.{hint}"
    if tuple(context.shape) != (B, d_v):
        return (f"context should have shape (B, d_v) = {(B, d_v)}, got {tuple(context.shape)}: "
                "it is the weighted sum of the values over the source positions, Σ_j α_j h_j.")
    if bool(torch.isnan(context).any()) or bool(torch.isnan(weights).any()):
        return "the result contains NaN; fill masked scores with torch.finfo(scores.dtype).min, not -inf."
    want_c, want_w = additive_formula(state, query, keys, values, mask)
    if close(context, want_c, atol) and close(weights, want_w, atol):
        return None
    for variant, hint in ADDITIVE_BUGS:
        if mask is None and variant in MASK_VARIANTS:
            continue
        got_c, got_w = additive_formula(state, query, keys, values, mask, variant)
        if close(weights, got_w, atol) and close(context, got_c, atol):
            return hint
    if mask is not None and (~mask).any():
        leaked = float(weights.detach().double().masked_select(~mask).abs().max())
        if leaked > 0:
            return (f"padded positions got weight up to {leaked:.3g}; they must be exactly 0: fill the masked "
                    "scores with torch.finfo(scores.dtype).min before the softmax.")
    sums = weights.detach().double().sum(-1)
    if (sums - 1).abs().max() > 1e-3:
        return (f"each row of the weights should sum to 1 over the real positions; a row sums to "
                f"{float(sums[(sums - 1).abs().argmax()]):.4g}. Apply softmax over the source axis (dim=-1).")
    err = (weights.double() - want_w).abs().max().item()
    return (f"the weights differ from softmax(vᵀ tanh(W s + U h_j)) (max error {err:.3g}). W applies to the query "
            "(the decoder state), U to the keys (the encoder states); v maps each hidden vector to one score.")


# ---------------------------------------------------------------- 3. decoder step

def _gru_cell(sd: dict, x: Tensor, h: Tensor) -> Tensor:
    """torch's GRUCell equations, written out in float64 (gates r, z, n in that order)."""
    w_ih, w_hh = sd["cell.weight_ih"].double(), sd["cell.weight_hh"].double()
    b_ih, b_hh = sd["cell.bias_ih"].double(), sd["cell.bias_hh"].double()
    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    i_r, i_z, i_n = gi.chunk(3, dim=-1)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def _dot_attention(sd: dict, query: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """genlab's DotProductAttention (the decoder's attention in these checks), in float64."""
    W = sd["attention.W.weight"].double()
    scores = (memory @ (query @ W.T)[:, :, None]).squeeze(-1) / math.sqrt(memory.shape[-1])
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    return (weights[:, :, None] * memory).sum(1), weights


def _bahdanau_step(sd: dict, prev_token: Tensor, state: Tensor, memory: Tensor, mask: Tensor,
                   variant: str) -> tuple[Tensor, Tensor, Tensor]:
    """``decoder_step_formula``'s step (also the loop's, in ``teacher_forcing_formula``)."""
    state, memory = state.double(), memory.double()
    emb = sd["embedding.weight"].double()[prev_token]
    context, weights = _dot_attention(sd, state, memory, mask)
    new_state = _gru_cell(sd, torch.cat([emb, context], -1), state)
    if variant == "requery":
        context, weights = _dot_attention(sd, new_state, memory, mask)
    readout = state if variant == "old_state_out" else new_state
    logits = torch.cat([readout, context, emb], -1) @ sd["out.weight"].double().T + sd["out.bias"].double()
    return logits, new_state, weights


@oracle
def decoder_step_formula(sd: dict, prev_token: Tensor, state: Tensor, memory: Tensor, mask: Tensor,
                         variant: str = "right") -> tuple[Tensor, Tensor, Tensor]:
    """One Bahdanau decoder step in float64 from an ``AttentionDecoder(attention="dot")`` state dict.

    ``prev_token (B,)``, ``state (B, D)``, ``memory (B, S, M)``, ``mask (B, S)``.
    variant: "right"; "requery" (the output re-attends with the new state s_i); "old_state_out"
    (the output layer reads s_{i-1} instead of s_i). Returns ``logits (B, V), new_state (B, D),
    weights (B, S)``.
    """
    return _bahdanau_step(sd, prev_token, state, memory, mask, variant)


@oracle
def teacher_forcing_formula(sd: dict, tgt: Tensor, state: Tensor, memory: Tensor, mask: Tensor,
                            variant: str = "right") -> tuple[Tensor, Tensor]:
    """The teacher-forced decoder loop in float64: ``(logits (B, T-1, V), weights (B, T-1, S))``.

    variant: "right"; "not_shifted" (step i reads tgt[:, i + 1]); "state_not_carried" (every
    step starts from s_0); "own_predictions" (no teacher forcing: the argmax is fed back).
    """
    logits, weights = [], []
    token = tgt[:, 1] if variant == "not_shifted" else tgt[:, 0]
    s = state.double()
    for i in range(tgt.shape[1] - 1):
        step_logits, new_state, w = _bahdanau_step(sd, token, s, memory, mask, "right")
        logits.append(step_logits)
        weights.append(w)
        s = state.double() if variant == "state_not_carried" else new_state
        if i + 1 < tgt.shape[1] - 1:
            if variant == "not_shifted":
                token = tgt[:, i + 2]
            elif variant == "own_predictions":
                token = step_logits.argmax(-1)
            else:
                token = tgt[:, i + 1]
    return torch.stack(logits, 1), torch.stack(weights, 1)


def name_decoder_step_bug(result, sd: dict, prev_token: Tensor, state: Tensor, memory: Tensor, mask: Tensor,
                          atol: float = 1e-4) -> str | None:
    """None if ``(logits, new_state, weights)`` is the Bahdanau step; otherwise the likely bug."""
    if not (isinstance(result, (tuple, list)) and len(result) == 3):
        return f"decoder_step should return (logits, new_state, weights), got {describe(result)}."
    logits, new_state, weights = result
    B, V = prev_token.shape[0], sd["out.weight"].shape[0]
    for name, got, shape, axes in (("logits", logits, (B, V), "(B, V)"),
                                   ("new_state", new_state, tuple(state.shape), "(B, D)"),
                                   ("weights", weights, tuple(memory.shape[:2]), "(B, S)")):
        if not _tensor(got) or tuple(got.shape) != shape:
            return f"{name} should be a tensor of shape {axes} = {shape}, got {describe(got)}."
    want_l, want_s, want_w = decoder_step_formula(sd, prev_token, state, memory, mask)
    if close(new_state, want_s, atol) and close(logits, want_l, atol) and close(weights, want_w, atol):
        return None
    if not close(new_state, want_s, atol):
        return ("the new state s_i is wrong. s_i = cell([embedding(y_{i-1}); c_i], s_{i-1}): the GRU cell reads the "
                "embedding of the previous token and the context computed with the PREVIOUS state s_{i-1}.")
    for variant, hint in (
        ("requery", "the output uses attention computed with the new state s_i. In Bahdanau's decoder the query is "
                    "the previous state s_{i-1}: attend once, before the GRU cell, and use that context c_i both "
                    "in the cell and in the output layer."),
        ("old_state_out", "the output layer reads the previous state s_{i-1}; it must read the new one: "
                          "out([s_i; c_i; embedding(y_{i-1})])."),
    ):
        got_l, _, got_w = decoder_step_formula(sd, prev_token, state, memory, mask, variant)
        if close(logits, got_l, atol):
            return hint
    if not close(weights, want_w, atol):
        return ("the attention weights are wrong: call decoder.attention(state, memory, memory, src_mask), with the "
                "previous state s_{i-1} as the query and the encoder states as keys and values.")
    return ("the logits are wrong: logits = decoder.out(torch.cat([s_i, c_i, embedding(y_{i-1})], dim=-1)), in "
            "this order.")


def name_teacher_forcing_bug(result, sd: dict, tgt: Tensor, state: Tensor, memory: Tensor, mask: Tensor,
                             fed: Tensor | None = None, atol: float = 1e-4) -> str | None:
    """None if ``(logits, weights)`` is the teacher-forced loop; otherwise the likely bug.

    fed: the tokens the decoder's embedding received, ``(B, steps)``, when they were recorded.
    """
    B, T = tgt.shape
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        return f"teacher_forcing should return (logits, weights), got {describe(result)}."
    logits, weights = result
    want_shape = {"logits": (B, T - 1, sd["out.weight"].shape[0]), "weights": (B, T - 1, memory.shape[1])}
    if not _tensor(logits) or tuple(logits.shape) != want_shape["logits"]:
        hint = ""
        if _tensor(logits) and logits.dim() == 3 and logits.shape[1] == T:
            hint = (" It has T steps: the decoder reads tgt[:, :-1] (from <bos>, without the last token) and "
                    "predicts tgt[:, 1:], so there are T - 1 steps.")
        return f"logits should have shape (B, T - 1, V) = {want_shape['logits']}, got {describe(logits)}.{hint}"
    if not _tensor(weights) or tuple(weights.shape) != want_shape["weights"]:
        return f"weights should have shape (B, T - 1, S) = {want_shape['weights']}, got {describe(weights)}."
    if fed is not None and _tensor(fed) and tuple(fed.shape) == (B, T - 1) and not torch.equal(fed, tgt[:, :-1]):
        if torch.equal(fed, tgt[:, 1:]):
            return ("the target is not shifted: step i must read tgt[:, i] (starting with <bos>) and predict "
                    "tgt[:, i + 1]. Your decoder read the very token it had to predict.")
        if torch.equal(fed[:, 0], tgt[:, 0]):
            return ("after the first step the decoder did not receive the ground-truth previous token: with "
                    "teacher forcing, step i reads tgt[:, i], not the model's own prediction.")
        return "the decoder's inputs should be tgt[:, :-1]: <bos> first, then the ground truth, one token per step."
    want_l, want_w = teacher_forcing_formula(sd, tgt, state, memory, mask)
    if close(logits, want_l, atol) and close(weights, want_w, atol):
        return None
    for variant, hint in (
        ("not_shifted", "the target is not shifted: step i must read tgt[:, i] (starting with <bos>) and predict "
                        "tgt[:, i + 1]."),
        ("state_not_carried", "every step starts from the first state s_0: keep the new state that decoder_step "
                              "returns and pass it to the next step."),
        ("own_predictions", "the decoder was fed its own predictions; with teacher forcing, step i reads the ground "
                            "truth tgt[:, i]."),
    ):
        if close(logits, teacher_forcing_formula(sd, tgt, state, memory, mask, variant)[0], atol):
            return hint
    err = (logits.double() - want_l).abs().max().item()
    return (f"the logits differ from the teacher-forced loop (max error {err:.3g}): for i in range(T - 1) call "
            "decoder_step(decoder, tgt[:, i], state, memory, src_mask), carry the state, and stack the logits "
            "along dim 1. If decoder_step's own checks fail, fix those first.")


PADDING_ERRORS = (
    ("only integer tensors of a single element", "lengths holds B numbers, so it cannot be a slice bound: compare "
     "positions with it instead, torch.arange(max_len)[None, :] < lengths[:, None]."),
    ("must match the size of tensor", "compare (1, max_len) positions with (B, 1) lengths: "
     "torch.arange(max_len)[None, :] < lengths[:, None]."),
)
ATTENTION_ERRORS = (
    ("must match the size of tensor", "check the shapes step by step: W(query)[:, None, :] is (B, 1, d_a), U(keys) "
     "(B, S, d_a), v(tanh(...)) (B, S, 1), which .squeeze(-1) makes (B, S); the context is "
     "(weights[:, :, None] * values).sum(dim=1)."),
    ("mat1 and mat2 shapes cannot be multiplied", "W applies to the query (query_size features) and U to the keys "
     "(key_size features); v maps attention_size features to 1."),
)


def explain_error(message: str, table) -> str:
    """A hint for an error message from one of the tables above ('' when none applies)."""
    for needle, hint in table:
        if needle in message:
            return f" Hint: {hint}"
    return ""


DECODER_ERRORS = (
    ("input has inconsistent input_size", "the GRU cell reads the embedding and the context side by side: "
     "decoder.cell(torch.cat([emb, context], dim=-1), state)."),
    ("hidden0 has inconsistent hidden_size", "the GRU cell's second argument is the previous state s_{i-1} (B, D)."),
    ("mat1 and mat2 shapes cannot be multiplied", "the output layer reads [s_i; c_i; embedding] in that order: "
     "decoder.out(torch.cat([new_state, context, emb], dim=-1)); the attention takes (state, memory, memory, mask)."),
    ("Expected all tensors to be on the same device", "build new tensors on the device of the inputs."),
    ("expected stride to be a single integer value", "stack the steps with torch.stack(..., dim=1)."),
)


def explain_decoder_error(message: str) -> str:
    """A hint for an error a decoder step commonly raises ('' when none applies)."""
    return explain_error(message, DECODER_ERRORS)


@oracle
def sequence_loss_formula(logits: Tensor, tgt: Tensor, pad_id: int, variant: str = "right") -> Tensor:
    """The mean cross-entropy of ``logits (B, T - 1, V)`` against ``tgt[:, 1:]`` without the pad_id
    targets, a 0-d float64 tensor; or a usual bug: "not_shifted" (against ``tgt[:, :-1]``),
    "counts_padding" (the pads counted), "sum" (summed, not averaged)."""
    flat = logits.detach().double().reshape(-1, logits.shape[-1])
    targets = (tgt[:, :-1] if variant == "not_shifted" else tgt[:, 1:]).reshape(-1)
    ignore = -100 if variant == "counts_padding" else pad_id   # -100: cross_entropy's default, no target
    return F.cross_entropy(flat, targets, ignore_index=ignore, reduction="sum" if variant == "sum" else "mean")


def name_loss_bug(got, logits: Tensor, tgt: Tensor, pad_id: int, atol: float = 1e-4) -> str | None:
    """None if ``got`` is the mean cross-entropy against tgt[:, 1:] ignoring padding, as float32."""
    if not _tensor(got) or got.dim() != 0:
        return f"sequence_loss should return a scalar tensor (0-d), got {describe(got)}."
    if got.dtype != torch.float32:
        return (f"the loss should be float32, got {got.dtype}: compute cross-entropy on logits.float() (in float16 "
                "the log-softmax loses precision and can overflow).")
    if not bool(torch.isfinite(got)):
        return "the loss is inf or NaN; compute it on logits.float()."
    if close(got, sequence_loss_formula(logits, tgt, pad_id), atol):
        return None
    if logits.shape[1] == tgt.shape[1] - 1:
        if close(got, sequence_loss_formula(logits, tgt, pad_id, "not_shifted"), atol, rtol=0):
            return ("the loss compares the logits with tgt[:, :-1]: step i predicts the NEXT token, so the targets "
                    "are tgt[:, 1:] (the target shifted left, without <bos>).")
    if close(got, sequence_loss_formula(logits, tgt, pad_id, "counts_padding"), atol, rtol=0):
        return ("the padding is counted in the loss: pass ignore_index=pad_id to cross_entropy, so that pads "
                "neither add loss nor count in the mean.")
    if close(got, sequence_loss_formula(logits, tgt, pad_id, "sum"), atol, rtol=atol):
        return "the loss is a sum; it should be the mean over the real target tokens (reduction='mean')."
    # no size of the difference: for one number it would give the expected value away
    return ("the loss should be the mean cross-entropy of the logits against tgt[:, 1:], ignoring pad_id (yours "
            "differs by more than rounding).")


# ---------------------------------------------------------------- 4. decoding

def markov_step(table: Tensor) -> Callable:
    """A model whose next-token logits depend only on the previous token: ``table (V, V)``.

    The state (a dummy ``(N, 1)`` tensor) passes through unchanged.
    """
    def step(tokens, state):
        return table[tokens], state
    return step


def rnn_step(E: Tensor, Wh: Tensor, Wo: Tensor, tuple_state: bool = False) -> Callable:
    """A small RNN: ``h = tanh(E[token] + h @ Wh)``, ``logits = h @ Wo``; the logits depend on
    the whole prefix. With ``tuple_state`` the state is ``(h, extra)`` and ``extra`` passes through."""
    def step(tokens, state):
        h = state[0] if tuple_state else state
        h = torch.tanh(E[tokens] + h @ Wh)
        return h @ Wo, ((h, state[1]) if tuple_state else h)
    return step


def _rows_of(state) -> int:
    return state[0].shape[0] if isinstance(state, (tuple, list)) else state.shape[0]


def _take(state, rows: list[int]):
    index = torch.tensor(rows, dtype=torch.long)
    if isinstance(state, (tuple, list)):
        return type(state)(s.index_select(0, index) for s in state)
    return state.index_select(0, index)


@oracle
def greedy_oracle(step: Callable, state, bos_id: int, eos_id: int, max_len: int) -> list[list[int]]:
    """Greedy output per example, one example at a time: tokens up to and including <eos>."""
    out = []
    for b in range(_rows_of(state)):
        st, token, seq = _take(state, [b]), torch.tensor([bos_id]), []
        for _ in range(max_len):
            logits, st = step(token, st)
            token = logits.double().argmax(-1)
            seq.append(int(token))
            if seq[-1] == eos_id:
                break
        out.append(seq)
    return out


@oracle
def beam_oracle(step: Callable, state, bos_id: int, eos_id: int, max_len: int, width: int, alpha: float = 1.0,
                variant: str = "right") -> list[tuple[float, list[int]]]:
    """Beam search per example as the notebook specifies: ``[(score, tokens), ...]``.

    variant: "right"; "probabilities" (scores add probabilities, not log-probabilities);
    "no_length_norm" (alpha ignored); "forget_finished" (only the hypotheses that finish in the
    last step count).
    """
    results = []
    for b in range(_rows_of(state)):
        rows = _take(state, [b])
        live: list[tuple[float, list[int]]] = [(0.0, [])]
        finished: list[tuple[float, list[int]]] = []
        for _ in range(max_len):
            if variant == "forget_finished":
                finished = []
            last = torch.tensor([seq[-1] if seq else bos_id for _, seq in live])
            logits, new_rows = step(last, rows)
            logp = torch.log_softmax(logits.double(), -1)
            if variant == "probabilities":
                logp = logp.exp()
            V = logp.shape[-1]
            totals = torch.tensor([s for s, _ in live], dtype=torch.float64)[:, None] + logp
            top, index = totals.flatten().topk(min(width, totals.numel()))
            keep, new_live = [], []
            for total, i in zip(top.tolist(), index.tolist(), strict=True):
                row, token = divmod(i, V)
                seq = live[row][1] + [token]
                if token == eos_id:
                    norm = 1.0 if variant == "no_length_norm" else len(seq) ** alpha
                    finished.append((total / norm, seq))
                else:
                    new_live.append((total, seq))
                    keep.append(row)
            if len(finished) >= width or not new_live:
                break
            live = new_live
            rows = _take(new_rows, keep)
        if not finished:
            norm = (lambda n: 1.0) if variant == "no_length_norm" else (lambda n: n ** alpha)
            finished = [(s / norm(len(q)), q) for s, q in live]
        results.append(max(finished, key=lambda f: f[0]))
    return results


def pad_rows(seqs: Sequence[Sequence[int]], pad_id: int = 0) -> Tensor:
    """Sequences as a ``(B, L)`` long tensor, right-padded with ``pad_id``."""
    L = max((len(s) for s in seqs), default=0)
    out = torch.full((len(seqs), max(L, 1)), pad_id, dtype=torch.long)
    for b, s in enumerate(seqs):
        out[b, : len(s)] = torch.tensor(list(s), dtype=torch.long)
    return out


def _cut(row: list[int], eos_id: int, pad_id: int) -> list[int]:
    """A returned row up to its first <eos> (included), or its non-pad tokens if it has none."""
    if eos_id in row:
        return row[: row.index(eos_id) + 1]
    while row and row[-1] == pad_id:
        row = row[:-1]
    return row


def name_greedy_bug(got, want: list[list[int]], eos_id: int, pad_id: int, max_len: int) -> str | None:
    """None if ``got (B, L)`` holds the greedy sequences ``want`` (then <pad>); else the likely bug."""
    B = len(want)
    if not _tensor(got) or got.dim() != 2 or got.shape[0] != B:
        return f"greedy_decode should return a long tensor (B, L) with B = {B}, got {describe(got)}."
    if got.dtype != torch.long:
        return f"greedy_decode should return token ids as torch.long, got {got.dtype}."
    if got.shape[1] > max_len:
        return f"greedy_decode returned {got.shape[1]} tokens per row; at most max_len = {max_len}."
    rows = got.tolist()
    for row, seq in zip(rows, want, strict=True):
        if row[: len(seq)] != seq:
            if row and seq and row[0] != seq[0]:
                return ("the first token is not the argmax of the first step's logits: start from <bos> "
                        "(torch.full((B,), bos_id)) and take logits.argmax(dim=-1).")
            if len(row) < len(seq) and row == seq[: len(row)]:
                return ("a row stopped before producing its <eos>: stop only when EVERY row has finished "
                        "(finished.all()), not when the first one has.")
            return ("the tokens differ from taking the argmax at every step and feeding it back as the next "
                    "input (with the state that step returned).")
        tail = row[len(seq):]
        if any(t != pad_id for t in tail):
            return ("after a row's first <eos> every position must be pad_id: once a row has finished, replace its "
                    "new tokens with pad_id (tokens.masked_fill(finished, pad_id)).")
    return None


REORDER_HINT = ("the state and the tokens given to step disagree on the number of hypotheses: after choosing the "
                "best extensions, reorder the state with take_rows(new_state, rows), where rows[j] is the live "
                "hypothesis survivor j came from, so each survivor continues from its own state.")


def name_beam_bug(got, want: list[tuple[float, list[int]]], eos_id: int, pad_id: int, alternatives: dict | None = None,
                  atol: float = 1e-3) -> str | None:
    """None if ``(tokens (B, L), scores (B,))`` matches the oracle's ``want``; else the likely bug.

    alternatives: ``{variant: oracle result}`` for the bugs this input tells apart.
    """
    B = len(want)
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return f"beam_search should return (tokens, scores), got {describe(got)}."
    tokens, scores = got
    if not _tensor(tokens) or tokens.dim() != 2 or tokens.shape[0] != B or tokens.dtype != torch.long:
        return f"tokens should be a long tensor (B, L) with B = {B}, got {describe(tokens)}."
    if not _tensor(scores) or tuple(scores.shape) != (B,) or not scores.is_floating_point():
        return f"scores should be a float tensor of shape (B,) = ({B},), got {describe(scores)}."
    rows = [_cut(r, eos_id, pad_id) for r in tokens.tolist()]
    for row in tokens.tolist():
        if eos_id in row and any(t != pad_id for t in row[row.index(eos_id) + 1:]):
            return "after a row's first <eos> every position must be pad_id."
    seqs_ok = same(rows, [q for _, q in want])
    scores_ok = all(abs(float(s) - w) <= atol + 1e-4 * abs(w) for s, (w, _) in zip(scores.tolist(), want, strict=True))
    if seqs_ok and scores_ok:
        return None
    hints = {
        "probabilities": "the scores add probabilities; add LOG-probabilities (torch.log_softmax), so that a "
                         "sequence's score is the log of the product of its token probabilities.",
        "no_length_norm": "there is no length normalisation: divide each finished hypothesis' total log-probability "
                          "by len(tokens) ** alpha (its generated tokens, <eos> included) before comparing.",
        "forget_finished": "hypotheses that finished in an earlier step were lost: keep every finished hypothesis "
                           "(set it aside when it produces <eos>) until the search ends, and pick the best of all.",
    }
    for variant, result in (alternatives or {}).items():
        alt_rows = [q for _, q in result]
        alt_ok = all(abs(float(s) - w) <= atol + 1e-4 * abs(w) for s, (w, _) in zip(scores.tolist(), result,
                                                                                      strict=True))
        if same(rows, alt_rows) and (alt_ok or variant == "forget_finished"):
            return hints[variant]
    if seqs_ok:
        return ("the sequences are right but the scores are not: return each sequence's total log-probability "
                "divided by len(tokens) ** alpha (its generated tokens, <eos> included).")
    return ("the sequences differ from beam search as specified: at each step extend every live hypothesis by every "
            "token, keep the `width` best by total log-probability, set aside those ending in <eos>, stop when "
            "`width` have finished, return the best by total / len ** alpha.")


# ---------------------------------------------------------------- 5. BLEU

SPECIALS = (0, 1, 2)  # <pad>, <bos>, <eos> in every genlab vocabulary


DECODING_VARIANTS = ("ids", "raw_ids", "no_eos_cut", "keep_specials", "eos_kept")


@oracle
def ids_to_text_oracle(ids: Tensor, itos: Sequence[str], sep: str = "", variant: str = "right") -> list[str]:
    """Decode ``ids (B, L)``: tokens before the first <eos> (id 2), <pad>/<bos> dropped.

    variant: "right"; "ids" (the ids as text, "5 3 4"); "raw_ids" (every id of the row as text,
    specials and padding too); "no_eos_cut" (every non-pad token after the first <eos> kept
    too, specials dropped); "keep_specials" (every token as text, specials and padding too);
    "eos_kept" (cut after the first <eos>, which is kept as text, <pad>/<bos> dropped).
    """
    return _decoded_rows(ids, itos, sep, variant)


def _decoded_rows(ids: Tensor, itos: Sequence[str], sep: str, variant: str) -> list[str]:
    """``ids_to_text_oracle``'s decoding (also ``bleu_formula``'s)."""
    texts = []
    for row in ids.tolist():
        if variant == "raw_ids":
            texts.append(" ".join(str(i) for i in row))
            continue
        if variant == "keep_specials":
            texts.append(sep.join(itos[i] for i in row))
            continue
        if variant == "eos_kept":
            cut = row[: row.index(2) + 1] if 2 in row else row
            texts.append(sep.join(itos[i] for i in cut if i not in (0, 1)))
            continue
        if variant == "no_eos_cut":
            kept = [itos[i] for i in row if i not in SPECIALS]
        else:
            cut = row[: row.index(2)] if 2 in row else row
            if variant == "ids":
                texts.append(" ".join(str(i) for i in cut if i not in SPECIALS))
                continue
            kept = [itos[i] for i in cut if i not in SPECIALS]
        texts.append(sep.join(kept))
    return texts


@oracle
def bleu_formula(pred_ids: Tensor, ref_ids: Tensor, itos: Sequence[str], tokenize: str = "char", sep: str = "",
                 variant: str = "right") -> Tensor:
    """Corpus BLEU by sacrebleu on the decoded strings (0-100, a 0-d float64 tensor), or one of the
    usual bugs.

    variant: "right", the ``ids_to_text_oracle`` variants, "refs_unwrapped" (the references not
    wrapped in a list of streams), "sentence_mean" (the mean of sentence BLEUs), "default_tokenize"
    (the tokenize argument ignored: sacrebleu's 13a).
    """
    decode = variant if variant in DECODING_VARIANTS else "right"
    hyps = _decoded_rows(pred_ids, itos, sep, decode)
    refs = _decoded_rows(ref_ids, itos, sep, decode)
    tok = "13a" if variant == "default_tokenize" else tokenize
    return torch.tensor(_sacrebleu_score(hyps, refs, tok, variant), dtype=torch.float64)


def _sacrebleu_score(hyps: list[str], refs: list[str], tokenize: str, variant: str) -> float:
    """``bleu_formula``'s call of sacrebleu on decoded strings."""
    import sacrebleu

    if variant == "refs_unwrapped":
        return float(sacrebleu.corpus_bleu(hyps, refs, tokenize=tokenize).score)
    if variant == "sentence_mean":
        scores = [sacrebleu.sentence_bleu(h, [r], tokenize=tokenize).score for h, r in zip(hyps, refs, strict=True)]
        return sum(scores) / len(hyps)
    return float(sacrebleu.corpus_bleu(hyps, [refs], tokenize=tokenize).score)


def name_bleu_bug(got, pred_ids: Tensor, ref_ids: Tensor, itos: Sequence[str], tokenize: str = "char",
                  sep: str = "") -> str | None:
    """None if ``got`` is sacrebleu's corpus BLEU of the decoded strings; else the likely bug."""
    if isinstance(got, Tensor) and got.numel() == 1:
        got = float(got)
    if hasattr(got, "score") and not isinstance(got, (int, float)):
        return "corpus_bleu should return the number (BLEU.score, 0-100), not sacrebleu's BLEUScore object."
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return f"corpus_bleu should return a float between 0 and 100, got {describe(got)}."
    want = bleu_formula(pred_ids, ref_ids, itos, tokenize, sep)
    score = torch.tensor(float(got), dtype=torch.float64)
    if close(score, want, atol=1e-6, rtol=1e-6):
        return None
    if 0 <= got <= 1.0 and close(score * 100, want, atol=1e-4, rtol=0):
        return "BLEU here is on sacrebleu's 0-100 scale: return .score as it is."
    hints = {
        "ids": "BLEU was computed on token ids: decode the ids to text first (itos), then give sacrebleu strings.",
        "raw_ids": "BLEU was computed on token ids: decode the ids to text first (itos, up to the first <eos>, "
                   "without <pad> and <bos>), then give sacrebleu strings.",
        "no_eos_cut": "the tokens after the first <eos> were kept: stop decoding each row at its first <eos>.",
        "keep_specials": "special tokens (<bos>, <eos>, <pad>) ended up in the text: stop at the first <eos> and "
                         "drop <pad> and <bos> before scoring.",
        "eos_kept": "the <eos> token ended up in the text: stop before it.",
        "refs_unwrapped": "the references must be given as a list of reference streams, [references] (one stream "
                          "holding one reference per sentence); a plain list of strings is read as many streams.",
        "sentence_mean": "this is the mean of sentence-level BLEU scores, not corpus BLEU: give sacrebleu.corpus_bleu "
                         "all hypotheses and references at once (its n-gram counts are summed over the corpus, and "
                         "sentence_bleu smooths differently).",
        "default_tokenize": f"the tokenize argument was not passed on: call sacrebleu.corpus_bleu(..., "
                            f"tokenize=tokenize) (here {tokenize!r}).",
    }
    for variant, hint in hints.items():
        if variant == "default_tokenize" and tokenize == "13a":
            continue
        try:
            alt = bleu_formula(pred_ids, ref_ids, itos, tokenize, sep, variant)
        except Exception:  # noqa: BLE001 - a variant sacrebleu cannot score is simply not this bug
            continue
        if close(score, alt, atol=1e-6, rtol=1e-6) and not close(alt, want, atol=1e-9, rtol=0):
            return hint
    # no size of the difference: for one number it would give the expected value away
    return (f"the score differs from sacrebleu.corpus_bleu(hypotheses, [references], tokenize={tokenize!r}) on the "
            "decoded strings. Decode the token ids to text (up to the first <eos>, without <pad> and <bos>, joined "
            "with sep); references go in a list of reference streams: [references].")
