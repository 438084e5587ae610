"""Part 1: stream_batches(ids, batch_size, seq_len) -> (x, y) windows of B contiguous streams."""
import random

import pytest
import torch

from autograder import kit
from genlab.checks import lab01_bugs as bugs

NAME = "stream_batches"


def _windows(submission, ids, B, T):
    """The student's windows as a list (read to the end in the worker)."""
    submission.function(NAME)  # a clear "not defined" message first
    data = kit.call(submission.probe, "lab01_streams", ids=ids, batch_size=B, seq_len=T,
                    context=f"{NAME}(ids of {ids.numel()} tokens, batch_size={B}, seq_len={T})",
                    hints={"RuntimeError": bugs.STREAM_SHAPE_HINT})
    return data["windows"]


def _positional(N, offset=500):
    return offset + torch.arange(N)  # each id names its position in the corpus


def _pairs(windows, what):
    kit.fail_if(None if isinstance(windows, list) else f"{NAME} should yield (x, y) pairs.", what)
    out = []
    for k, pair in enumerate(windows):
        x, y = kit.expect_tuple(pair, 2, f"window {k}", ("x", "y"))
        kit.expect_tensor(x, f"x of window {k}")
        kit.expect_tensor(y, f"y of window {k}")
        out.append((x, y))
    return out


@pytest.mark.points(1)
def test_windows_have_the_documented_shape_and_dtype(submission):
    """B rows per window, T columns, torch.long, as many windows as the streams hold."""
    for N, B, T in ((161, 4, 8), (73, 2, 12), (50, 7, 7)):
        ids = _positional(N)
        windows = _windows(submission, ids, B, T)
        pairs = _pairs(windows, f"N={N}, B={B}, T={T}")
        L = (N - 1) // B
        for k, (x, y) in enumerate(pairs):
            if x.dtype != torch.long or y.dtype != torch.long:
                raise AssertionError(f"x and y must be torch.long token ids, got {x.dtype} and {y.dtype}.")
            if x.dim() != 2 or x.shape[0] != B or y.shape != x.shape:
                raise AssertionError(f"window {k} should be two (B, T) tensors with B = {B} rows, got x "
                                     f"{tuple(x.shape)} and y {tuple(y.shape)}.")
        full = sum(1 for x, _ in pairs if x.shape[1] == T)
        if full != L // T:
            raise AssertionError(f"with N={N}, B={B}, T={T} each stream has L = (N - 1) // B = {L} inputs, so "
                                 f"{L // T} full windows of {T} columns; got {full}.")


@pytest.mark.points(2)
def test_targets_are_the_inputs_shifted_by_one(submission):
    """y[:, t] is the token right after x[:, t] (no missing shift, no double shift)."""
    for N, B, T in ((97, 3, 8), (64, 1, 9)):
        ids = _positional(N)
        pairs = _pairs(_windows(submission, ids, B, T), "targets")
        for x, y in pairs:
            if x.shape == y.shape and not torch.equal(y, x + 1):
                kit.fail_if(bugs.name_stream_bug(pairs, ids, B, T) or
                            "y[:, t] must be the token that follows x[:, t] in the corpus.", "the targets")


@pytest.mark.points(2)
def test_rows_are_contiguous_streams(submission):
    """Row i reads one contiguous stretch: positions [i*L, (i+1)*L) with L = (N - 1) // B."""
    for N, B, T in ((121, 4, 6), (200, 8, 5), (31, 5, 3)):
        ids = _positional(N, offset=7)
        pairs = _pairs(_windows(submission, ids, B, T), "streams")
        L = (N - 1) // B
        if not pairs:
            raise AssertionError(f"{NAME} yielded no windows for N={N}, B={B}, T={T}.")
        x0 = pairs[0][0]
        want = torch.arange(B)[:, None] * L + torch.arange(min(T, L))[None, :] + 7
        if x0.shape != want.shape or not torch.equal(x0, want):
            kit.fail_if(bugs.name_stream_bug(pairs, ids, B, T) or
                        f"row i of the first window should read positions i*L ... i*L + T - 1 with L = {L}.",
                        f"the streams (N={N}, B={B})")


@pytest.mark.points(2)
def test_each_window_continues_the_previous_one(submission):
    """x_{k+1}[:, 0] == y_k[:, -1] for every k: the carried state meets the text that follows."""
    for N, B, T in ((161, 4, 8), (301, 3, 10), (41, 1, 4)):
        ids = _positional(N)
        pairs = _pairs(_windows(submission, ids, B, T), "contiguity")
        for k in range(1, len(pairs)):
            (_, y_prev), (x, _) = pairs[k - 1], pairs[k]
            if x.dim() != 2 or y_prev.dim() != 2 or x.shape[1] == 0 or not torch.equal(x[:, 0], y_prev[:, -1]):
                kit.fail_if(bugs.name_stream_bug(pairs, ids, B, T) or
                            f"window {k} does not start where window {k - 1} stopped (x_(k+1)[:, 0] must equal "
                            "y_k[:, -1]).", f"windows {k - 1} and {k}")
        kit.fail_if(bugs.name_stream_bug(pairs, ids, B, T), f"N={N}, B={B}, T={T}")


@pytest.mark.points(1)
def test_last_shorter_window_is_kept_unpadded(submission):
    """When T does not divide L, the last window has L % T columns."""
    for N, B, T in ((101, 4, 7), (58, 3, 5)):
        ids = _positional(N)
        pairs = _pairs(_windows(submission, ids, B, T), "the last window")
        L = (N - 1) // B
        widths = [int(x.shape[1]) for x, _ in pairs]
        if not widths or widths[-1] != L % T or sum(widths) != L:
            kit.fail_if(bugs.name_stream_bug(pairs, ids, B, T) or
                        f"the windows should cover each stream's L = {L} inputs exactly: {L // T} of {T} columns "
                        f"and a last one of {L % T}.", f"N={N}, B={B}, T={T}")


@pytest.mark.points(1)
def test_any_corpus(submission):
    """A random corpus with repeated ids, drawn per submission, gives the documented windows."""
    rng = random.Random(submission.seed)
    N, B, T = rng.randint(150, 300), rng.randint(2, 6), rng.randint(3, 11)
    ids = torch.randint(30, (N,), generator=torch.Generator().manual_seed(rng.randrange(2**31)))
    pairs = _pairs(_windows(submission, ids, B, T), "a random corpus")
    kit.fail_if(bugs.name_stream_bug(pairs, ids, B, T), f"a random corpus (N={N}, B={B}, T={T})")


@pytest.mark.points(1)
def test_ids_left_alone_and_no_state_between_calls(submission):
    """The ids are not modified (in the worker, on the very tensor passed), and a second call on
    the same corpus gives the same windows (no default list argument or cache keeps the last ones)."""
    submission.function(NAME)
    args, what = (7 + torch.arange(91), 4, 6), NAME   # 2 tokens left over: trimming ids in place shows
    kit.expect_contract(submission, NAME, args, what, ("ids", "batch_size", "seq_len"), check_grads=False,
                        adapter="genlab.checks.lab01:read_windows")
