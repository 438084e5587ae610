"""Transformer building blocks in plain PyTorch (no Lightning).

Masks are bool, True = may attend / real token, broadcastable to ``(B, H, T_q, T_k)``.
"""
from genlab.nn.attention import (
    KVCache,
    MultiHeadAttention,
    TorchMultiHeadAttention,
    fast_scaled_dot_product_attention,
    kv_cache_step,
    load_torch_weights,
    scaled_dot_product_attention,
)
from genlab.nn.blocks import MLP, DecoderBlock, EncoderBlock, GPTBlock
from genlab.nn.masks import (
    additive_mask,
    causal_mask,
    check_mask,
    combine_masks,
    fill_masked_scores,
    masked_softmax,
    padding_mask,
)
from genlab.nn.positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding, sinusoidal_positions

__all__ = [
    "KVCache",
    "MultiHeadAttention",
    "TorchMultiHeadAttention",
    "fast_scaled_dot_product_attention",
    "kv_cache_step",
    "load_torch_weights",
    "scaled_dot_product_attention",
    "MLP",
    "DecoderBlock",
    "EncoderBlock",
    "GPTBlock",
    "additive_mask",
    "causal_mask",
    "check_mask",
    "combine_masks",
    "fill_masked_scores",
    "masked_softmax",
    "padding_mask",
    "LearnedPositionalEncoding",
    "SinusoidalPositionalEncoding",
    "sinusoidal_positions",
]
