"""Scaled dot-product attention, multi-head attention and the KV-cache step.

Shapes: ``B`` batch, ``H`` heads, ``T_q``/``T_k`` query/key lengths, ``d`` model width,
``d_h = d / H`` per-head width. Masks are bool, ``True`` = may attend (see ``genlab.nn.masks``).

Three multi-head modules: ``MultiHeadAttention`` (separate q/k/v projections, any mask, self- or
cross-attention: the one lab 03 has students write), ``TorchMultiHeadAttention`` (torch's own
``nn.MultiheadAttention`` behind the same interface: the encoder-decoder's default, so that the
model needs no graded part) and ``CausalSelfAttention`` (one fused q/k/v projection, causal
self-attention only: the GPT's fast default).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.nn.masks import causal_mask, check_mask, masked_softmax

__all__ = [
    "AttentionFn",
    "scaled_dot_product_attention",
    "fast_scaled_dot_product_attention",
    "AttentionLayer",
    "MultiHeadAttention",
    "TorchMultiHeadAttention",
    "CausalSelfAttention",
    "KVCache",
    "kv_cache_step",
    "load_torch_weights",
]

#: The signature every attention callable follows: ``(q, k, v, mask=None) -> (out, weights|None)``.
AttentionFn = Callable[..., "tuple[Tensor, Tensor | None]"]

#: What builds an attention layer: ``(d_model, n_heads) -> module`` whose forward takes
#: ``(query (B, T_q, d), key (B, T_k, d), value (B, T_k, d), mask=None)``, returns ``(B, T_q, d)``
#: and keeps the weights ``(B, H, T_q, T_k)`` in ``last_weights`` (lab 03's ``MultiHeadAttention``).
AttentionLayer = Callable[[int, int], nn.Module]


def _check_qkv(q: Tensor, k: Tensor, v: Tensor, fn: str) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}: {name} must be a tensor, got {type(t).__name__}.")
        if t.dim() < 2:
            raise ValueError(f"{fn}: {name} must have shape (..., T, d), got {tuple(t.shape)}.")
        if not t.is_floating_point():
            raise TypeError(f"{fn}: {name} must be a floating-point tensor, got {t.dtype}.")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"{fn}: q has d_k={q.shape[-1]} features but k has {k.shape[-1]}; "
            "queries and keys must have the same last dimension."
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"{fn}: k has T_k={k.shape[-2]} positions but v has {v.shape[-2]}; "
            "keys and values must come in pairs."
        )


def scaled_dot_product_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """softmax(q kᵀ / sqrt(d_k)) v, written out (the readable reference).

    q: ``(..., T_q, d_k)``, k: ``(..., T_k, d_k)``, v: ``(..., T_k, d_v)``;
    mask: bool broadcastable to ``(..., T_q, T_k)``, ``True`` = may attend.
    Returns ``output (..., T_q, d_v)`` and ``weights (..., T_q, T_k)`` (rows sum to 1;
    masked entries exactly 0; a row with no allowed key is all 0 and its output is 0).
    """
    _check_qkv(q, k, v, "scaled_dot_product_attention")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T_q, T_k)
    weights = masked_softmax(scores, mask)
    output = weights.to(v.dtype) @ v  # (..., T_q, d_v)
    return output, weights


def fast_scaled_dot_product_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, None]:
    """The same attention through ``F.scaled_dot_product_attention`` (fused, for training).

    Same shapes and mask convention as ``scaled_dot_product_attention``; returns
    ``(output, None)`` because fused kernels do not materialise the weights. Rows with no
    allowed key give output 0 (they attend everywhere inside the kernel, then are zeroed,
    so neither the output nor the gradients see a NaN).
    """
    _check_qkv(q, k, v, "fast_scaled_dot_product_attention")
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v), None
    check_mask(mask, (*q.shape[:-1], k.shape[-2]))
    has_key = mask.any(dim=-1, keepdim=True)  # (..., T_q, 1)
    safe_mask = mask | ~has_key
    output = F.scaled_dot_product_attention(q, k, v, attn_mask=safe_mask)
    return output.masked_fill(~has_key, 0.0), None


@dataclass
class KVCache:
    """Keys and values of the positions seen so far, for one attention layer.

    k, v: ``(B, H, T_past, d_h)`` or ``None`` before the first step. ``MultiHeadAttention``
    and ``CausalSelfAttention`` append to them in place when given a cache.
    """

    k: Tensor | None = None
    v: Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.shape[-2]

    def append(self, k_new: Tensor, v_new: Tensor) -> tuple[Tensor, Tensor]:
        """Append ``(B, H, T_new, d_h)`` keys/values along time; return all of them."""
        self.k = k_new if self.k is None else torch.cat([self.k, k_new], dim=-2)
        self.v = v_new if self.v is None else torch.cat([self.v, v_new], dim=-2)
        return self.k, self.v


def kv_cache_step(
    q: Tensor,
    k_new: Tensor,
    v_new: Tensor,
    cache_k: Tensor | None = None,
    cache_v: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """One generation step with a key/value cache.

    q, k_new, v_new: ``(B, H, 1, d_h)`` for the newest position; cache_k, cache_v:
    ``(B, H, T_past, d_h)`` or ``None``. Appends the new key/value along time and lets the
    new query attend over every cached position (no mask needed: nothing later exists).
    Returns ``out (B, H, 1, d_h)``, ``cache_k``, ``cache_v`` ``(B, H, T_past + 1, d_h)``.
    """
    if (cache_k is None) != (cache_v is None):
        raise ValueError("kv_cache_step: give both cache_k and cache_v, or neither.")
    cache = KVCache(cache_k, cache_v)
    k_all, v_all = cache.append(k_new, v_new)
    out, _ = scaled_dot_product_attention(q, k_all, v_all)
    return out, k_all, v_all


def head_size(owner: str, d_model: int, n_heads: int) -> int:
    """``d_model // n_heads``, or a ValueError naming ``owner`` when the split is impossible."""
    if d_model <= 0 or n_heads <= 0:
        raise ValueError(f"{owner}: d_model and n_heads must be positive, got {d_model}, {n_heads}.")
    if d_model % n_heads:
        raise ValueError(
            f"{owner}: d_model={d_model} is not divisible by n_heads={n_heads}; "
            "each head gets d_model // n_heads features, so pick n_heads dividing d_model."
        )
    return d_model // n_heads


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate q/k/v/out projections.

    Head ``h`` owns features ``[h*d_h:(h+1)*d_h]`` of each projection, the same packing as
    ``torch.nn.MultiheadAttention`` (see ``load_torch_weights``). ``attention`` is any
    callable with the ``scaled_dot_product_attention`` signature (default: that reference,
    so ``last_weights`` is available); pass ``fast_scaled_dot_product_attention`` to train faster.
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, attention: AttentionFn | None = None):
        super().__init__()
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_head = head_size(type(self).__name__, d_model, n_heads)
        self.attention = attention if attention is not None else scaled_dot_product_attention
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.last_weights: Tensor | None = None  # (B, H, T_q, T_k), detached

    def split_heads(self, x: Tensor) -> Tensor:
        """``(B, T, d)`` -> ``(B, H, T, d_h)``."""
        B, T, d = x.shape
        return x.view(B, T, self.n_heads, self.d_head).transpose(1, 2)

    def merge_heads(self, x: Tensor) -> Tensor:
        """``(B, H, T, d_h)`` -> ``(B, T, d)`` (inverse of ``split_heads``)."""
        B, H, T, d_h = x.shape
        return x.transpose(1, 2).reshape(B, T, H * d_h)

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        mask: Tensor | None = None,
        cache: KVCache | None = None,
        need_weights: bool = False,
    ) -> Tensor:
        """Attend from ``query (B, T_q, d)`` to ``key``/``value (B, T_k, d)``.

        key/value default to ``query`` (self-attention; ``value`` defaults to ``key``).
        mask: bool, broadcastable to ``(B, H, T_q, T_k)``, True = may attend; with a cache,
        ``T_k`` counts the cached positions too. cache: a ``KVCache`` the new keys/values are
        appended to (incremental decoding). need_weights: if the attention callable returns
        no weights, recompute with the reference so ``last_weights`` is set.
        Returns ``(B, T_q, d)``.
        """
        if query.dim() != 3 or query.shape[-1] != self.d_model:
            raise ValueError(
                f"MultiHeadAttention: query must have shape (B, T, {self.d_model}), got {tuple(query.shape)}."
            )
        key = query if key is None else key
        value = key if value is None else value
        if key.dim() != 3 or value.dim() != 3 or key.shape[-1] != self.d_model or value.shape[-1] != self.d_model:
            raise ValueError(
                f"MultiHeadAttention: key and value must have shape (B, T_k, {self.d_model}), "
                f"got {tuple(key.shape)} and {tuple(value.shape)}."
            )
        q = self.split_heads(self.q_proj(query))
        k = self.split_heads(self.k_proj(key))
        v = self.split_heads(self.v_proj(value))
        if cache is not None:
            k, v = cache.append(k, v)
        out, weights = self.attention(q, k, v, mask=mask)
        if weights is None and need_weights:
            out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
        self.last_weights = None if weights is None else weights.detach()
        return self.out_proj(self.merge_heads(out))


class TorchMultiHeadAttention(nn.Module):
    """``torch.nn.MultiheadAttention`` behind ``MultiHeadAttention``'s interface and mask convention.

    The same function and the same ``4d² + 4d`` parameters (q, k, v packed in
    ``mha.in_proj_weight (3d, d)``). Masks are genlab's: bool, True = may attend, broadcastable to
    ``(B, H, T_q, T_k)``; torch's own ``attn_mask`` means the opposite, so it gets ``~mask``.
    Every query must be allowed at least one key (torch gives NaN for a row with none).
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True):
        super().__init__()
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_head = head_size(type(self).__name__, d_model, n_heads)
        self.mha = nn.MultiheadAttention(d_model, n_heads, bias=bias, batch_first=True)
        self.last_weights: Tensor | None = None  # (B, H, T_q, T_k), detached; only with need_weights

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        mask: Tensor | None = None,
        need_weights: bool = False,
    ) -> Tensor:
        """``query (B, T_q, d)``, ``key``/``value (B, T_k, d)`` (default: the query) -> ``(B, T_q, d)``."""
        key = query if key is None else key
        value = key if value is None else value
        B, T_q, T_k, H = query.shape[0], query.shape[1], key.shape[1], self.n_heads
        blocked, padded = None, None
        if mask is not None:
            check_mask(mask, (B, H, T_q, T_k))
            if mask.dim() == 2:  # (T_q, T_k), e.g. causal
                blocked = ~mask
            elif mask.dim() == 4 and mask.shape[1] == mask.shape[2] == 1:  # (B, 1, 1, T_k): key padding only
                padded = ~mask.expand(B, 1, 1, T_k)[:, 0, 0]  # (B, T_k), torch's cheaper key_padding_mask
            else:
                blocked = ~mask.expand(B, H, T_q, T_k).reshape(B * H, T_q, T_k)
        out, weights = self.mha(query, key, value, attn_mask=blocked, key_padding_mask=padded,
                                need_weights=need_weights, average_attn_weights=False)  # (B, T_q, d), (B, H, T_q, T_k)
        self.last_weights = None if weights is None else weights.detach()
        return out


class CausalSelfAttention(nn.Module):
    """Causal multi-head self-attention with one fused q/k/v projection (the GPT's layer).

    ``qkv`` is ``nn.Linear(d, 3d)``: its three row blocks are the q, k and v projections of
    ``MultiHeadAttention`` (the packing of ``torch.nn.MultiheadAttention.in_proj_weight``), so
    it has the same ``4d² + 4d`` parameters and computes the same function with one GEMM
    instead of three. A state dict with separate ``q_proj``/``k_proj``/``v_proj`` (one of
    ``MultiHeadAttention``'s, or an older GPT checkpoint) loads into it.

    ``attention=None``: ``F.scaled_dot_product_attention(..., is_causal=True)``, no mask tensor
    at all. Any callable with the ``scaled_dot_product_attention`` signature (a student's) may
    be injected instead; it is given the causal mask, sliced from a table built once for
    ``max_len`` positions (built per call beyond that).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        bias: bool = True,
        attention: AttentionFn | None = None,
        max_len: int | None = None,
    ):
        super().__init__()
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_head = head_size(type(self).__name__, d_model, n_heads)
        self.attention = attention
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)  # rows: [W_q; W_k; W_v]
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.register_buffer("causal", causal_mask(max_len or 0), persistent=False)  # (max_len, max_len)
        self.last_weights: Tensor | None = None  # (B, H, T_q, T_k), detached
        self.register_load_state_dict_pre_hook(_fuse_qkv_state)

    def causal_mask(self, past: int, T: int, device: torch.device) -> Tensor:
        """Mask ``(T, past + T)`` for ``T`` new queries after ``past`` cached keys."""
        if past + T <= self.causal.shape[0]:
            return self.causal[past : past + T, : past + T]
        return causal_mask(past + T, device=device)[past:]

    def forward(
        self, x: Tensor, cache: KVCache | None = None, mask: Tensor | None = None, need_weights: bool = False
    ) -> Tensor:
        """x ``(B, T, d)`` -> ``(B, T, d)``: each position attends to itself and earlier ones.

        cache: a ``KVCache`` with the keys/values of ``T_past`` earlier positions; the new ones
        are appended in place. mask: an explicit bool mask broadcastable to
        ``(B, H, T, T_past + T)`` used instead of the causal one (e.g. causal and padding).
        need_weights: keep the weights in ``last_weights`` (recomputed with the reference
        when the attention callable returns none).
        """
        B, T, d = x.shape
        if d != self.d_model:
            raise ValueError(f"CausalSelfAttention: x must have shape (B, T, {self.d_model}), got {tuple(x.shape)}.")
        qkv = self.qkv(x).view(B, T, 3, self.n_heads, self.d_head)  # (B, T, 3, H, d_h)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, T, d_h)
        past = 0 if cache is None else len(cache)
        if cache is not None:
            k, v = cache.append(k, v)  # (B, H, T_past + T, d_h)
        if mask is None and self.attention is None and not need_weights:
            out = _causal_sdpa(q, k, v, past)  # (B, H, T, d_h)
            self.last_weights = None
        else:
            mask = self.causal_mask(past, T, x.device) if mask is None else mask  # (T, T_past + T)
            attend = self.attention or fast_scaled_dot_product_attention
            out, weights = attend(q, k, v, mask=mask)  # (B, H, T, d_h), (B, H, T, T_k) or None
            if weights is None and need_weights:
                out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
            self.last_weights = None if weights is None else weights.detach()
        return self.out_proj(out.transpose(1, 2).reshape(B, T, d))  # (B, T, d)


def _causal_sdpa(q: Tensor, k: Tensor, v: Tensor, past: int) -> Tensor:
    """Fused causal attention of ``T`` queries ``(B, H, T, d_h)`` after ``past`` cached keys."""
    T = q.shape[-2]
    if past == 0:  # no cache: torch's own causal kernel, no mask tensor
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if T == 1:  # one new query: every cached key is in its past
        return F.scaled_dot_product_attention(q, k, v)
    mask = causal_mask(past + T, device=q.device)[past:]  # (T, past + T); is_causal would align top-left
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _fuse_qkv_state(module, state_dict, prefix, *_):
    """Load hook: ``q_proj``/``k_proj``/``v_proj`` weights (and biases) -> one ``qkv`` tensor."""
    for kind in ("weight", "bias"):
        names = [f"{prefix}{p}_proj.{kind}" for p in "qkv"]
        if all(n in state_dict for n in names) and f"{prefix}qkv.{kind}" not in state_dict:
            state_dict[f"{prefix}qkv.{kind}"] = torch.cat([state_dict.pop(n) for n in names], dim=0)


@torch.no_grad()
def load_torch_weights(mha: MultiHeadAttention, torch_mha: nn.MultiheadAttention) -> MultiHeadAttention:
    """Copy ``torch_mha``'s weights into ``mha`` so both compute the same function.

    torch packs q, k, v as the three row blocks of ``in_proj_weight (3d, d)``; both use the
    same per-head feature slices, so the copy is direct. Returns ``mha``.
    """
    d = mha.d_model
    if torch_mha.embed_dim != d or torch_mha.num_heads != mha.n_heads:
        raise ValueError(
            f"load_torch_weights: shapes differ: torch has embed_dim={torch_mha.embed_dim}, "
            f"num_heads={torch_mha.num_heads}; ours d_model={d}, n_heads={mha.n_heads}."
        )
    if (torch_mha.in_proj_bias is None) != (mha.q_proj.bias is None):
        raise ValueError(
            "load_torch_weights: one module has biases and the other does not; "
            "build MultiHeadAttention(..., bias=...) to match nn.MultiheadAttention(..., bias=...)."
        )
    if not torch_mha._qkv_same_embed_dim:
        weights = (torch_mha.q_proj_weight, torch_mha.k_proj_weight, torch_mha.v_proj_weight)
    else:
        weights = torch_mha.in_proj_weight.split(d, dim=0)
    for proj, w in zip((mha.q_proj, mha.k_proj, mha.v_proj), weights, strict=True):
        proj.weight.copy_(w)
    if torch_mha.in_proj_bias is not None:
        for proj, b in zip((mha.q_proj, mha.k_proj, mha.v_proj), torch_mha.in_proj_bias.split(d), strict=True):
            proj.bias.copy_(b)
    mha.out_proj.weight.copy_(torch_mha.out_proj.weight)
    if torch_mha.out_proj.bias is not None:
        mha.out_proj.bias.copy_(torch_mha.out_proj.bias)
    return mha
