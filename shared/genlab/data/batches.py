"""PairBatch: a padded batch of (source, target) token sequences, and the collate that builds it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch.nn.utils.rnn import pad_sequence

__all__ = ["PairBatch", "collate_pairs"]


class PairBatch(NamedTuple):
    """A batch of sequence pairs for seq2seq models.

    Fields:
        src: LongTensor (B, S), source ids (ending in <eos>), right-padded with pad_id.
        src_lengths: LongTensor (B,), number of real (non-pad) tokens in each src row.
        tgt: LongTensor (B, T), target ids (<bos> ... <eos>), right-padded with pad_id.
        tgt_lengths: LongTensor (B,), number of real tokens in each tgt row.
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt: torch.Tensor
    tgt_lengths: torch.Tensor

    def to(self, device: torch.device | str) -> PairBatch:
        """The same batch with every tensor on ``device``."""
        return PairBatch(*(t.to(device) for t in self))


def collate_pairs(items: Sequence[tuple[torch.Tensor, torch.Tensor]], pad_id: int = 0) -> PairBatch:
    """Pad a list of (src (S_i,), tgt (T_i,)) LongTensors into a PairBatch.

    Rows are padded to the longest row of this batch (not a global maximum).
    """
    if len(items) == 0:
        raise ValueError("collate_pairs got an empty list of items; a batch needs at least one pair.")
    srcs = [s for s, _ in items]
    tgts = [t for _, t in items]
    return PairBatch(
        src=pad_sequence(srcs, batch_first=True, padding_value=pad_id),
        src_lengths=torch.tensor([len(s) for s in srcs], dtype=torch.long),
        tgt=pad_sequence(tgts, batch_first=True, padding_value=pad_id),
        tgt_lengths=torch.tensor([len(t) for t in tgts], dtype=torch.long),
    )
