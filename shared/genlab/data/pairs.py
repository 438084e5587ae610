"""PairDataModule: the shared machinery of the seq2seq data modules (dates, parallel text).

A subclass provides ``src_vocab``/``tgt_vocab`` (with <pad>, <bos>, <eos> at 0, 1, 2),
a tokenizer for each side, and the raw ``(source, target)`` string pairs of each split.
This class encodes them, batches them as ``PairBatch`` and decodes model output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch.utils.data import DataLoader, Dataset

from genlab.data import _checks
from genlab.data.base import SplitDataModule
from genlab.data.batches import collate_pairs
from genlab.data.vocab import Vocab

__all__ = ["PairDataModule"]


class _EncodedPairs(Dataset):
    """Item i -> (src ids (S_i,), tgt ids (T_i,)), LongTensors, encoded once up front."""

    def __init__(self, items: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[i]


class PairDataModule(SplitDataModule):
    """Base class: string pairs -> padded ``PairBatch`` es.

    Encoding: src = source tokens + <eos>; tgt = <bos> + target tokens + <eos>.
    Subclasses set, in ``__init__``: ``src_vocab``, ``tgt_vocab``, ``batch_size``, ``seed``,
    ``num_workers``, and implement ``pairs(split)``, ``src_tokens(s)``, ``tgt_tokens(s)``;
    then call ``_init_sizes()``.
    """

    src_vocab: Vocab
    tgt_vocab: Vocab
    batch_size: int
    seed: int
    num_workers: int

    # -- to implement ----------------------------------------------------------------------
    def pairs(self, split: str) -> list[tuple[str, str]]:
        """The raw (source, target) strings of ``split``."""
        raise NotImplementedError

    def src_tokens(self, text: str) -> list[str]:
        """Tokens of a source string."""
        return self.src_vocab.tokenize(text)

    def tgt_tokens(self, text: str) -> list[str]:
        """Tokens of a target string."""
        return self.tgt_vocab.tokenize(text)

    # -- shared ----------------------------------------------------------------------------
    def _init_sizes(self, max_src_tokens: int, max_tgt_tokens: int) -> None:
        """Set the size attributes from the longest source/target (in tokens, no specials)."""
        self.src_vocab_size = len(self.src_vocab)
        self.tgt_vocab_size = len(self.tgt_vocab)
        self.pad_id = self.tgt_vocab.pad_id
        self.bos_id = self.tgt_vocab.bos_id
        self.eos_id = self.tgt_vocab.eos_id
        for name in ("pad_id", "bos_id", "eos_id"):
            if getattr(self.src_vocab, name) != getattr(self, name):
                raise RuntimeError(f"src_vocab and tgt_vocab disagree on {name}; build both with "
                                   "the same specials in the same order.")
        self.max_src_len = max_src_tokens + 1  # + <eos>
        self.max_tgt_len = max_tgt_tokens + 2  # <bos> + ... + <eos>
        self._datasets: dict[str, _EncodedPairs] = {}

    def encode_source(self, text: str) -> torch.Tensor:
        """LongTensor (S,): source tokens + <eos>."""
        return self.src_vocab.encode(self.src_tokens(text), eos=True)

    def encode_target(self, text: str) -> torch.Tensor:
        """LongTensor (T,): <bos> + target tokens + <eos>."""
        return self.tgt_vocab.encode(self.tgt_tokens(text), bos=True, eos=True)

    def _decode(self, vocab: Vocab, ids: torch.Tensor | Sequence) -> str | list[str]:
        t = torch.as_tensor(ids)
        if t.dim() == 2:
            return [self._decode(vocab, row) for row in t]
        if t.dim() != 1:
            raise ValueError(f"expected ids of shape (T,) or (B, T), got {tuple(t.shape)}.")
        values = t.tolist()
        if values and values[0] == self.bos_id:
            values = values[1:]
        if self.eos_id in values:
            values = values[: values.index(self.eos_id)]
        return vocab.decode(values, skip_specials=True)

    def decode_target(self, ids: torch.Tensor | Sequence[int]) -> str | list[str]:
        """Target ids (T,) -> string; (B, T) -> list of strings.

        A leading <bos> is skipped, decoding stops at the first <eos>, padding is dropped.
        """
        return self._decode(self.tgt_vocab, ids)

    def decode_source(self, ids: torch.Tensor | Sequence[int]) -> str | list[str]:
        """Source ids (S,) -> string; (B, S) -> list of strings (stops at <eos>)."""
        return self._decode(self.src_vocab, ids)

    def setup(self, stage: str | None = None) -> None:
        """Encode every split once."""
        for split in _checks.SPLITS:
            if split not in self._datasets:
                items = [(self.encode_source(s), self.encode_target(t)) for s, t in self.pairs(split)]
                self._datasets[split] = _EncodedPairs(items)

    def dataset(self, split: str) -> Dataset:
        """The encoded Dataset of ``split``: item -> (src (S,), tgt (T,)) LongTensors."""
        _checks.split_name(split)
        if split not in self._datasets:
            self.setup()
        return self._datasets[split]

    def _loader(self, split: str) -> DataLoader:
        """Batches of ``PairBatch``: shuffled (seeded) for "train", in a fixed order otherwise."""
        collate: Callable = partial(collate_pairs, pad_id=self.pad_id)
        return self.split_loader(self.dataset(split), split, collate_fn=collate)
