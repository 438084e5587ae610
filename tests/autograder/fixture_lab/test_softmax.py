"""Hidden tests for `softmax` (fixture lab). HIDDEN-CANARY-softmax: never shown to students."""
import pytest
import torch


def _inputs():
    g = torch.Generator().manual_seed(1234)
    return torch.randn(4, 7, generator=g) * 3


@pytest.mark.points(2)
def test_softmax_values(submission):
    softmax = submission.function("softmax")
    x = _inputs()
    out = softmax(x)
    assert isinstance(out, torch.Tensor), "softmax should return a tensor"
    assert out.shape == x.shape, f"softmax should keep the input's shape, got {tuple(out.shape)}"
    assert torch.allclose(out, torch.softmax(x, dim=-1), atol=1e-5), (
        "softmax values are wrong: expected exp(x_i) / sum_j exp(x_j) over the last dimension"
    )


@pytest.mark.points(1)
def test_softmax_large_scores(submission):
    softmax = submission.function("softmax")
    out = softmax(torch.tensor([[1000.0, 1000.0, -1000.0]]))
    assert torch.isfinite(out).all(), "softmax overflows for large scores: subtract the row maximum first"
    assert torch.allclose(out, torch.tensor([[0.5, 0.5, 0.0]]), atol=1e-6), "softmax of large scores is wrong"


@pytest.mark.points(1)
def test_softmax_under_autocast(submission):
    data = submission.probe("autocast", fn="softmax", args=(_inputs(),), dtype="bfloat16")
    assert data["finite"], "softmax gives inf or NaN under bfloat16 autocast"


@pytest.mark.gpu
@pytest.mark.points(1)
def test_softmax_on_gpu(submission):
    softmax = submission.function("softmax")
    x = _inputs().cuda()
    out = softmax(x)
    assert torch.allclose(out, torch.softmax(x, dim=-1).cpu(), atol=1e-5), "softmax is wrong on the GPU"
