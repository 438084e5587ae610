"""Public checks for lab 03 (the Transformer). Each prints one ✓ line or raises AssertionError.

The checks use small fixed inputs and independent formulas (float64 math, torch's own
``nn.MultiheadAttention``); the hidden tests are more thorough.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from genlab.checks import kit
from genlab.checks import lab03_bugs as bugs

__all__ = [
    "check_scaled_dot_product_attention",
    "check_masks",
    "check_multi_head_attention",
    "check_sinusoidal_positions",
    "check_count_parameters",
    "check_kv_cache_step",
]


def check_scaled_dot_product_attention(fn: Callable) -> None:
    """Shapes, the √d_k scale, the softmax axis, masking, fully masked rows and float16."""
    g = torch.Generator().manual_seed(3)
    what = "scaled_dot_product_attention"
    for d_k in (4, 64):
        q, k = torch.randn(2, 3, 5, d_k, generator=g), torch.randn(2, 3, 7, d_k, generator=g)
        v = torch.randn(2, 3, 7, 6, generator=g)
        out, w = kit.expect_tuple(kit.call(what, fn, q, k, v), 2, what, ("output", "weights"))
        kit.fail_if(bugs.name_attention_bug(out, w, q, k, v), f"{what} (no mask, d_k={d_k})")
    q, k, v = (torch.randn(2, 6, 8, generator=g) for _ in range(3))
    mask = torch.ones(6, 6, dtype=torch.bool).tril()
    mask = mask & torch.tensor([[True] * 4 + [False] * 2, [True] * 6])[:, None, :]  # (2, 6, 6)
    mask[0, 2] = False  # a query with no allowed key
    out, w = kit.expect_tuple(kit.call(what, fn, q, k, v, mask=mask), 2, what, ("output", "weights"))
    kit.fail_if(bugs.name_attention_bug(out, w, q, k, v, mask), f"{what} (with a mask)")
    out16, w16 = kit.expect_tuple(kit.call(f"{what} on float16 inputs", fn, q.half(), k.half(), v.half(), mask=mask), 2, what, ("output", "weights"))
    if not (isinstance(out16, Tensor) and torch.isfinite(out16).all() and torch.isfinite(w16).all()):
        raise AssertionError(f"{what} gave inf/NaN on float16 inputs; fill masked scores with "
                             "torch.finfo(scores.dtype).min, not -inf or -1e9.")
    kit.ok(f"{what}: shapes, 1/√d_k scale, softmax over keys, masks, fully masked rows and float16 look right")


def check_masks(causal_mask: Callable, combine_masks: Callable) -> None:
    """causal_mask(T) for a few T and combine_masks on a padded batch."""
    for T in (1, 4, 9):
        kit.fail_if(bugs.name_causal_mask_bug(kit.call("causal_mask", causal_mask, T), T), "causal_mask")
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    pad = torch.arange(5)[None, :] < torch.tensor([5, 3, 1])[:, None]
    kit.fail_if(bugs.name_combine_masks_bug(kit.call("combine_masks", combine_masks, causal, pad), causal, pad),
             "combine_masks")
    kit.ok("causal_mask and combine_masks look right")


def _torch_state(torch_mha: nn.MultiheadAttention) -> dict[str, Tensor]:
    d = torch_mha.embed_dim
    w, b = torch_mha.in_proj_weight.detach().split(d), torch_mha.in_proj_bias.detach().split(d)
    sd = {}
    for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
        sd[f"{name}.weight"], sd[f"{name}.bias"] = w[i].clone(), b[i].clone()
    sd["out_proj.weight"] = torch_mha.out_proj.weight.detach().clone()
    sd["out_proj.bias"] = torch_mha.out_proj.bias.detach().clone()
    return sd


def check_multi_head_attention(cls: type) -> None:
    """Projections, split/merge, and equality with nn.MultiheadAttention given the same weights."""
    torch.manual_seed(0)
    d, H = 16, 4
    mha = kit.call("MultiHeadAttention(16, 4)", cls, d, H)
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        layer = getattr(mha, name, None)
        if not isinstance(layer, nn.Linear) or layer.weight.shape != (d, d) or layer.bias is None:
            raise AssertionError(f"MultiHeadAttention needs self.{name} = nn.Linear(d_model, d_model) (with bias).")
    x = torch.randn(2, 5, d)
    heads = kit.call("split_heads", mha.split_heads, x)
    if not isinstance(heads, Tensor) or heads.shape != (2, H, 5, d // H):
        raise AssertionError(f"split_heads should map (2, 5, 16) to (2, 4, 5, 4) (B, H, T, d_h), "
                             f"got {kit.describe(heads)}.")
    if not torch.equal(heads[:, 1], x[..., 4:8]):
        raise AssertionError("split_heads: head h must hold features [h*d_h:(h+1)*d_h]; view x as "
                             "(B, T, H, d_h) and then transpose(1, 2).")
    back = kit.call("merge_heads", mha.merge_heads, heads)
    if not isinstance(back, Tensor) or back.shape != x.shape or not torch.equal(back, x):
        raise AssertionError("merge_heads(split_heads(x)) should give x back: transpose(1, 2) before reshaping "
                             "to (B, T, d_model).")
    ref = nn.MultiheadAttention(d, H, batch_first=True)
    sd = _torch_state(ref)
    missing = kit.call("load_state_dict", mha.load_state_dict, sd, strict=False)
    if missing.missing_keys:
        raise AssertionError(f"MultiHeadAttention is missing parameters {missing.missing_keys}.")
    mem = torch.randn(2, 7, d)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    with torch.no_grad():
        got = kit.call("MultiHeadAttention.forward", mha, x, x, x, mask=causal)
        kit.fail_if(bugs.name_mha_bug(got, sd, H, x, x, x, causal), "self-attention with a causal mask")
        want = ref(x, x, x, attn_mask=~causal, need_weights=False)[0]
        if not torch.allclose(got, want, atol=1e-5):
            raise AssertionError("self-attention differs from nn.MultiheadAttention with the same weights.")
        got = kit.call("MultiHeadAttention.forward (cross-attention)", mha, x, mem, mem)
        kit.fail_if(bugs.name_mha_bug(got, sd, H, x, mem, mem), "cross-attention (query 5 steps, key/value 7 steps)")
    w = getattr(mha, "last_weights", None)
    if not isinstance(w, Tensor) or w.shape != (2, H, 5, 7):
        raise AssertionError(f"keep the attention weights in self.last_weights, shape (B, H, T_q, T_k) = (2, 4, 5, 7); "
                             f"found {kit.describe(w)}.")
    kit.ok("MultiHeadAttention matches torch.nn.MultiheadAttention (self- and cross-attention, causal mask)")


def check_sinusoidal_positions(fn: Callable) -> None:
    """The table for a few sizes against the formula in float64."""
    for T, d in ((1, 4), (10, 8), (50, 32)):
        kit.fail_if(bugs.name_sinusoid_bug(kit.call("sinusoidal_positions", fn, T, d), T, d), f"sinusoidal_positions({T}, {d})")
    kit.ok("sinusoidal_positions matches sin/cos interleaved with frequencies 1/10000^(2i/d)")


def check_count_parameters(fn: Callable) -> None:
    """A small config counted by formula and, when genlab's GPT is available, against the real model."""
    configs = [dict(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.0),
               dict(vocab_size=103, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0)]
    for config in configs:
        got = kit.call("count_parameters", fn, dict(config))
        kit.fail_if(bugs.name_parameter_bug(got, config), f"count_parameters({config})")
    kit.ok("count_parameters agrees with the formula: per layer 12d² + 13d, plus embeddings and the final LayerNorm")
    real = _real_gpt_count(configs[0])
    if real is not None:
        got = fn(dict(configs[0]))
        if got != real:
            raise AssertionError(f"genlab's GPT with {configs[0]} has {real} parameters, your formula says {got}.")
        kit.ok(f"and it equals the real GPT's count ({real:,} parameters for the small config)")


def _real_gpt_count(config: dict) -> int | None:
    try:
        from genlab.models import GPT
    except ImportError:
        return None
    model = GPT(**{k: config[k] for k in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")})
    return sum(p.numel() for p in model.parameters())


def check_kv_cache_step(fn: Callable) -> None:
    """Step-by-step decoding with the cache equals full causal attention."""
    g = torch.Generator().manual_seed(5)
    B, H, T, d_h = 2, 3, 6, 8
    q, k, v = (torch.randn(B, H, T, d_h, generator=g) for _ in range(3))
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_h)
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    full = torch.softmax(scores, dim=-1) @ v
    cache_k = cache_v = None
    for t in range(T):
        result = kit.call("kv_cache_step", fn, q[:, :, t:t + 1], k[:, :, t:t + 1], v[:, :, t:t + 1], cache_k, cache_v)
        if not (isinstance(result, (tuple, list)) and len(result) == 3):
            raise AssertionError(f"kv_cache_step should return (out, cache_k, cache_v), got {kit.describe(result)}.")
        out, cache_k, cache_v = result
        kit.fail_if(bugs.name_kv_cache_bug(t, out, cache_k, cache_v, full[:, :, t:t + 1], k[:, :, :t + 1], v[:, :, :t + 1]),
                 "kv_cache_step")
    kit.ok(f"kv_cache_step: {T} cached steps reproduce full causal attention")
