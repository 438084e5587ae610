"""Decoding: temperature, top-k, top-p and sampling, against brute force and torch.distributions."""
import pytest
import torch
from torch.distributions import Categorical

from genlab.decoding import apply_temperature, greedy, sample_next, top_k_filter, top_p_filter


def _logits(B=4, V=12, seed=0):
    return torch.randn(B, V, generator=torch.Generator().manual_seed(seed)) * 2


def test_temperature_to_zero_is_argmax():
    x = _logits()
    assert torch.equal(greedy(x), x.argmax(-1))
    probs = torch.softmax(apply_temperature(x, 1e-4), -1)
    torch.testing.assert_close(probs, torch.nn.functional.one_hot(x.argmax(-1), x.shape[-1]).float())
    zero = torch.softmax(apply_temperature(x, 0.0), -1)
    assert torch.equal(zero, torch.nn.functional.one_hot(x.argmax(-1), x.shape[-1]).float())
    g = torch.Generator().manual_seed(0)
    assert torch.equal(sample_next(x, temperature=0.0, generator=g), x.argmax(-1))


def test_temperature_reshapes_softmax():
    x = _logits(1)
    torch.testing.assert_close(torch.softmax(apply_temperature(x, 0.5), -1), torch.softmax(2 * x, -1))
    sharp = torch.softmax(apply_temperature(x, 0.5), -1).max()
    flat = torch.softmax(apply_temperature(x, 2.0), -1).max()
    assert sharp > torch.softmax(x, -1).max() > flat
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(x, -1.0)


@pytest.mark.parametrize("k", [1, 3, 12, 50])
def test_top_k_keeps_exactly_the_k_largest(k):
    x = _logits()
    out = top_k_filter(x, k)
    kept = torch.isfinite(out)
    assert (kept.sum(-1) == min(k, x.shape[-1])).all()
    top = x.topk(min(k, x.shape[-1]), -1).indices
    assert kept.gather(-1, top).all()
    assert torch.equal(out[kept], x[kept])
    with pytest.raises(ValueError, match="top_k"):
        top_k_filter(x, 0)


def _nucleus_oracle(row, p):
    """Brute force: the smallest prefix (by descending probability) with mass >= p."""
    probs = torch.softmax(row.double(), -1)
    order = probs.argsort(descending=True).tolist()
    kept, mass = set(), 0.0
    for i in order:
        kept.add(i)
        mass += probs[i].item()
        if mass >= p:
            break
    return kept


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9, 0.99, 1.0])
def test_top_p_keeps_the_smallest_nucleus(p):
    x = _logits(B=6, V=15, seed=3)
    out = top_p_filter(x, p)
    for b in range(x.shape[0]):
        kept = set(torch.isfinite(out[b]).nonzero().flatten().tolist())
        assert kept == _nucleus_oracle(x[b], p)
        assert x[b].argmax().item() in kept  # the top token always survives
    with pytest.raises(ValueError, match="top_p"):
        top_p_filter(x, 0.0)


def test_top_p_boundary_a_nucleus_reaching_p_exactly_is_not_extended():
    x = torch.zeros(1, 4)  # four tokens of probability exactly 0.25
    assert torch.isfinite(top_p_filter(x, 0.5)).sum() == 2
    assert torch.isfinite(top_p_filter(x, 0.25)).sum() == 1
    assert torch.isfinite(top_p_filter(x, 0.26)).sum() == 2


def test_sampling_is_reproducible_with_the_same_generator_seed():
    x = _logits(B=8, V=30)
    a = [sample_next(x, 1.2, 10, 0.9, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(a[0], a[1])
    g = torch.Generator().manual_seed(7)
    draws = torch.stack([sample_next(x, generator=g) for _ in range(5)])
    assert not (draws == draws[0]).all()  # the generator advances


@pytest.mark.parametrize("temperature", [0.7, 1.0, 1.8])
def test_empirical_frequencies_match_softmax_over_temperature(temperature):
    x = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])
    N = 40000
    g = torch.Generator().manual_seed(0)
    samples = sample_next(x.expand(N, -1), temperature=temperature, generator=g)
    freq = torch.bincount(samples, minlength=6).double() / N
    expected = Categorical(logits=x / temperature).probs.double()
    torch.testing.assert_close(freq, expected, atol=0.012, rtol=0)


def test_top_k_sampling_follows_the_renormalised_distribution():
    x = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])
    N = 40000
    samples = sample_next(x.expand(N, -1), top_k=3, generator=torch.Generator().manual_seed(1))
    freq = torch.bincount(samples, minlength=6).double() / N
    expected = torch.zeros(6, dtype=torch.float64)
    expected[:3] = Categorical(logits=x[:3]).probs.double()
    torch.testing.assert_close(freq, expected, atol=0.012, rtol=0)


def test_sample_next_checks_its_input_shape():
    with pytest.raises(ValueError, match=r"\(B, V\)"):
        sample_next(torch.randn(5))
