"""Attention for a recurrent decoder: additive (Bahdanau), dot-product (Luong), and none.

At decoder step ``i`` the query is the previous decoder state ``s_{i-1}`` and the keys and
values are the encoder's states ``h_j``, one per source position:

    e_ij = vᵀ tanh(W s_{i-1} + U h_j)        (additive; Bahdanau et al., 2015)
    e_ij = (W s_{i-1}) · h_j / √d_k          (multiplicative, "general"; Luong et al., 2015)
    α_ij = softmax_j(e_ij)  over the real (unpadded) source positions
    c_i  = Σ_j α_ij h_j

Shapes: ``B`` batch, ``S`` source length, ``d_q`` query size, ``d_k`` key size, ``d_v`` value
size, ``d_a`` attention size. Every attention here has the call signature
``attention(query (B, d_q), keys (B, S, d_k), values (B, S, d_v), mask (B, S) | None)
-> (context (B, d_v), weights (B, S) | None)``; ``mask`` is bool, ``True`` = a real token.
Masked positions get weight exactly 0 (the fill is the dtype's own minimum, so float16 is
safe); a row with no real position gets weights 0 and context 0.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from genlab.nn.masks import masked_softmax

__all__ = [
    "additive_scores",
    "additive_attention",
    "AdditiveAttention",
    "DotProductAttention",
    "BottleneckContext",
    "make_attention",
    "ATTENTIONS",
]

#: the names ``make_attention`` (and ``Seq2SeqAttention(attention=...)``) understand
ATTENTIONS = ("additive", "dot", "none")


def _check_inputs(query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None, fn: str) -> None:
    for name, t, dim in (("query", query, 2), ("keys", keys, 3), ("values", values, 3)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}: {name} must be a tensor, got {type(t).__name__}.")
        if t.dim() != dim:
            want = {"query": "(B, d_q)", "keys": "(B, S, d_k)", "values": "(B, S, d_v)"}[name]
            raise ValueError(f"{fn}: {name} must have shape {want}, got {tuple(t.shape)}.")
        if not t.is_floating_point():
            raise TypeError(f"{fn}: {name} must be a floating-point tensor, got {t.dtype}.")
    B, S = keys.shape[:2]
    if query.shape[0] != B or values.shape[:2] != (B, S):
        raise ValueError(
            f"{fn}: query {tuple(query.shape)}, keys {tuple(keys.shape)} and values {tuple(values.shape)} "
            "disagree on the batch size B or the source length S."
        )
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
            raise TypeError(f"{fn}: mask must be a torch.bool tensor (True = real token), got {got}; "
                            "build it with padding_mask(lengths, S).")
        if tuple(mask.shape) != (B, S):
            raise ValueError(f"{fn}: mask must have shape (B, S) = {(B, S)}, got {tuple(mask.shape)}.")


def additive_scores(query: Tensor, keys: Tensor, W: Tensor, U: Tensor, v: Tensor) -> Tensor:
    """Energies ``e_j = vᵀ tanh(W query + U keys_j)``.

    query ``(B, d_q)``, keys ``(B, S, d_k)``; W ``(d_a, d_q)``, U ``(d_a, d_k)``, v ``(d_a,)``
    (the weights of ``nn.Linear`` layers without bias). Returns ``(B, S)``.
    """
    hidden = torch.tanh((query @ W.T).unsqueeze(1) + keys @ U.T)  # (B, S, d_a)
    return hidden @ v  # (B, S)


def additive_attention(
    query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None, W: Tensor, U: Tensor, v: Tensor
) -> tuple[Tensor, Tensor]:
    """Bahdanau attention as a function of its weights.

    query ``(B, d_q)`` (the previous decoder state), keys ``(B, S, d_k)``, values
    ``(B, S, d_v)``, mask bool ``(B, S)`` (True = real) or None; W ``(d_a, d_q)``,
    U ``(d_a, d_k)``, v ``(d_a,)``. Returns ``context (B, d_v)`` and ``weights (B, S)``:
    each row sums to 1 over the real positions and is exactly 0 on padding.
    """
    _check_inputs(query, keys, values, mask, "additive_attention")
    weights = masked_softmax(additive_scores(query, keys, W, U, v), mask)  # (B, S)
    context = torch.bmm(weights.unsqueeze(1).to(values.dtype), values).squeeze(1)  # (B, d_v)
    return context, weights


class AdditiveAttention(nn.Module):
    """``e_ij = vᵀ tanh(W s_{i-1} + U h_j)`` with learned ``W``, ``U``, ``v`` (no biases).

    ``W = nn.Linear(query_size, attention_size)``, ``U = nn.Linear(key_size, attention_size)``,
    ``v = nn.Linear(attention_size, 1)``. ``forward(query, keys, values, mask)`` returns
    ``(context (B, d_v), weights (B, S))``.

    The keys do not change while a sentence is decoded, so ``U h_j`` can be computed once:
    ``project_keys(keys)`` does it and ``attend(query, projected, values, mask)`` uses it.
    ``forward`` is the two in one.
    """

    def __init__(self, query_size: int, key_size: int, attention_size: int):
        super().__init__()
        for name, value in (("query_size", query_size), ("key_size", key_size), ("attention_size", attention_size)):
            if int(value) <= 0:
                raise ValueError(f"AdditiveAttention: {name} must be a positive integer, got {value}.")
        self.W = nn.Linear(query_size, attention_size, bias=False)
        self.U = nn.Linear(key_size, attention_size, bias=False)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def project_keys(self, keys: Tensor) -> Tensor:
        """``U h_j`` for every source position: ``(B, S, d_k) -> (B, S, d_a)``."""
        return self.U(keys)

    def attend(self, query: Tensor, projected_keys: Tensor, values: Tensor, mask: Tensor | None = None
               ) -> tuple[Tensor, Tensor]:
        """Attention given ``project_keys(keys)``; same result as ``forward``."""
        scores = self.v(torch.tanh(self.W(query).unsqueeze(1) + projected_keys)).squeeze(-1)  # (B, S)
        weights = masked_softmax(scores, mask)
        context = torch.bmm(weights.unsqueeze(1).to(values.dtype), values).squeeze(1)
        return context, weights

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """query ``(B, d_q)``, keys ``(B, S, d_k)``, values ``(B, S, d_v)``, mask ``(B, S)`` bool.

        Returns ``context (B, d_v)`` and ``weights (B, S)``.
        """
        _check_inputs(query, keys, values, mask, "AdditiveAttention")
        return self.attend(query, self.project_keys(keys), values, mask)


class DotProductAttention(nn.Module):
    """Multiplicative attention, ``e_ij = (W s_{i-1}) · h_j / √d_k`` (Luong's "general" form).

    ``W = nn.Linear(query_size, key_size)`` (no bias) maps the decoder state to the keys' size,
    so the two may differ. Same call signature and results layout as ``AdditiveAttention``.
    """

    def __init__(self, query_size: int, key_size: int):
        super().__init__()
        if int(query_size) <= 0 or int(key_size) <= 0:
            raise ValueError(f"DotProductAttention: sizes must be positive, got {query_size}, {key_size}.")
        self.W = nn.Linear(query_size, key_size, bias=False)
        self.scale = 1.0 / math.sqrt(key_size)

    def project_keys(self, keys: Tensor) -> Tensor:
        """The keys as they are (nothing to precompute); for the ``AdditiveAttention`` protocol."""
        return keys

    def attend(self, query: Tensor, projected_keys: Tensor, values: Tensor, mask: Tensor | None = None
               ) -> tuple[Tensor, Tensor]:
        scores = torch.bmm(projected_keys, self.W(query).unsqueeze(-1)).squeeze(-1) * self.scale  # (B, S)
        weights = masked_softmax(scores, mask)
        context = torch.bmm(weights.unsqueeze(1).to(values.dtype), values).squeeze(1)
        return context, weights

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """query ``(B, d_q)``, keys ``(B, S, d_k)``, values ``(B, S, d_v)`` -> ``(B, d_v)``, ``(B, S)``."""
        _check_inputs(query, keys, values, mask, "DotProductAttention")
        return self.attend(query, keys, values, mask)


class BottleneckContext(nn.Module):
    """No attention: the same context vector at every step (the encoder-decoder of 2014).

    The context is the bidirectional encoder's summary: the forward direction's state after
    the last real token and the backward direction's state after the first, read from
    ``values (B, S, 2H)`` with ``mask``. It ignores the query, so the whole sentence must
    squeeze through one vector of size 2H: the bottleneck attention removes. Returns
    ``(context (B, 2H), None)``: there are no weights to draw.
    """

    def __init__(self, key_size: int):
        super().__init__()
        if int(key_size) <= 0 or int(key_size) % 2:
            raise ValueError(f"BottleneckContext: key_size must be 2H (both directions), got {key_size}.")
        self.half = int(key_size) // 2

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None
                ) -> tuple[Tensor, None]:
        _check_inputs(query, keys, values, mask, "BottleneckContext")
        B, S, _ = values.shape
        if mask is None:
            last = torch.full((B,), S - 1, dtype=torch.long, device=values.device)
        else:
            last = (mask.long().sum(dim=1) - 1).clamp(min=0)
        forward_final = values[torch.arange(B, device=values.device), last, : self.half]  # (B, H)
        backward_final = values[:, 0, self.half:]  # (B, H)
        return torch.cat([forward_final, backward_final], dim=-1), None


def make_attention(kind, query_size: int, key_size: int, attention_size: int) -> nn.Module:
    """An attention module: by name ("additive", "dot", "none"); ``kind`` itself if it is a
    module; or ``kind(query_size, key_size, attention_size)`` if it is a class or a factory
    (a student's ``AdditiveAttention``)."""
    if isinstance(kind, nn.Module):
        return kind
    if callable(kind) and not isinstance(kind, str):
        module = kind(query_size, key_size, attention_size)
        if not isinstance(module, nn.Module):
            raise TypeError(f"attention={kind!r} built a {type(module).__name__}, not an nn.Module.")
        return module
    if kind == "additive":
        return AdditiveAttention(query_size, key_size, attention_size)
    if kind == "dot":
        return DotProductAttention(query_size, key_size)
    if kind == "none":
        return BottleneckContext(key_size)
    raise ValueError(f"attention must be one of {ATTENTIONS}, an nn.Module or a class, got {kind!r}.")
