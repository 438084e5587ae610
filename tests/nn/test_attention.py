"""Attention against torch's own implementations and structural properties."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genlab.nn import (
    KVCache,
    MultiHeadAttention,
    causal_mask,
    combine_masks,
    fast_scaled_dot_product_attention,
    kv_cache_step,
    load_torch_weights,
    padding_mask,
    scaled_dot_product_attention,
)
from genlab.nn.attention import CausalSelfAttention, TorchMultiHeadAttention

ATTENTIONS = [scaled_dot_product_attention, fast_scaled_dot_product_attention]


def _random_mask(shape, generator, p=0.35):
    return torch.rand(shape, generator=generator) > p


@pytest.mark.parametrize(
    "q_shape,k_len,d_v,mask_shape",
    [((5, 8), 5, 8, None), ((2, 5, 8), 7, 3, (2, 5, 7)), ((2, 3, 5, 8), 6, 4, (2, 1, 5, 6)), ((2, 3, 4, 8), 4, 8, (4, 4))],
)
def test_sdpa_matches_torch(q_shape, k_len, d_v, mask_shape):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(q_shape, generator=g, dtype=torch.float64)
    k = torch.randn((*q_shape[:-2], k_len, q_shape[-1]), generator=g, dtype=torch.float64)
    v = torch.randn((*q_shape[:-2], k_len, d_v), generator=g, dtype=torch.float64)
    mask = None
    if mask_shape is not None:
        mask = _random_mask(mask_shape, g)
        mask[..., 0] = True  # no fully masked rows here: torch's result for those differs by backend
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out, w = scaled_dot_product_attention(q, k, v, mask)
    assert out.shape == expected.shape and w.shape == (*q_shape[:-1], k_len)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)))
    fast, none = fast_scaled_dot_product_attention(q, k, v, mask)
    assert none is None
    torch.testing.assert_close(fast, expected)


def test_scores_are_scaled_by_sqrt_dk():
    # q.k0 = 4 and q.k1 = 0 with d_k = 4: scaled scores are 2 and 0.
    q = torch.ones(1, 1, 4)
    k = torch.stack([torch.ones(4), torch.zeros(4)]).unsqueeze(0)
    v = torch.tensor([[[1.0], [0.0]]])
    out, w = scaled_dot_product_attention(q, k, v)
    w0 = math.exp(2) / (math.exp(2) + 1)
    torch.testing.assert_close(w[0, 0], torch.tensor([w0, 1 - w0]))
    torch.testing.assert_close(out[0, 0], torch.tensor([w0]))


def test_masked_weights_are_exactly_zero():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 6, 8, generator=g) * 4 for _ in range(3))
    mask = _random_mask((2, 1, 6, 6), g)
    mask[..., 0] = True
    _, w = scaled_dot_product_attention(q, k, v, mask)
    assert (w.masked_select(~mask.expand_as(w)) == 0).all()


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_fully_masked_row_gives_zero_output_and_no_nan(attention):
    q, k, v = (torch.randn(2, 2, 4, 8, requires_grad=True) for _ in range(3))
    mask = combine_masks(None, padding_mask(torch.tensor([0, 3]), 4))  # row 0: nothing to attend to
    out, w = attention(q, k, v, mask)
    assert torch.isfinite(out).all()
    assert torch.equal(out[0], torch.zeros_like(out[0]))
    if w is not None:
        assert torch.equal(w[0], torch.zeros_like(w[0]))
    out.sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_half_inputs_with_masks_do_not_overflow(attention):
    q, k, v = (torch.randn(2, 2, 5, 8).half() for _ in range(3))
    mask = combine_masks(causal_mask(5), padding_mask(torch.tensor([5, 2]), 5))
    out, w = attention(q, k, v, mask)
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    ref, _ = scaled_dot_product_attention(q.double(), k.double(), v.double(), mask)
    torch.testing.assert_close(out.double(), ref, atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_cpu_autocast_float16_is_finite(attention):
    q, k, v = (torch.randn(2, 2, 5, 8) for _ in range(3))
    mask = combine_masks(causal_mask(5), padding_mask(torch.tensor([5, 1]), 5))
    with torch.autocast("cpu", dtype=torch.float16):
        out, _ = attention(q, k, v, mask)
        mha = MultiHeadAttention(16, 4, attention=attention)
        y = mha(torch.randn(2, 5, 16), mask=mask)
    assert torch.isfinite(out).all() and torch.isfinite(y).all()
    ref, _ = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="same last dimension"):
        scaled_dot_product_attention(torch.randn(2, 3, 4), torch.randn(2, 3, 5), torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="d_model=10 is not divisible by n_heads=4"):
        MultiHeadAttention(10, 4)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_causal_invariance_future_tokens_do_not_change_the_past(attention):
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, attention=attention)
    x = torch.randn(2, 8, 16)
    x2 = x.clone()
    x2[:, 5:] = torch.randn(2, 3, 16) * 10
    mask = causal_mask(8)
    y, y2 = mha(x, mask=mask), mha(x2, mask=mask)
    assert torch.equal(y[:, :5], y2[:, :5])  # bit for bit
    assert not torch.allclose(y[:, 5:], y2[:, 5:])


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_padding_invariance_padded_keys_do_not_matter(attention):
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2, attention=attention)
    lengths = torch.tensor([6, 3])
    mask = combine_masks(None, padding_mask(lengths, 6))
    x = torch.randn(2, 6, 16)
    x2 = x.clone()
    x2[1, 3:] = torch.randn(3, 16) * 10
    y, y2 = mha(x, mask=mask), mha(x2, mask=mask)
    assert torch.equal(y[1, :3], y2[1, :3])
    assert torch.equal(y[0], y2[0])


def _torch_and_ours(d=16, h=4, bias=True, seed=0):
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(d, h, bias=bias, batch_first=True).double()
    for p in ref.parameters():  # non-zero biases so a bias mix-up shows
        nn.init.normal_(p, std=0.3)
    ours = load_torch_weights(MultiHeadAttention(d, h, bias=bias).double(), ref)
    return ref, ours


def test_mha_self_attention_matches_torch_with_masks():
    ref, ours = _torch_and_ours()
    x = torch.randn(3, 7, 16, dtype=torch.float64)
    lengths = torch.tensor([7, 4, 1])
    causal, pad = causal_mask(7), padding_mask(lengths, 7)
    expected, w_ref = ref(x, x, x, attn_mask=~causal, key_padding_mask=~pad, average_attn_weights=False)
    out = ours(x, mask=combine_masks(causal, pad))
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(ours.last_weights, w_ref)


def test_mha_cross_attention_matches_torch():
    ref, ours = _torch_and_ours(d=12, h=3, seed=1)
    q = torch.randn(2, 5, 12, dtype=torch.float64)
    mem = torch.randn(2, 9, 12, dtype=torch.float64)
    pad = padding_mask(torch.tensor([9, 6]), 9)
    expected, _ = ref(q, mem, mem, key_padding_mask=~pad)
    torch.testing.assert_close(ours(q, mem, mem, mask=combine_masks(None, pad)), expected)
    expected_nomask, _ = ref(q, mem, mem)
    torch.testing.assert_close(ours(q, mem), expected_nomask)  # value defaults to key


def test_mha_without_bias_matches_torch():
    ref, ours = _torch_and_ours(bias=False)
    x = torch.randn(2, 4, 16, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x, x, x)[0])


@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding", "both"])
def test_torch_layer_computes_what_ours_computes_with_genlab_masks(mask_kind):
    """TorchMultiHeadAttention: genlab's mask convention (True = may attend) in, the same function
    and per-head weights as MultiHeadAttention with the same weights out."""
    torch.manual_seed(3)
    layer = TorchMultiHeadAttention(16, 4).double()
    for p in layer.parameters():
        nn.init.normal_(p, std=0.3)
    ours = load_torch_weights(MultiHeadAttention(16, 4).double(), layer.mha)
    q, mem = torch.randn(3, 6, 16, dtype=torch.float64), torch.randn(3, 6, 16, dtype=torch.float64)
    causal, pad = causal_mask(6), padding_mask(torch.tensor([6, 3, 1]), 6)
    mask = {"none": None, "causal": causal, "padding": combine_masks(None, pad),
            "both": combine_masks(causal, pad)}[mask_kind]
    got = layer(q, mem, mem, mask=mask, need_weights=True)
    torch.testing.assert_close(got, ours(q, mem, mem, mask=mask))
    torch.testing.assert_close(layer.last_weights, ours.last_weights)
    assert layer(q, mask=mask).shape == (3, 6, 16) and layer.last_weights is None  # weights only when asked


def test_torch_layer_refuses_a_mask_that_does_not_broadcast():
    layer = TorchMultiHeadAttention(8, 2)
    x = torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match="does not broadcast"):
        layer(x, mask=torch.ones(5, 4, dtype=torch.bool))


def test_split_and_merge_heads_use_contiguous_feature_slices():
    mha = MultiHeadAttention(12, 3)
    x = torch.randn(2, 5, 12)
    s = mha.split_heads(x)
    assert s.shape == (2, 3, 5, 4)
    for h in range(3):
        assert torch.equal(s[:, h], x[..., 4 * h : 4 * (h + 1)])
    assert torch.equal(mha.merge_heads(s), x)


def test_injected_attention_is_used_and_weights_are_kept_or_recomputed():
    calls = []

    def spy(q, k, v, mask=None):
        calls.append(q.shape)
        return fast_scaled_dot_product_attention(q, k, v, mask)

    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, attention=spy)
    ref = MultiHeadAttention(8, 2)
    ref.load_state_dict(mha.state_dict())
    x = torch.randn(1, 4, 8)
    torch.testing.assert_close(mha(x), ref(x))
    assert calls == [(1, 2, 4, 4)]
    assert mha.last_weights is None and ref.last_weights.shape == (1, 2, 4, 4)
    mha(x, need_weights=True)
    torch.testing.assert_close(mha.last_weights, ref.last_weights)


def test_kv_cache_step_equals_full_causal_attention():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 4, generator=g, dtype=torch.float64) for _ in range(3))
    full, _ = scaled_dot_product_attention(q, k, v, causal_mask(6))
    cache_k = cache_v = None
    for t in range(6):
        out, cache_k, cache_v = kv_cache_step(q[:, :, t : t + 1], k[:, :, t : t + 1], v[:, :, t : t + 1], cache_k, cache_v)
        assert out.shape == (2, 3, 1, 4) and cache_k.shape == cache_v.shape == (2, 3, t + 1, 4)
        torch.testing.assert_close(out[:, :, 0], full[:, :, t])
    assert torch.equal(cache_k, k) and torch.equal(cache_v, v)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_mha_with_cache_equals_full_causal(attention):
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, attention=attention).double()
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    full = mha(x, mask=causal_mask(7))
    cache = KVCache()
    prefix = mha(x[:, :3], mask=causal_mask(3), cache=cache)  # prefill, then one token at a time
    steps = [mha(x[:, t : t + 1], cache=cache) for t in range(3, 7)]
    torch.testing.assert_close(torch.cat([prefix, *steps], dim=1), full)
    assert len(cache) == 7


# ------------------------------------------------------------------ CausalSelfAttention
def _torch_and_fused(d=16, h=4, seed=0, **kwargs):
    """nn.MultiheadAttention and a CausalSelfAttention holding the same weights (qkv = in_proj)."""
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(d, h, batch_first=True).double()
    for p in ref.parameters():
        nn.init.normal_(p, std=0.3)
    ours = CausalSelfAttention(d, h, **kwargs).double()
    with torch.no_grad():
        ours.qkv.weight.copy_(ref.in_proj_weight)
        ours.qkv.bias.copy_(ref.in_proj_bias)
        ours.out_proj.weight.copy_(ref.out_proj.weight)
        ours.out_proj.bias.copy_(ref.out_proj.bias)
    return ref, ours


@pytest.mark.parametrize("attention", [None, *ATTENTIONS])
def test_causal_self_attention_matches_torch(attention):
    ref, ours = _torch_and_fused(attention=attention, max_len=8)
    x = torch.randn(3, 7, 16, dtype=torch.float64)
    expected, w_ref = ref(x, x, x, attn_mask=~causal_mask(7), average_attn_weights=False)
    torch.testing.assert_close(ours(x), expected)
    torch.testing.assert_close(ours(x, need_weights=True), expected)
    torch.testing.assert_close(ours.last_weights, w_ref)
    assert sum(p.numel() for p in ours.parameters()) == 4 * 16 * 16 + 4 * 16


def test_causal_self_attention_with_an_explicit_padding_mask_matches_torch():
    ref, ours = _torch_and_fused()
    x = torch.randn(3, 7, 16, dtype=torch.float64)
    causal, pad = causal_mask(7), padding_mask(torch.tensor([7, 4, 2]), 7)
    expected, _ = ref(x, x, x, attn_mask=~causal, key_padding_mask=~pad)
    torch.testing.assert_close(ours(x, mask=combine_masks(causal, pad)), expected)


def test_causal_self_attention_default_path_is_one_fused_causal_call(monkeypatch):
    calls = []
    sdpa = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, is_causal=False, **kw):
        calls.append((tuple(q.shape), attn_mask is None, is_causal))
        return sdpa(q, k, v, attn_mask=attn_mask, is_causal=is_causal, **kw)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    ours = CausalSelfAttention(8, 2)
    ours(torch.randn(2, 5, 8))
    assert calls == [((2, 2, 5, 4), True, True)]  # no mask tensor, is_causal
    assert ours.last_weights is None


def test_causal_self_attention_gives_an_injected_attention_the_causal_mask():
    seen = []

    def spy(q, k, v, mask=None):
        seen.append(mask)
        return scaled_dot_product_attention(q, k, v, mask)

    torch.manual_seed(0)
    ours = CausalSelfAttention(8, 2, attention=spy, max_len=6)
    plain = CausalSelfAttention(8, 2)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(ours(x), plain(x))
    assert torch.equal(seen[0], causal_mask(5))
    assert ours.last_weights.shape == (2, 2, 5, 5)
    ours(torch.randn(1, 9, 8))  # beyond max_len: built on the fly
    assert torch.equal(seen[1], causal_mask(9))


@pytest.mark.parametrize("attention", [None, scaled_dot_product_attention])
def test_causal_self_attention_with_cache_equals_full(attention):
    torch.manual_seed(0)
    ours = CausalSelfAttention(16, 4, attention=attention, max_len=8).double()
    x = torch.randn(2, 8, 16, dtype=torch.float64)
    full = ours(x)
    cache = KVCache()
    parts = [ours(x[:, :3], cache=cache), ours(x[:, 3:6], cache=cache)]  # prefill, then a chunk after a cache
    parts += [ours(x[:, t : t + 1], cache=cache) for t in range(6, 8)]  # then one token at a time
    torch.testing.assert_close(torch.cat(parts, dim=1), full)
    assert len(cache) == 8


def test_causal_self_attention_loads_separate_projections():
    """A MultiHeadAttention state dict (q_proj, k_proj, v_proj) loads into the fused qkv."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(12, 3)
    with torch.no_grad():
        for p in mha.parameters():
            p.normal_(0, 0.3)
    ours = CausalSelfAttention(12, 3)
    ours.load_state_dict(mha.state_dict())
    x = torch.randn(2, 6, 12)
    torch.testing.assert_close(ours(x), mha(x, mask=causal_mask(6)))
    with pytest.raises(RuntimeError, match="Missing key"):
        CausalSelfAttention(12, 3).load_state_dict({k: v for k, v in mha.state_dict().items() if "v_proj" not in k})


def test_causal_self_attention_is_causal_and_autocast_finite():
    torch.manual_seed(0)
    ours = CausalSelfAttention(16, 4).eval()
    x = torch.randn(2, 9, 16)
    x2 = x.clone()
    x2[:, 5:] += 4.0
    assert torch.equal(ours(x)[:, :5], ours(x2)[:, :5])
    assert not torch.allclose(ours(x)[:, 5:], ours(x2)[:, 5:])
    with torch.autocast("cpu", dtype=torch.float16):
        out = ours(x)
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="divisible"):
        CausalSelfAttention(10, 3)
