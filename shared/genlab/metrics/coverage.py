"""Mode coverage of 2-D GAN samples on a mixture of Gaussians (the ring of 8, the grid of 25).

The definitions of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018):

- a sample is **high quality** when it lies within ``threshold`` standard deviations
  (3 by default) of the centre of its nearest mode;
- a mode is **covered** when it is the nearest mode of at least ``min_count`` (1) high-quality
  samples;
- the **reverse KL** is ``KL(q || uniform)`` where ``q`` is the histogram of the high-quality
  samples over their nearest modes: 0 when every mode gets the same share, ``log k`` when all
  of them fall into one mode (and ``inf`` when no sample is of high quality).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

__all__ = ["Coverage", "nearest_mode", "mode_coverage"]


@dataclass(frozen=True)
class Coverage:
    """The coverage of one set of samples; ``counts[i]`` high-quality samples are nearest to mode i."""

    modes_covered: int
    high_quality: float
    reverse_kl: float
    counts: tuple[int, ...]
    n_samples: int

    @property
    def k(self) -> int:
        """The number of modes."""
        return len(self.counts)

    def as_dict(self) -> dict:
        """Plain data: ``modes_covered``, ``high_quality``, ``reverse_kl``, ``counts`` (list), ``n_samples``."""
        out = asdict(self)
        out["counts"] = list(self.counts)
        return out


def _points(x, name: str, dim: int | None = None) -> Tensor:
    if not isinstance(x, Tensor):
        x = torch.as_tensor(x)
    if x.dim() != 2 or (dim is not None and x.shape[1] != dim):
        want = f"(N, {dim})" if dim is not None else "(N, D)"
        raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}.")
    return x.detach().to("cpu", torch.float64)


def nearest_mode(samples: Tensor, centers: Tensor) -> tuple[Tensor, Tensor]:
    """For samples ``(N, D)`` and mode centres ``(k, D)``: (index int64 ``(N,)``, distance float64 ``(N,)``)."""
    c = _points(centers, "centers")
    x = _points(samples, "samples", c.shape[1])
    if c.shape[0] == 0:
        raise ValueError("centers is empty; pass at least one mode centre.")
    distance, index = torch.cdist(x, c).min(dim=1)
    return index, distance


def mode_coverage(samples: Tensor, centers: Tensor, std: float, threshold: float = 3.0,
                  min_count: int = 1) -> Coverage:
    """Modes covered, share of high-quality samples and reverse KL of ``samples (N, D)``.

    Args:
        samples: generated points ``(N, D)`` (any float dtype, any device).
        centers: the mixture's mode centres ``(k, D)``.
        std: the standard deviation of each mode.
        threshold: a sample is of high quality within ``threshold * std`` of its nearest mode.
        min_count: high-quality samples a mode needs to count as covered.
    """
    if not (isinstance(std, (int, float)) and std > 0 and math.isfinite(std)):
        raise ValueError(f"std must be a positive number, got {std!r}.")
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold!r}.")
    index, distance = nearest_mode(samples, centers)
    k = _points(centers, "centers").shape[0]
    n = index.numel()
    if n == 0:
        raise ValueError("samples is empty; pass at least one generated point.")
    finite = torch.isfinite(distance)
    good = finite & (distance <= threshold * std)
    counts = torch.bincount(index[good], minlength=k)
    total = int(counts.sum())
    if total == 0:
        reverse_kl = math.inf
    else:
        q = counts.double() / total
        q = q[q > 0]
        reverse_kl = float((q * (q * k).log()).sum().clamp(min=0.0))
    return Coverage(
        modes_covered=int((counts >= min_count).sum()),
        high_quality=total / n,
        reverse_kl=reverse_kl,
        counts=tuple(int(c) for c in counts),
        n_samples=n,
    )
