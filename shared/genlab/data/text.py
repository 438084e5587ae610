"""CharTextDataModule: character-level language-model data (for RNN LMs and GPT).

The default corpus is the documentation text that ships with CPython
(``pydoc_data.topics``): about 465k characters over 103 symbols, offline.

Splits are cut by position: the first ``1 - val_fraction - test_fraction`` of the text is
train, then val, then test, so no character position belongs to two splits and no window
crosses a split boundary.

Batches are ``(x, y)``, both LongTensor (B, T) with T = block_size, and
``y[:, t] == x[:, t + 1]`` for t < T-1 (y is x shifted left by one; y's last column is the
character after the window). Two modes:

- ``"windows"``: training windows start at random positions, ``windows_per_epoch`` of
  them per epoch, redrawn each epoch from ``(seed, epoch)``. Val/test use consecutive
  non-overlapping windows covering the split, in order.
- ``"streams"``: each split is cut into B contiguous streams (row i of every batch reads
  stream i), and batch k continues exactly where batch k-1 stopped:
  ``x_k[i, 0] == y_{k-1}[i, -1]``. Batches come in order (never shuffled) so a recurrent
  model can carry (and detach) its hidden state between batches: truncated BPTT.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from genlab.data import _checks
from genlab.data.base import SplitDataModule
from genlab.data.errors import DataFormatError
from genlab.data.vocab import Vocab

__all__ = ["CharTextDataModule", "default_corpus"]

MODES = ("windows", "streams")


def default_corpus() -> str:
    """CPython's pydoc topic texts, concatenated in sorted key order (about 465k chars)."""
    from pydoc_data.topics import topics

    return "".join(topics[key] for key in sorted(topics))


class _Windows(Dataset):
    """Item ``start`` -> (x, y): x = data[start:start+T], y = data[start+1:start+T+1], LongTensor (T,)."""

    def __init__(self, data: torch.Tensor, block_size: int) -> None:
        self.data, self.block_size = data, block_size

    def __len__(self) -> int:  # number of valid start positions
        return len(self.data) - self.block_size

    def __getitem__(self, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        chunk = self.data[start : start + self.block_size + 1]
        return chunk[:-1], chunk[1:]


class _RandomStarts(Sampler[int]):
    """``num_samples`` random start positions in [0, n_starts), redrawn each epoch.

    The draw depends only on ``(seed, epoch)``. Lightning calls ``set_epoch`` before each
    epoch; without it (a plain loop) each new iteration moves to the next epoch.
    """

    def __init__(self, n_starts: int, num_samples: int, seed: int) -> None:
        self.n_starts, self.num_samples, self.seed = n_starts, num_samples, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        g = _checks.generator(self.seed, self.epoch)
        self.epoch += 1
        yield from torch.randint(self.n_starts, (self.num_samples,), generator=g).tolist()


class _Streams(Dataset):
    """Item k -> batch k of B parallel streams: (x, y), each LongTensor (B, T).

    Stream i is ``data[i*L : i*L + L + 1]`` with L = (len(data) - 1) // B; batch k reads
    columns [k*T, (k+1)*T) of every stream (inputs) and the next character (targets).
    A last partial chunk shorter than T is dropped.
    """

    def __init__(self, data: torch.Tensor, batch_size: int, block_size: int) -> None:
        self.block_size = block_size
        length = (len(data) - 1) // batch_size  # input chars per stream
        starts = torch.arange(batch_size) * length
        self.rows = torch.stack([data[s : s + length + 1] for s in starts.tolist()])  # (B, L+1)
        self.n_batches = length // block_size

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= k < self.n_batches:
            raise IndexError(k)
        a = k * self.block_size
        chunk = self.rows[:, a : a + self.block_size + 1]
        return chunk[:, :-1], chunk[:, 1:]


class CharTextDataModule(SplitDataModule):
    """Character-level text for language models.

    Args:
        path: a UTF-8 text file; None uses CPython's pydoc topics (offline default).
        block_size: T, characters per row (>= 1).
        batch_size: B, rows per batch; in "streams" mode also the number of streams.
        mode: "windows" (random training windows) or "streams" (contiguous, for truncated BPTT).
        val_fraction, test_fraction: shares of the text (by position) for val and test, in (0, 1).
        windows_per_epoch: training windows per epoch in "windows" mode; None means
            ``len(train text) // block_size`` (about one pass over the characters).
        seed: seeds the training windows (same seed -> identical batches).
        num_workers: DataLoader workers.

    Attributes (ready after ``__init__``): ``vocab`` (char Vocab of every symbol in the corpus,
    no specials), ``vocab_size``, ``block_size``. ``text(split)`` returns a split's raw text.
    Batches: ``(x, y)``, LongTensor (B, T) each.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        block_size: int = 64,
        batch_size: int = 12,
        mode: str = "windows",
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        windows_per_epoch: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.block_size = _checks.positive_int("block_size", block_size)
        self.batch_size = _checks.positive_int("batch_size", batch_size)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        self.mode = mode
        _checks.fractions(val_fraction=val_fraction, test_fraction=test_fraction)
        if windows_per_epoch is not None:
            _checks.positive_int("windows_per_epoch", windows_per_epoch)
        self.seed = _checks.seed_int(seed)
        self.num_workers = _checks.positive_int("num_workers", num_workers, minimum=0)
        self.save_hyperparameters()

        self.path = None if path is None else Path(path)
        self._text = default_corpus() if path is None else _checks.read_utf8(
            path, "text corpus", hint=", or pass path=None to use the built-in corpus (CPython's docs)"
        )
        self.vocab = Vocab(sorted(set(self._text)))
        self.vocab_size = len(self.vocab)

        n = len(self._text)
        a = int(n * (1.0 - val_fraction - test_fraction))
        b = int(n * (1.0 - test_fraction))
        self._bounds = {"train": (0, a), "val": (a, b), "test": (b, n)}
        self._check_split_sizes()
        train_chars = a
        self.windows_per_epoch = (
            max(1, train_chars // self.block_size) if windows_per_epoch is None else windows_per_epoch
        )
        self._data: dict[str, torch.Tensor] = {}

    def _check_split_sizes(self) -> None:
        if self.mode == "streams":
            need = self.batch_size * self.block_size + 1
            why = "streams mode needs batch_size * block_size + 1"
        else:
            need = self.block_size + 1
            why = "one window needs block_size + 1"
        for split, (a, b) in self._bounds.items():
            if b - a < need:
                where = "the default corpus" if self.path is None else repr(str(self.path))
                raise DataFormatError(
                    f"the {split} split of {where} has {b - a} characters but {why} = {need}. "
                    "Use a longer text, a larger split fraction, or a smaller block_size/batch_size."
                )

    def bounds(self, split: str) -> tuple[int, int]:
        """Character positions [start, end) of ``split`` in the full text."""
        return self._bounds[_checks.split_name(split)]

    def text(self, split: str) -> str:
        """The raw text of ``split`` ("train", "val" or "test")."""
        a, b = self.bounds(split)
        return self._text[a:b]

    def setup(self, stage: str | None = None) -> None:
        """Encode each split to a LongTensor (N_split,) of character ids."""
        for split in _checks.SPLITS:
            if split not in self._data:
                self._data[split] = self.vocab.encode(self.text(split))

    def _encoded(self, split: str) -> torch.Tensor:
        if split not in self._data:
            self.setup()
        return self._data[split]

    def _loader(self, split: str) -> DataLoader:
        data = self._encoded(split)
        common = {"num_workers": self.num_workers, "persistent_workers": self.num_workers > 0}
        if self.mode == "streams":
            # each item is already a whole (B, T) batch; order matters, so never shuffle
            return DataLoader(_Streams(data, self.batch_size, self.block_size), batch_size=None,
                              shuffle=False, **common)
        windows = _Windows(data, self.block_size)
        if split == "train":
            sampler: Sampler[int] | list[int] = _RandomStarts(len(windows), self.windows_per_epoch, self.seed)
        else:
            sampler = list(range(0, len(windows), self.block_size))
        return DataLoader(windows, batch_size=self.batch_size, sampler=sampler, **common)
