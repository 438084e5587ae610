"""Transformer blocks: parameter counts, masking properties, cross-attention wiring."""
import pytest
import torch

from genlab.nn import (
    MLP,
    DecoderBlock,
    EncoderBlock,
    GPTBlock,
    KVCache,
    causal_mask,
    combine_masks,
    padding_mask,
    scaled_dot_product_attention,
)


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_follow_the_formulas():
    for d in (8, 32, 48):
        assert _count(MLP(d)) == 8 * d * d + 5 * d
        block = EncoderBlock(d, 4)
        assert _count(block.attn) == 4 * d * d + 4 * d
        assert _count(block) == 12 * d * d + 13 * d
        assert _count(DecoderBlock(d, 4)) == 16 * d * d + 19 * d


def test_encoder_block_padding_invariance():
    torch.manual_seed(0)
    block = EncoderBlock(16, 4).eval()
    mask = combine_masks(None, padding_mask(torch.tensor([5, 2]), 5))
    x = torch.randn(2, 5, 16)
    x2 = x.clone()
    x2[1, 2:] += 3.0
    y, y2 = block(x, mask), block(x2, mask)
    assert torch.equal(y[1, :2], y2[1, :2]) and torch.equal(y[0], y2[0])


@pytest.mark.parametrize("attention", [None, scaled_dot_product_attention])
def test_gpt_block_is_causal_and_its_cache_matches(attention):
    torch.manual_seed(0)
    block = GPTBlock(16, 2, attention=attention).double().eval()
    x = torch.randn(1, 6, 16, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 4:] = 0.0
    assert torch.equal(block(x)[:, :4], block(x2)[:, :4])
    cache = KVCache()
    steps = [block(x[:, t : t + 1], cache=cache) for t in range(6)]
    torch.testing.assert_close(torch.cat(steps, 1), block(x))


def test_gpt_block_matches_an_encoder_block_with_a_causal_mask():
    """Same parameters as EncoderBlock (fused qkv = q, k, v stacked) and the same function."""
    torch.manual_seed(0)
    enc = EncoderBlock(16, 4).double().eval()
    with torch.no_grad():
        for p in enc.parameters():
            p.normal_(0, 0.3)
    gpt = GPTBlock(16, 4).double().eval()
    gpt.load_state_dict(enc.state_dict())  # q_proj/k_proj/v_proj load into qkv
    assert _count(gpt) == _count(enc) == 12 * 16 * 16 + 13 * 16
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    torch.testing.assert_close(gpt(x), enc(x, causal_mask(7)))
    pad = combine_masks(causal_mask(7), padding_mask(torch.tensor([7, 3]), 7))
    torch.testing.assert_close(gpt(x, mask=pad), enc(x, pad))


def test_decoder_block_reads_the_memory_through_cross_attention():
    torch.manual_seed(0)
    block = DecoderBlock(16, 4).eval()
    x, mem = torch.randn(2, 4, 16), torch.randn(2, 6, 16)
    mem_mask = combine_masks(None, padding_mask(torch.tensor([6, 3]), 6))
    y = block(x, mem, memory_mask=mem_mask)
    assert y.shape == (2, 4, 16)
    mem2 = mem.clone()
    mem2[1, 3:] = 5.0  # padding of row 1: invisible
    assert torch.equal(block(x, mem2, memory_mask=mem_mask), y)
    mem2[1, 0] = 5.0  # a real memory position: visible to every query
    changed = block(x, mem2, memory_mask=mem_mask)
    assert not torch.allclose(changed[1], y[1]) and torch.equal(changed[0], y[0])
    # causal self-attention: a later decoder token leaves earlier outputs alone
    x2 = x.clone()
    x2[:, 3] = 1.0
    assert torch.equal(block(x2, mem, memory_mask=mem_mask)[:, :3], y[:, :3])
    assert torch.equal(block(x, mem, self_mask=causal_mask(4), memory_mask=mem_mask), y)
