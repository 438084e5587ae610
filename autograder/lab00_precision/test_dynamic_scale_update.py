"""Part 4: dynamic_scale_update(scale, found_inf, growth_tracker, ...) against torch.amp.GradScaler.

The oracle is a real CPU GradScaler driven through the same sequence of overflows
(``lab00_bugs.gradscaler_history``).
"""
import pytest
import torch

from autograder import kit
from genlab.checks import lab00 as checks
from genlab.checks import lab00_bugs as bugs

NAME = "dynamic_scale_update"


def _call(what, fn, *args, **kwargs):
    return kit.call(fn, *args, context=what, **kwargs)


def _compare(fn, found_infs, where, init_scale=2.0 ** 16, **rule):
    got = checks.scale_run(fn, found_infs, init_scale=init_scale, call=_call, **rule)
    kit.fail_if(bugs.name_scale_bug(got, found_infs, init_scale=init_scale, **rule), where)
    want = bugs.gradscaler_history(found_infs, init_scale=init_scale, **rule)
    pairs = [(float(s), int(k)) for s, k in got]
    if pairs != want:
        first = next(i for i, (a, b) in enumerate(zip(pairs, want, strict=False)) if a != b)
        raise AssertionError(f"{where}: after step {first + 1} the (scale, growth_tracker) differs from "
                             "torch.amp.GradScaler's.")


def _recorded(seed, n, p_overflow, bursts=()):
    """A recorded-looking sequence: rare random overflows plus bursts of consecutive ones."""
    g = torch.Generator().manual_seed(seed)
    seq = (torch.rand(n, generator=g) < p_overflow).tolist()
    for start, length in bursts:
        seq[start:start + length] = [True] * length
    return seq


@pytest.mark.points(2)
def test_backoff_on_overflow(submission):
    """inf/NaN: the scale is halved and the clean-step count restarts at 0."""
    fn = submission.function(NAME)
    for scale, tracker in ((2.0 ** 16, 0), (2.0 ** 16, 1234), (3.0, 7), (2.0 ** -3, 1999)):
        got = kit.call(fn, scale, True, tracker, context=f"{NAME}({scale:g}, found_inf=True, {tracker})")
        new_scale, new_tracker = kit.expect_tuple(got, 2, NAME, ("new_scale", "new_growth_tracker"))
        if (new_scale, new_tracker) != (scale * 0.5, 0):
            kit.fail_if(bugs.name_scale_bug([got], [True], init_scale=scale) if tracker == 0 else None,
                        "after an overflow")
            raise AssertionError(f"after an overflow with scale {scale:g} and {tracker} clean steps the result "
                                 f"should be (scale × 0.5, 0), got ({new_scale!r}, {new_tracker!r}): "
                                 + ("reset the count of clean steps to 0." if new_scale == scale * 0.5 else
                                    "multiply the scale by backoff_factor."))


@pytest.mark.points(2)
def test_growth_after_the_interval(submission):
    """growth_interval clean steps in a row double the scale and reset the count; an overflow restarts it."""
    fn = submission.function(NAME)
    seq = [False] * 5 + [True] + [False] * 4 + [True] + [False] * 12
    _compare(fn, seq, "growth_interval=5", growth_interval=5)
    _compare(fn, [False] * 7, "growth_interval=1", growth_interval=1)


@pytest.mark.points(4)
def test_recorded_sequence_with_gradscaler_defaults(submission):
    """A recorded 2400-step sequence of overflows with GradScaler's defaults (2^16, ×2 after 2000, ×0.5)."""
    seq = _recorded(1, 2400, 0.002, bursts=((10, 3), (2250, 2)))
    seq[100:2150] = [False] * 2050  # 2000 clean steps in a row: one growth, at step 2100
    _compare(submission.function(NAME), seq, "a 2400-step recorded sequence with GradScaler's defaults")


@pytest.mark.points(2)
def test_recorded_sequence_with_other_settings(submission):
    """400 steps with growth_factor 4, backoff_factor 0.25, growth_interval 7 and a starting scale of 2^24."""
    seq = _recorded(2, 400, 0.08, bursts=((50, 5),))
    _compare(submission.function(NAME), seq, "growth_factor=4, backoff_factor=0.25, growth_interval=7",
             init_scale=2.0 ** 24, growth_factor=4.0, backoff_factor=0.25, growth_interval=7)


@pytest.mark.points(1)
def test_never_grows_past_float32(submission):
    """From 2^127 a growth would overflow float32: GradScaler keeps the scale and resets the count."""
    fn = submission.function(NAME)
    _compare(fn, [False] * 6 + [True] + [False] * 3, "starting at 2^126 with growth_interval=2",
             init_scale=2.0 ** 126, growth_interval=2)


@pytest.mark.points(1)
def test_returns_a_float_and_an_int(submission):
    """(new_scale, new_growth_tracker) are a Python float and int, also when nothing changes."""
    fn = submission.function(NAME)
    for args in ((65536.0, False, 0), (65536.0, False, 1998), (65536.0, True, 5)):
        got = kit.call(fn, *args, context=f"{NAME}{args}")
        scale, tracker = kit.expect_tuple(got, 2, NAME, ("new_scale", "new_growth_tracker"))
        if isinstance(scale, bool) or not isinstance(scale, float):
            raise AssertionError(f"new_scale should be a Python float, got {kit.describe(scale)}.")
        kit.expect_int(tracker, "new_growth_tracker")
