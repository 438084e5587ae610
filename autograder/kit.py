"""Helpers for hidden-test authors: call the student, expect shapes and values, name bugs.

The ``expect_*`` helpers are the public checks' own (``genlab.checks.kit``), so a student
reads the same sentence in the notebook and in the feedback. ``call`` is the hidden tests'
way into the submission: it goes through the ``submission`` proxy and turns what the
student's code raised into a failed assertion with context.

    from autograder import kit

    @pytest.mark.points(2)
    def test_shapes(submission):
        fn = submission.function("causal_mask")
        mask = kit.expect_tensor(kit.call(fn, 6, context="causal_mask(6)"), "causal_mask(6)",
                                 shape=(6, 6), dtype=torch.bool)
"""
from __future__ import annotations

import random

from autograder.runner.errors import SubmissionError
from genlab.checks import contract
from genlab.checks.kit import (
    close,
    describe,
    expect_close,
    expect_finite,
    expect_float,
    expect_int,
    expect_tensor,
    expect_tuple,
    fail_if,
    known_error,
)

__all__ = [
    "call",
    "expect_contract",
    "close",
    "describe",
    "expect_close",
    "expect_finite",
    "expect_float",
    "expect_int",
    "expect_tensor",
    "expect_tuple",
    "fail_if",
]


def input_seed(submission, k: int) -> int:
    """The seed of hidden input ``k`` for this submission (``submission.seed``: a hash of its code).

    Draw random hidden inputs from it (``torch.Generator().manual_seed(input_seed(submission, 3))``)
    wherever the expected answer is computed here from those inputs: a regrade draws the same
    ones, and any change to the code draws new ones, so no table of earlier answers fits."""
    return random.Random(int(submission.seed) * 1000 + int(k)).randrange(2**31)


def call(fn, /, *args, context: str | None = None, hint: str = "", hints: dict[str, str] | None = None,
         explain: bool = True, **kwargs):
    """Call submission code (a ``Remote``); what it raised becomes an ``AssertionError``.

    The message is the student-facing one from the worker, prefixed by ``context``
    ("at step 3") and followed by ``hint``, or by ``hints[exception type name]`` when the
    student's code raised that type (``hints={"KeyError": "read config['n_embd']"}``).
    With ``explain`` a torch error the public checks know (``genlab.checks.kit.KNOWN_ERRORS``)
    gets the same sentence the student read in the notebook.
    Crashes, timeouts and calls of a blocked reference (subclasses of ``SubmissionError``)
    propagate unchanged: a test cannot swallow them.
    """
    try:
        return fn(*args, **kwargs)
    except SubmissionError as exc:
        if type(exc) is not SubmissionError:
            raise
        extra = (hints or {}).get(exc.exc_type or "", hint)
        known = known_error(str(exc)) if explain else None
        if known and not extra:
            extra = f"Likely cause: {known}."
        message = f"{context}: {exc}" if context else str(exc)
        raise AssertionError(f"{message} {extra}".rstrip()) from None


def expect_contract(submission, fn, args, what: str, names=None, kwargs=None, output_index: int | None = 0,
                    check_grads: bool = True, adapter: str | None = None) -> None:
    """The promises no value check sees (``genlab.checks.contract``): no input changed in place,
    no state kept between calls, gradients reach every float input (and a module's parameters),
    autograd left on. Observed in the worker on the submission's own objects (probe ``contract``;
    ``adapter``: a ``"genlab.module:attr"`` wrapper for the callable, see the probe), judged here;
    the message is the one the notebook's public check gives."""
    seen = call(submission.probe, "contract", fn=fn, args=tuple(args), kwargs=dict(kwargs or {}),
                output_index=output_index, check_grads=check_grads, adapter=adapter, context=what)
    fail_if(contract.judge(seen, list(args), what, names))
