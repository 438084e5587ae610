"""Additive, dot-product and bottleneck attention against explicit formulas, torch and properties."""
import math

import pytest
import torch
import torch.nn.functional as F

from genlab.nn.additive import (
    AdditiveAttention,
    BottleneckContext,
    DotProductAttention,
    additive_attention,
    make_attention,
)
from genlab.nn.masks import padding_mask


def _inputs(seed=0, B=3, S=6, d_q=5, d_k=4, d_v=4, lengths=(6, 3, 1), dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    query = torch.randn(B, d_q, generator=g, dtype=dtype)
    keys = torch.randn(B, S, d_k, generator=g, dtype=dtype)
    values = keys if d_v == d_k else torch.randn(B, S, d_v, generator=g, dtype=dtype)
    return query, keys, values, padding_mask(torch.tensor(lengths), S)


def _loop_oracle(query, keys, values, lengths, W, U, v):
    """e_j = vᵀ tanh(W s + U h_j) and the softmax over the real positions, one number at a time."""
    B, S, _ = keys.shape
    context = torch.zeros(B, values.shape[-1], dtype=torch.float64)
    weights = torch.zeros(B, S, dtype=torch.float64)
    for b in range(B):
        energies = []
        for j in range(int(lengths[b])):
            hidden = [math.tanh(sum(W[a, i] * query[b, i] for i in range(W.shape[1]))
                                + sum(U[a, i] * keys[b, j, i] for i in range(U.shape[1]))) for a in range(W.shape[0])]
            energies.append(sum(v[a] * hidden[a] for a in range(len(hidden))))
        top = max(energies)
        exps = [math.exp(e - top) for e in energies]
        for j, e in enumerate(exps):
            weights[b, j] = e / sum(exps)
            context[b] += weights[b, j] * values[b, j].double()
    return context, weights


def test_additive_attention_matches_the_equation_written_out():
    query, keys, values, mask = _inputs()
    g = torch.Generator().manual_seed(1)
    W, U, v = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(7, 4, generator=g,
              dtype=torch.float64), torch.randn(7, generator=g, dtype=torch.float64)
    context, weights = additive_attention(query, keys, values, mask, W, U, v)
    want_c, want_w = _loop_oracle(query, keys, values, (6, 3, 1), W, U, v)
    torch.testing.assert_close(weights, want_w)
    torch.testing.assert_close(context, want_c)
    assert weights.shape == (3, 6) and context.shape == (3, 4)


def test_module_equals_function_with_its_weights_and_has_no_biases():
    torch.manual_seed(0)
    attn = AdditiveAttention(5, 4, 7).double()
    assert attn.W.bias is None and attn.U.bias is None and attn.v.bias is None
    assert attn.W.weight.shape == (7, 5) and attn.U.weight.shape == (7, 4) and attn.v.weight.shape == (1, 7)
    query, keys, values, mask = _inputs()
    got = attn(query, keys, values, mask)
    want = additive_attention(query, keys, values, mask, attn.W.weight, attn.U.weight, attn.v.weight[0])
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1], want[1])
    projected = attn.project_keys(keys)
    again = attn.attend(query, projected, values, mask)
    torch.testing.assert_close(again[0], got[0])


@pytest.mark.parametrize("kind", ["additive", "dot"])
def test_weights_sum_to_one_over_real_positions_and_are_zero_on_padding(kind):
    torch.manual_seed(0)
    attn = make_attention(kind, 5, 4, 8).double()
    query, keys, values, mask = _inputs()
    _, weights = attn(query, keys, values, mask)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, dtype=torch.float64))
    assert bool((weights[~mask] == 0).all())
    assert bool((weights >= 0).all())


@pytest.mark.parametrize("kind", ["additive", "dot", "none"])
def test_padding_invariance(kind):
    """Whatever sits at padded positions (and how much padding) changes nothing."""
    torch.manual_seed(0)
    attn = make_attention(kind, 5, 4, 8).double()
    query, keys, values, mask = _inputs()
    context, weights = attn(query, keys, values, mask)
    keys2, values2 = keys.clone(), values.clone()
    keys2[~mask] = 1e3
    values2[~mask] = -1e4
    extra = torch.zeros(3, 4, 4, dtype=torch.float64)  # four more pads
    keys2, values2 = torch.cat([keys2, extra + 7], 1), torch.cat([values2, extra - 7], 1)
    mask2 = padding_mask(torch.tensor([6, 3, 1]), 10)
    context2, weights2 = attn(query, keys2, values2, mask2)
    torch.testing.assert_close(context2, context)
    if weights is not None:
        torch.testing.assert_close(weights2[:, :6], weights)
        assert bool((weights2[:, 6:] == 0).all())


def test_dot_attention_matches_torch_sdpa():
    torch.manual_seed(0)
    attn = DotProductAttention(5, 4).double()
    query, keys, values, mask = _inputs(d_v=3)
    context, weights = attn(query, keys, values, mask)
    q = attn.W(query).unsqueeze(1)  # (B, 1, d_k)
    want = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask.unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(context, want)


def test_fully_masked_row_gives_zero_weights_and_context_not_nan():
    attn = AdditiveAttention(5, 4, 8).double()
    query, keys, values, _ = _inputs()
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[1] = False
    context, weights = attn(query, keys, values, mask)
    assert torch.isfinite(context).all() and torch.isfinite(weights).all()
    assert bool((weights[1] == 0).all()) and bool((context[1] == 0).all())


def test_float16_is_finite_and_close_to_float32():
    torch.manual_seed(0)
    attn = AdditiveAttention(5, 4, 8)
    query, keys, values, mask = _inputs(dtype=torch.float32)
    want_c, want_w = attn(query, keys, values, mask)
    half = AdditiveAttention(5, 4, 8)
    half.load_state_dict(attn.state_dict())
    half = half.half()
    context, weights = half(query.half(), keys.half(), values.half(), mask)
    assert context.dtype == torch.float16 and weights.dtype == torch.float16
    assert torch.isfinite(context).all() and torch.isfinite(weights).all()
    assert bool((weights[~mask] == 0).all())
    torch.testing.assert_close(context.float(), want_c, atol=5e-3, rtol=1e-2)
    torch.testing.assert_close(weights.float(), want_w, atol=5e-3, rtol=1e-2)


def test_gradients_reach_W_U_and_v_and_the_inputs():
    torch.manual_seed(0)
    attn = AdditiveAttention(5, 4, 8).double()
    query, keys, values, mask = _inputs()
    query.requires_grad_(True)
    keys = keys.clone().requires_grad_(True)
    context, _ = attn(query, keys, keys, mask)
    context.square().sum().backward()
    for name in ("W", "U", "v"):
        grad = getattr(attn, name).weight.grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert query.grad.abs().sum() > 0
    assert bool((keys.grad[~mask] == 0).all())  # padding receives no gradient


def test_bottleneck_context_is_the_encoder_summary():
    torch.manual_seed(0)
    gru = torch.nn.GRU(3, 4, batch_first=True, bidirectional=True).double()
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    lengths = torch.tensor([6, 3, 1])
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, h_n = gru(packed)
    memory, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=6)
    context, weights = BottleneckContext(8)(torch.zeros(3, 5, dtype=torch.float64), memory, memory,
                                            padding_mask(lengths, 6))
    assert weights is None
    torch.testing.assert_close(context, torch.cat([h_n[0], h_n[1]], dim=-1))


def test_bad_inputs_get_clear_errors():
    attn = AdditiveAttention(5, 4, 8)
    query, keys, values, mask = _inputs(dtype=torch.float32)
    with pytest.raises(TypeError, match="torch.bool"):
        attn(query, keys, values, mask.long())
    with pytest.raises(ValueError, match=r"\(B, S\)"):
        attn(query, keys, values, mask[:, :3])
    with pytest.raises(ValueError, match=r"query must have shape \(B, d_q\)"):
        attn(query[0], keys, values, mask)
    with pytest.raises(ValueError, match="one of"):
        make_attention("bahdanau", 5, 4, 8)
    with pytest.raises(ValueError, match="positive"):
        AdditiveAttention(5, 4, 0)
