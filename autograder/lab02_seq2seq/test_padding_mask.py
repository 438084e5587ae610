"""Part 1: padding_mask(lengths, max_len) -> bool (B, max_len), True for real tokens."""
import pytest
import torch

from autograder import kit
from genlab.checks import lab02_bugs as bugs


def _call(fn, *args, context=None, **kwargs):
    """``kit.call`` with this lab's hint for a known error message."""
    try:
        return kit.call(fn, *args, context=context, **kwargs)
    except AssertionError as exc:
        raise AssertionError(f"{exc}{bugs.explain_error(str(exc), bugs.PADDING_ERRORS)}") from None


NAME = "padding_mask"


def _check(fn, lengths, max_len):
    lengths = torch.tensor(lengths)
    got = _call(fn, lengths, max_len, context=f"padding_mask(lengths of {len(lengths)} sequences, max_len={max_len})")
    kit.fail_if(bugs.name_padding_mask_bug(got, lengths, max_len),
                f"padding_mask for {len(lengths)} sequences, max_len={max_len}")
    return got


@pytest.mark.points(2)
def test_shape_and_dtype(submission):
    """A bool tensor (B, max_len)."""
    fn = submission.function(NAME)
    got = _call(fn, torch.tensor([4, 2, 3]), 4, context="padding_mask(lengths [4, 2, 3], max_len=4)")
    kit.expect_tensor(got, "padding_mask([4, 2, 3], 4)", shape=(3, 4),
                      hint="Rows are sequences, columns positions.")
    kit.expect_tensor(got, "padding_mask([4, 2, 3], 4)", dtype=torch.bool,
                      hint="A comparison (positions < lengths) already gives bool: do not convert it.")


@pytest.mark.points(4)
def test_ragged_lengths_including_one(submission):
    """True exactly at t < lengths[b], for ragged batches with a sequence of length 1."""
    fn = submission.function(NAME)
    for lengths in ([5, 1, 3, 2], [1], [7, 7, 1, 6, 2]):
        _check(fn, lengths, max(lengths))


@pytest.mark.points(2)
def test_padded_beyond_the_longest_sequence(submission):
    """max_len may exceed lengths.max(): the extra columns are all False."""
    fn = submission.function(NAME)
    got = _check(fn, [3, 1, 2], 6)
    if bool(got[:, 3:].any()):
        raise AssertionError("positions beyond every length must be False.")


@pytest.mark.points(1)
def test_lengths_not_modified_and_int32_accepted(submission):
    """The lengths tensor is left as it is; int32 lengths work as well as int64."""
    lengths = torch.tensor([2, 4, 1], dtype=torch.int32)
    data = submission.probe("recorded_inputs", fn=NAME, args=[lengths, 5])
    if data["error"]:
        raise AssertionError(f"padding_mask(int32 lengths [2, 4, 1], max_len=5) raised {data['error']}")
    kit.fail_if(bugs.name_padding_mask_bug(data["result"], lengths.long(), 5), "padding_mask with int32 lengths")
    if data["changed"]:
        raise AssertionError("padding_mask changed its `lengths` argument in place; compute a new tensor instead.")
