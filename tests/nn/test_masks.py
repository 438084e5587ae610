"""Masks: values against direct definitions, dtype/shape validation, fp16 safety."""
import pytest
import torch

from genlab.nn import (
    additive_mask,
    causal_mask,
    check_mask,
    combine_masks,
    fill_masked_scores,
    masked_softmax,
    padding_mask,
    scaled_dot_product_attention,
)


def test_causal_mask_matches_definition():
    T = 6
    m = causal_mask(T)
    assert m.dtype == torch.bool and m.shape == (T, T)
    for i in range(T):
        for j in range(T):
            assert bool(m[i, j]) == (j <= i)


def test_padding_mask_marks_real_tokens():
    lengths = torch.tensor([3, 1, 5])
    m = padding_mask(lengths, 5)
    assert m.dtype == torch.bool and m.shape == (3, 5)
    expected = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(m, expected)
    assert padding_mask(lengths).shape == (3, 5)  # T defaults to the longest


def test_combine_masks_is_logical_and_with_head_axis():
    causal = causal_mask(4)
    pad = padding_mask(torch.tensor([4, 2]), 4)
    m = combine_masks(causal, pad)
    assert m.shape == (2, 1, 4, 4) and m.dtype == torch.bool
    for b in range(2):
        for i in range(4):
            for j in range(4):
                assert bool(m[b, 0, i, j]) == (bool(causal[i, j]) and bool(pad[b, j]))
    assert combine_masks(None, pad).shape == (2, 1, 1, 4)
    assert combine_masks(causal, None).shape == (1, 1, 4, 4)


def test_combine_masks_rejects_mismatched_keys():
    with pytest.raises(ValueError, match="T_k"):
        combine_masks(causal_mask(4), torch.ones(2, 5, dtype=torch.bool))


@pytest.mark.parametrize("bad", [torch.ones(3, 3), torch.ones(3, 3, dtype=torch.long)])
def test_non_bool_mask_is_a_type_error_that_states_the_convention(bad):
    q = torch.randn(1, 3, 4)
    with pytest.raises(TypeError, match="bool.*True = may attend"):
        scaled_dot_product_attention(q, q, q, mask=bad)


def test_mask_shape_must_broadcast_to_scores():
    with pytest.raises(ValueError, match="does not broadcast"):
        check_mask(torch.ones(2, 5, dtype=torch.bool), (2, 4, 3, 4))
    check_mask(torch.ones(2, 1, 1, 4, dtype=torch.bool), (2, 4, 3, 4))  # fine


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_fill_uses_the_dtype_minimum_without_overflow(dtype):
    scores = torch.randn(2, 3, 3).to(dtype)
    out = fill_masked_scores(scores, causal_mask(3))
    assert out.dtype == dtype and torch.isfinite(out).all()
    assert (out[:, 0, 1:] == torch.finfo(dtype).min).all()
    add = additive_mask(causal_mask(3), dtype)
    assert add.dtype == dtype and add[0, 0] == 0 and add[0, 1] == torch.finfo(dtype).min


def test_masked_softmax_fully_masked_row_is_zero_with_finite_gradient():
    scores = torch.randn(2, 3, 4, requires_grad=True)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[1, 2] = False  # one row with no allowed key
    mask[0, 0, 1:] = False
    w = masked_softmax(scores, mask)
    assert torch.equal(w[1, 2], torch.zeros(4))
    assert torch.equal(w[0, 0], torch.tensor([1.0, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(w[0, 1:].sum(-1), torch.ones(2))
    (w * torch.randn_like(w)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert torch.equal(scores.grad[1, 2], torch.zeros(4))
