"""Pre-LayerNorm Transformer blocks: ``x + sublayer(LayerNorm(x))`` for each sublayer.

Shapes: ``x (B, T, d)``; memory ``(B, S, d)`` (encoder output); masks bool, True = may attend.

The encoder and decoder blocks take their attention layers as a part (``attention_layer``, see
``genlab.nn.attention.AttentionLayer``): a student's ``MultiHeadAttention`` class plugs straight
in. Without one they build genlab's ``MultiHeadAttention`` around ``attention``.
"""
from __future__ import annotations

from functools import partial

import torch.nn.functional as F
from torch import Tensor, nn

from genlab.nn.attention import (
    AttentionFn,
    AttentionLayer,
    CausalSelfAttention,
    KVCache,
    MultiHeadAttention,
    TorchMultiHeadAttention,
)
from genlab.nn.masks import causal_mask

__all__ = ["MLP", "EncoderBlock", "DecoderBlock", "GPTBlock", "attend", "attention_layer_for", "dropout_layer"]


def dropout_layer(p: float) -> nn.Module:
    """``nn.Dropout(p)``, or ``nn.Identity()`` for ``p = 0``: the same function, less work per call."""
    return nn.Dropout(p) if p > 0 else nn.Identity()


class MLP(nn.Module):
    """Position-wise feed-forward net ``d -> 4d -> d`` with GELU: ``8d² + 5d`` parameters.

    It adds the non-linearity attention lacks. ``(B, T, d) -> (B, T, d)``.
    """

    def __init__(self, d_model: int, hidden: int | None = None, dropout: float = 0.0):
        super().__init__()
        hidden = 4 * d_model if hidden is None else hidden
        self.fc = nn.Linear(d_model, hidden)
        self.proj = nn.Linear(hidden, d_model)
        self.dropout = dropout_layer(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))  # (B, T, d) -> (B, T, 4d) -> (B, T, d)


def attention_layer_for(attention: AttentionFn | None, attention_layer: AttentionLayer | None) -> AttentionLayer:
    """``attention_layer`` if given, else genlab's ``MultiHeadAttention`` calling ``attention``."""
    return attention_layer if attention_layer is not None else partial(MultiHeadAttention, attention=attention)


def attend(layer: nn.Module, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None,
           need_weights: bool = False) -> Tensor:
    """``layer(query, key, value, mask=mask)`` -> ``(B, T_q, d)``.

    genlab's own layers also get ``need_weights`` (they keep ``last_weights`` only when asked); an
    injected layer has just the four arguments and keeps its weights itself.
    """
    if isinstance(layer, (MultiHeadAttention, TorchMultiHeadAttention)):
        return layer(query, key, value, mask=mask, need_weights=need_weights)
    return layer(query, key, value, mask=mask)


class EncoderBlock(nn.Module):
    """Self-attention then MLP, each pre-LN with a residual ("Add & Norm").

    Parameters per block: attention ``4d² + 4d``, MLP ``8d² + 5d``, two LayerNorms ``4d``.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, attention: AttentionFn | None = None,
                 attention_layer: AttentionLayer | None = None):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = attention_layer_for(attention, attention_layer)(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, dropout=dropout)
        self.dropout = dropout_layer(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None, need_weights: bool = False) -> Tensor:
        """x ``(B, T, d)``; mask broadcastable to ``(B, H, T, T)``; returns ``(B, T, d)``."""
        h = self.ln1(x)
        x = x + self.dropout(attend(self.attn, h, h, h, mask, need_weights))  # (B, T, d)
        return x + self.mlp(self.ln2(x))


class GPTBlock(nn.Module):
    """A decoder-only (GPT) block: causal self-attention then MLP, each pre-LN with a residual.

    Its attention is ``CausalSelfAttention`` (one fused q/k/v projection, the same parameters
    as ``EncoderBlock``'s: attention ``4d² + 4d``, MLP ``8d² + 5d``, LayerNorms ``4d``).
    ``attention=None`` takes torch's fused causal kernel with no mask tensor; an injected
    callable (the ``scaled_dot_product_attention`` signature) gets the causal mask, offset by
    the cached positions so the new queries see every earlier key and none later.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        dropout: float = 0.0,
        attention: AttentionFn | None = None,
        max_len: int | None = None,
    ):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads, attention=attention, max_len=max_len)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, dropout=dropout)
        self.dropout = dropout_layer(dropout)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, cache: KVCache | None = None, need_weights: bool = False
    ) -> Tensor:
        """x ``(B, T, d)`` -> ``(B, T, d)``; mask (optional) replaces the causal one, see ``CausalSelfAttention``."""
        x = x + self.dropout(self.attn(self.ln1(x), cache=cache, mask=mask, need_weights=need_weights))  # (B, T, d)
        return x + self.mlp(self.ln2(x))  # (B, T, d)


class DecoderBlock(nn.Module):
    """Causal self-attention, cross-attention to the encoder memory, then MLP (all pre-LN).

    Cross-attention: queries from the decoder, keys and values from the encoder output
    (which stays fixed while the decoder generates).
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, attention: AttentionFn | None = None,
                 attention_layer: AttentionLayer | None = None):
        super().__init__()
        layer = attention_layer_for(attention, attention_layer)
        self.ln1 = nn.LayerNorm(d_model)
        self.self_attn = layer(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.cross_attn = layer(d_model, n_heads)
        self.ln3 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, dropout=dropout)
        self.dropout = dropout_layer(dropout)

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        self_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        need_weights: bool = False,
    ) -> Tensor:
        """x ``(B, T, d)``, memory ``(B, S, d)``.

        self_mask: broadcastable to ``(B, H, T, T)`` (causal, optionally with padding);
        defaults to the causal mask. memory_mask: broadcastable to ``(B, H, T, S)``
        (source padding, e.g. ``(B, 1, 1, S)``). Returns ``(B, T, d)``.
        """
        if self_mask is None:
            self_mask = causal_mask(x.shape[1], device=x.device)
        h = self.ln1(x)
        x = x + self.dropout(attend(self.self_attn, h, h, h, self_mask, need_weights))  # (B, T, d)
        h = self.ln2(x)
        x = x + self.dropout(attend(self.cross_attn, h, memory, memory, memory_mask, need_weights))  # (B, T, d)
        return x + self.mlp(self.ln3(x))
