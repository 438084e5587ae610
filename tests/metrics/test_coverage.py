"""genlab.metrics.coverage against brute-force loops, torch.distributions and the chi law."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical, kl_divergence

from genlab.data import RingDataModule
from genlab.data.ring import ring_centers
from genlab.metrics.coverage import mode_coverage, nearest_mode

CENTERS = ring_centers(8, 2.0)
STD = 0.05


def _brute_force(samples, centers, std, threshold=3.0):
    counts = [0] * len(centers)
    good = 0
    for x in samples.tolist():
        d = [math.dist(x, c) for c in centers.tolist()]
        i = min(range(len(d)), key=d.__getitem__)
        if d[i] <= threshold * std:
            counts[i] += 1
            good += 1
    return counts, good / len(samples)


def test_samples_on_every_centre():
    cov = mode_coverage(CENTERS.repeat(10, 1), CENTERS, STD)
    assert cov.modes_covered == 8 and cov.high_quality == 1.0 and cov.reverse_kl == pytest.approx(0.0, abs=1e-12)
    assert cov.counts == (10,) * 8 and cov.k == 8 and cov.n_samples == 80


def test_all_samples_in_one_mode():
    samples = CENTERS[3] + 0.01 * torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    cov = mode_coverage(samples, CENTERS, STD)
    assert cov.modes_covered == 1 and cov.counts[3] == 50
    assert cov.reverse_kl == pytest.approx(math.log(8))


def test_nothing_of_high_quality():
    cov = mode_coverage(torch.zeros(20, 2), CENTERS, STD)  # the centre of the ring: 2 away from every mode
    assert cov.modes_covered == 0 and cov.high_quality == 0.0 and math.isinf(cov.reverse_kl)


def test_threshold_boundary():
    direction = torch.tensor([1.0, 0.0])
    inside, outside = CENTERS[0] + 2.9 * STD * direction, CENTERS[0] + 3.1 * STD * direction
    assert mode_coverage(inside[None], CENTERS, STD).high_quality == 1.0
    assert mode_coverage(outside[None], CENTERS, STD).high_quality == 0.0
    assert mode_coverage(outside[None], CENTERS, STD, threshold=3.2).modes_covered == 1


def test_random_samples_match_brute_force_and_torch_kl():
    g = torch.Generator().manual_seed(1)
    modes = torch.randint(0, 5, (400,), generator=g)  # only 5 of the 8 modes, unevenly
    samples = CENTERS[modes] + torch.randn(400, 2, generator=g) * STD * torch.rand(400, 1, generator=g) * 4
    cov = mode_coverage(samples, CENTERS, STD)
    counts, hq = _brute_force(samples, CENTERS, STD)
    assert list(cov.counts) == counts and cov.high_quality == pytest.approx(hq)
    assert cov.modes_covered == sum(c > 0 for c in counts)
    q = torch.tensor(counts, dtype=torch.float64)
    want = kl_divergence(Categorical(probs=q / q.sum()), Categorical(probs=torch.full((8,), 1 / 8, dtype=torch.float64)))
    assert cov.reverse_kl == pytest.approx(float(want), rel=1e-9)


def test_min_count():
    samples = torch.cat([CENTERS[:1].repeat(10, 1), CENTERS[1:2]])
    assert mode_coverage(samples, CENTERS, STD).modes_covered == 2
    assert mode_coverage(samples, CENTERS, STD, min_count=2).modes_covered == 1


def test_real_ring_data_has_the_chi_law_share():
    """Samples of the data itself: every mode, and P(|N(0, σ²I₂)| ≤ 3σ) = 1 - exp(-9/2) high quality."""
    data = RingDataModule(std=STD)
    samples, _ = data.sample(40000, torch.Generator().manual_seed(2))
    cov = mode_coverage(samples, data.centers, data.std)
    assert cov.modes_covered == 8
    assert cov.high_quality == pytest.approx(1 - math.exp(-4.5), abs=0.003)
    assert cov.reverse_kl < 1e-3


def test_nearest_mode_against_argmin():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(30, 2, generator=g) * 2
    index, distance = nearest_mode(x, CENTERS)
    d = ((x[:, None, :].double() - CENTERS[None].double()) ** 2).sum(-1).sqrt()
    assert torch.equal(index, d.argmin(1)) and torch.allclose(distance, d.min(1).values)


def test_non_finite_samples_are_never_high_quality():
    samples = torch.tensor([[float("nan"), 0.0], [float("inf"), 1.0], [2.0, 0.0]])
    cov = mode_coverage(samples, CENTERS, STD)
    assert cov.high_quality == pytest.approx(1 / 3) and cov.modes_covered == 1


def test_bad_input():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        mode_coverage(torch.zeros(5, 3), CENTERS, STD)
    with pytest.raises(ValueError, match="std"):
        mode_coverage(torch.zeros(5, 2), CENTERS, 0.0)
    with pytest.raises(ValueError, match="empty"):
        mode_coverage(torch.zeros(0, 2), CENTERS, STD)
