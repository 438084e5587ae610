"""Position encodings against a direct float64 evaluation of the formula."""
import math

import pytest
import torch

from genlab.nn import LearnedPositionalEncoding, SinusoidalPositionalEncoding, sinusoidal_positions


@pytest.mark.parametrize("T,d", [(50, 16), (7, 5), (1, 2), (128, 64)])
def test_sinusoidal_positions_match_the_formula(T, d):
    pe = sinusoidal_positions(T, d)
    assert pe.shape == (T, d) and pe.dtype == torch.float32
    expected = torch.empty(T, d, dtype=torch.float64)
    for p in range(T):
        for col in range(d):
            i2 = col - col % 2  # 2i for both the sin and the cos column of pair i
            angle = p / 10000 ** (i2 / d)
            expected[p, col] = math.sin(angle) if col % 2 == 0 else math.cos(angle)
    torch.testing.assert_close(pe.double(), expected, atol=1e-6, rtol=0)


def test_sinusoidal_module_adds_with_offset_and_beyond_its_table():
    enc = SinusoidalPositionalEncoding(8, max_len=10)
    x = torch.zeros(2, 4, 8)
    torch.testing.assert_close(enc(x), sinusoidal_positions(4, 8).expand(2, 4, 8))
    torch.testing.assert_close(enc(x, offset=3)[0], sinusoidal_positions(7, 8)[3:])
    torch.testing.assert_close(enc(torch.zeros(1, 15, 8))[0], sinusoidal_positions(15, 8))
    assert sum(p.numel() for p in enc.parameters()) == 0


def test_learned_positions_are_bounded_by_the_context_size():
    enc = LearnedPositionalEncoding(8, max_len=6)
    assert sum(p.numel() for p in enc.parameters()) == 6 * 8
    x = torch.zeros(1, 6, 8)
    assert torch.equal(enc(x)[0], enc.weight)
    with pytest.raises(ValueError, match="context size"):
        enc(torch.zeros(1, 7, 8))
    with pytest.raises(ValueError, match="context size"):
        enc(torch.zeros(1, 2, 8), offset=5)
