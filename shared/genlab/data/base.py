"""The part every genlab DataModule shares: three loaders that differ only by split."""
from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader, Dataset

from genlab.data import _checks

__all__ = ["SplitDataModule"]


class SplitDataModule(L.LightningDataModule):
    """A DataModule whose train/val/test loaders come from one ``_loader(split)``.

    Subclasses set ``batch_size``, ``num_workers`` and ``seed`` and implement ``_loader``,
    usually with ``split_loader``: shuffled (seeded) batches for "train", a fixed order
    otherwise.
    """

    batch_size: int
    num_workers: int
    seed: int

    def _loader(self, split: str) -> DataLoader:
        raise NotImplementedError(f"{type(self).__name__} must implement _loader(split)")

    def split_loader(self, dataset: Dataset, split: str, *seed_parts: int, **kwargs) -> DataLoader:
        """A DataLoader over ``dataset``: shuffled with a generator seeded by ``seed`` (and
        ``seed_parts``) for "train", in order for the other splits; ``kwargs`` go to DataLoader."""
        shuffle = split == "train"
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            generator=_checks.generator(self.seed, *seed_parts) if shuffle else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
