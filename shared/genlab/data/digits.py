"""DigitsDataModule: small grayscale digit images for the VAE and GAN labs.

- ``source="digits"`` (default, offline): scikit-learn's bundled 8x8 digits (1797 images,
  pixel values 0..16 scaled to [0, 1]), split into train/val/test with a seeded shuffle.
- ``source="mnist"``: torchvision's MNIST (28x28) read from ``root``. It is downloaded only
  with ``download=True``; otherwise missing files raise ``DataUnavailableError`` saying how
  to get them. Val comes out of MNIST's training set; test is MNIST's own test set.

Batches: ``(x, y)`` with x float32 (B, 1, H, W) in [0, 1] and y int64 (B,) class labels 0..9.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from genlab.data import _checks
from genlab.data.base import SplitDataModule
from genlab.data.errors import DataUnavailableError

__all__ = ["DigitsDataModule", "DEFAULT_MNIST_ROOT"]

DEFAULT_MNIST_ROOT = Path("~/.cache/genlab").expanduser()
SOURCES = {"digits": (1, 8, 8), "mnist": (1, 28, 28)}


class _Images(Dataset):
    """Item i -> (x float32 (1, H, W) in [0, 1], y int64 ()).

    ``images`` is float32 (N, 1, H, W) already in [0, 1], or uint8 (N, H, W) scaled by 1/255
    on access (keeps MNIST at a quarter of the memory).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[i]
        if x.dtype == torch.uint8:
            x = x.unsqueeze(0).float().div_(255.0)
        return x, self.labels[i]


def _load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's 8x8 digits: x float32 (1797, 1, 8, 8) in [0, 1], y int64 (1797,)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    return x, torch.from_numpy(bunch.target.astype(np.int64))


def _mnist(root: Path, train: bool, download: bool):
    """torchvision MNIST, with its failures turned into DataUnavailableError."""
    from torchvision.datasets import MNIST

    try:
        return MNIST(str(root), train=train, download=download)
    except RuntimeError as err:  # torchvision: "Dataset not found. You can use download=True..."
        if download:
            raise DataUnavailableError(
                f"could not download MNIST into {str(root)!r} ({err}). Check the network "
                f"connection, or copy the four MNIST .gz files into {str(root / 'MNIST' / 'raw')!r} "
                "and use download=False."
            ) from None
        raise DataUnavailableError(
            f"MNIST was not found under {str(root)!r}. Pass download=True to fetch it (about "
            f"12 MB, needs the network once), or put the MNIST files (train-images-idx3-ubyte, "
            f"...) in {str(root / 'MNIST' / 'raw')!r}. Or use source='digits', which needs no download."
        ) from None
    except OSError as err:
        raise DataUnavailableError(
            f"could not get MNIST into {str(root)!r}: {err}. Download it where there is a network "
            f"and copy the files into {str(root / 'MNIST' / 'raw')!r}, or use source='digits'."
        ) from None


class DigitsDataModule(SplitDataModule):
    """Digit images and labels.

    Args:
        source: "digits" (sklearn 8x8, offline) or "mnist" (torchvision 28x28).
        root: folder for MNIST (default ``~/.cache/genlab``); unused for "digits".
        download: allow downloading MNIST into ``root`` (never done unless True).
        batch_size: images per batch.
        val_fraction: share of the training images held out for validation, in (0, 1).
        test_fraction: share held out for test, "digits" only (MNIST has its own test set).
        seed: seeds the split and the training shuffle.
        num_workers: DataLoader workers.

    Attributes (ready after ``__init__``): ``image_shape`` (C, H, W) = (1, 8, 8) or (1, 28, 28),
    ``num_classes`` = 10. Batches: ``(x, y)``, x float32 (B, 1, H, W) in [0, 1], y int64 (B,).
    """

    def __init__(
        self,
        source: str = "digits",
        root: str | Path | None = None,
        download: bool = False,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"source must be one of {tuple(SOURCES)}, got {source!r}.")
        self.source = source
        self.root = DEFAULT_MNIST_ROOT if root is None else Path(root).expanduser()
        self.download = bool(download)
        self.batch_size = _checks.positive_int("batch_size", batch_size)
        if source == "digits":
            _checks.fractions(val_fraction=val_fraction, test_fraction=test_fraction)
        else:
            _checks.fractions(val_fraction=val_fraction)
        self.val_fraction, self.test_fraction = float(val_fraction), float(test_fraction)
        self.seed = _checks.seed_int(seed)
        self.num_workers = _checks.positive_int("num_workers", num_workers, minimum=0)
        self.save_hyperparameters()
        self.image_shape: tuple[int, int, int] = SOURCES[source]
        self.num_classes = 10
        self._datasets: dict[str, _Images] = {}

    def prepare_data(self) -> None:
        """Download MNIST when ``source="mnist"`` and ``download=True`` (Lightning calls this once)."""
        if self.source == "mnist" and self.download:
            for train in (True, False):
                _mnist(self.root, train, download=True)

    def setup(self, stage: str | None = None) -> None:
        """Load the images and split them (seeded)."""
        if self._datasets:
            return
        if self.source == "digits":
            x, y = _load_digits()
            fractions = {"val": self.val_fraction, "test": self.test_fraction}
        else:
            train = _mnist(self.root, True, self.download)
            test = _mnist(self.root, False, self.download)
            x, y = train.data, train.targets.long()
            fractions = {"val": self.val_fraction}
            self._datasets["test"] = _Images(test.data, test.targets.long())
        order = torch.from_numpy(np.random.default_rng(self.seed).permutation(len(y)))
        start = 0
        for split, frac in fractions.items():
            n = max(1, round(len(y) * frac))
            idx = order[start : start + n].sort().values
            self._datasets[split] = _Images(x[idx], y[idx])
            start += n
        idx = order[start:].sort().values
        self._datasets["train"] = _Images(x[idx], y[idx])

    def dataset(self, split: str) -> Dataset:
        """The Dataset of ``split``: item -> (x float32 (1, H, W), y int64 ())."""
        _checks.split_name(split)
        self.setup()
        return self._datasets[split]

    def _loader(self, split: str) -> DataLoader:
        return self.split_loader(self.dataset(split), split)
