"""RingDataModule: k distinct centres on the circle; samples cluster around them."""

import math

import pytest
import torch

from genlab.data import RingDataModule


@pytest.mark.parametrize("k", [8, 5, 1])
def test_centers_are_k_distinct_points_on_the_circle(k):
    dm = RingDataModule(k=k, radius=2.0)
    c = dm.centers
    assert c.shape == (k, 2) and c.dtype == torch.float32
    assert torch.allclose(c.norm(dim=1), torch.full((k,), 2.0))
    if k > 1:
        d = torch.cdist(c, c) + torch.eye(k) * 1e9
        # neighbours are one chord apart: a duplicated endpoint would give distance 0
        assert torch.allclose(d.min(dim=1).values, torch.full((k,), 2 * 2.0 * math.sin(math.pi / k)), atol=1e-5)
    angles = torch.atan2(c[:, 1].double(), c[:, 0].double()) % (2 * math.pi)
    assert torch.allclose(angles.sort().values, 2 * math.pi * torch.arange(k, dtype=torch.float64) / k, atol=1e-6)


def test_samples_cluster_around_all_centres():
    dm = RingDataModule(k=8, radius=2.0, std=0.05, n_samples=4000, batch_size=500)
    x = torch.cat(list(dm.train_dataloader()))
    assert x.shape == (4000, 2) and x.dtype == torch.float32
    dist = torch.cdist(x, dm.centers)
    nearest = dist.argmin(dim=1)
    assert dist.min(dim=1).values.max() < 6 * dm.std
    counts = torch.bincount(nearest, minlength=8)
    assert counts.min() > 0.7 * 500 and counts.max() < 1.3 * 500  # every mode, about equally
    spread = (x - dm.centers[nearest]).std(dim=0)
    assert torch.allclose(spread, torch.full((2,), 0.05), rtol=0.1)


def test_batches_and_determinism():
    kw = dict(n_samples=300, n_val=50, batch_size=64)
    a, b, c = RingDataModule(seed=0, **kw), RingDataModule(seed=0, **kw), RingDataModule(seed=1, **kw)
    xa, xb, xc = (next(iter(d.train_dataloader())) for d in (a, b, c))
    assert xa.shape == (64, 2) and xa.dtype == torch.float32
    assert torch.equal(xa, xb) and not torch.equal(xa, xc)
    assert sum(len(v) for v in a.val_dataloader()) == 50
    assert a.data_dim == 2 and a.std == 0.05


def test_sample_takes_a_generator():
    dm = RingDataModule(k=4)
    x1, m1 = dm.sample(100, torch.Generator().manual_seed(7))
    x2, m2 = dm.sample(100, torch.Generator().manual_seed(7))
    assert torch.equal(x1, x2) and torch.equal(m1, m2) and m1.dtype == torch.long
    assert ((x1 - dm.centers[m1]).norm(dim=1) < 6 * dm.std).all()


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [({"k": 0}, "k must"), ({"radius": -1.0}, "radius"), ({"std": 0.0}, "std"),
     ({"n_samples": 0}, "n_samples"), ({"std": float("nan")}, "std")],
)
def test_bad_arguments_are_rejected(kwargs, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        RingDataModule(**kwargs)
