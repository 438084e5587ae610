"""RingDataModule: a mixture of k 2-D Gaussians on a circle, the classic GAN toy problem.

Mode collapse is easy to see on it: a generator that covers only some of the k modes
leaves whole clusters empty.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader, Dataset

from genlab.data import _checks
from genlab.data.base import SplitDataModule
from genlab.data.errors import DataError

__all__ = ["RingDataModule", "ring_centers"]


def ring_centers(k: int, radius: float) -> torch.Tensor:
    """(k, 2) float32 centres at angles 2*pi*i/k, i = 0..k-1 (k distinct points)."""
    angles = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k  # no duplicated endpoint
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


class _Points(Dataset):
    """Item i -> x float32 (2,)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


class RingDataModule(SplitDataModule):
    """Points from k isotropic Gaussians (std ``std``) centred on a circle of ``radius``.

    Args:
        k: number of modes (>= 1).
        radius: circle radius (> 0).
        std: standard deviation of each Gaussian (> 0).
        n_samples: training points per epoch (a fixed set, drawn once).
        n_val: validation points.
        batch_size: points per batch.
        seed: seeds the points and the training shuffle.
        num_workers: DataLoader workers.

    Attributes (ready after ``__init__``): ``centers`` float32 (k, 2), ``std``, ``k``,
    ``radius``, ``data_dim`` = 2. Batches: x float32 (B, 2) (no labels).
    """

    def __init__(
        self,
        k: int = 8,
        radius: float = 2.0,
        std: float = 0.05,
        n_samples: int = 10000,
        n_val: int = 1000,
        batch_size: int = 256,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.k = _checks.positive_int("k", k)
        self.radius = _checks.positive_float("radius", radius)
        self.std = _checks.positive_float("std", std)
        self.n_samples = _checks.positive_int("n_samples", n_samples)
        self.n_val = _checks.positive_int("n_val", n_val)
        self.batch_size = _checks.positive_int("batch_size", batch_size)
        self.seed = _checks.seed_int(seed)
        self.num_workers = _checks.positive_int("num_workers", num_workers, minimum=0)
        self.save_hyperparameters()
        self.centers = ring_centers(self.k, self.radius)
        self.data_dim = 2
        self._datasets: dict[str, _Points] = {}

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n fresh points: (x float32 (n, 2), mode index int64 (n,))."""
        _checks.positive_int("n", n)
        modes = torch.randint(self.k, (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator)
        return self.centers[modes] + self.std * noise, modes

    def setup(self, stage: str | None = None) -> None:
        """Draw the training and validation points (seeded)."""
        if not self._datasets:
            g = _checks.generator(self.seed)
            self._datasets["train"] = _Points(self.sample(self.n_samples, g)[0])
            self._datasets["val"] = _Points(self.sample(self.n_val, g)[0])

    def _loader(self, split: str) -> DataLoader:
        self.setup()
        if split not in self._datasets:
            raise DataError(f"the ring has no {split!r} split: it has 'train' and 'val' (fresh samples are "
                            "unlimited: use sample(n, generator) for more).")
        return self.split_loader(self._datasets[split], split, 1)
