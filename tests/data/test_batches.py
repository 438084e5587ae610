"""PairBatch and collate_pairs: padding and lengths."""

import pytest
import torch

from genlab.data import PairBatch, collate_pairs


def test_collate_pads_to_the_longest_row_and_counts_real_tokens():
    items = [
        (torch.tensor([5, 6, 2]), torch.tensor([1, 7, 2])),
        (torch.tensor([5, 2]), torch.tensor([1, 7, 8, 9, 2])),
    ]
    b = collate_pairs(items, pad_id=0)
    assert isinstance(b, PairBatch)
    assert b.src.tolist() == [[5, 6, 2], [5, 2, 0]]
    assert b.tgt.tolist() == [[1, 7, 2, 0, 0], [1, 7, 8, 9, 2]]
    assert b.src_lengths.tolist() == [3, 2] and b.tgt_lengths.tolist() == [3, 5]
    assert all(t.dtype == torch.long for t in b)
    src, src_lengths, tgt, tgt_lengths = b  # unpacks in the documented order
    assert src is b.src and tgt_lengths is b.tgt_lengths


def test_collate_uses_the_given_pad_id():
    b = collate_pairs([(torch.tensor([4]), torch.tensor([4])), (torch.tensor([4, 4]), torch.tensor([4]))], pad_id=9)
    assert b.src[0, 1] == 9


def test_to_moves_every_field():
    b = collate_pairs([(torch.tensor([3]), torch.tensor([1, 2]))]).to("cpu")
    assert isinstance(b, PairBatch) and b.src.device.type == "cpu"


def test_empty_batch_is_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        collate_pairs([])
