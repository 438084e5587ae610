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
    lengths = torch.as_tensor(lengths)
    kind = "" if lengths.dtype == torch.long else f" ({str(lengths.dtype).replace('torch.', '')} lengths)"
    got = _call(fn, lengths, max_len,
                context=f"padding_mask(lengths of {len(lengths)} sequences, max_len={max_len}){kind}")
    kit.fail_if(bugs.name_padding_mask_bug(got, lengths.long(), max_len),
                f"padding_mask for {len(lengths)} sequences, max_len={max_len}{kind}")
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


@pytest.mark.points(3)
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
def test_int32_lengths_accepted(submission):
    """int32 lengths work as well as int64."""
    _check(submission.function(NAME), torch.tensor([2, 4, 1], dtype=torch.int32), 5)


@pytest.mark.points(1)
def test_lengths_left_alone_and_no_state(submission):
    """The lengths tensor is left as it is (in the worker, on the very tensor passed), and the same
    lengths give the same mask after a call on other ones."""
    kit.expect_contract(submission, NAME, (torch.tensor([3, 1, 4, 2]), 6), NAME, names=("lengths", "max_len"),
                        check_grads=False)
