"""Exceptions of the grading core.

Two families:

* ``SubmissionError`` and its subclasses are raised in the grader's process by the
  ``submission`` fixture when something went wrong *on the submission's side*. Their
  message is written for the student and becomes the failing test's feedback as is.
  A plain ``SubmissionError`` means "student code raised": ``exc_type`` then holds the
  exception's class name (``"ValueError"``), so a hidden test can check that a submission
  rejects bad input with ``excinfo.value.exc_type == "ValueError"``.
* ``GraderError`` and its subclasses describe problems of the grader itself or of the
  input it was given (a notebook that cannot be read, a broken lab folder).
"""
from __future__ import annotations


class SubmissionError(Exception):
    """Student code raised an exception (or, for subclasses, misbehaved otherwise).

    ``str(error)`` is the student-facing message, e.g.
    ``"softmax raised ValueError: bad shape\\n  at cell 5, line 3, in softmax: ..."``.
    """

    def __init__(self, message: str, exc_type: str | None = None):
        super().__init__(message)
        self.message = message
        self.exc_type = exc_type

    def __str__(self) -> str:
        return self.message


class SubmissionCrashed(SubmissionError):
    """The worker process running the submission died (exit, signal, memory, CPU limit)."""


class SubmissionTimeout(SubmissionError):
    """The submission did not answer within the time limit; its worker was killed."""


class NotDefined(SubmissionError):
    """The notebook does not define a name that a hidden test asked for."""


class ReferenceUsed(SubmissionError):
    """The submission called a reference implementation that the lab blocks."""


class NotTransferable(SubmissionError):
    """A value could not cross from the worker (e.g. a tensor subclass, or too large)."""


class GraderError(Exception):
    """A problem of the grader or of its inputs, not of student code in a test."""


class NotebookError(GraderError):
    """The submitted notebook cannot be read (missing, not JSON, not UTF-8, wrong format)."""


class LabError(GraderError):
    """The lab folder is missing or invalid (bad lab.toml, hidden test without points...)."""


class SandboxError(GraderError):
    """The worker could not be started at all."""


WATCH_OFF = "!operator-watch"   # worker_opwatch.TAMPERED: the worker's hit for a watch switched off


def reference_message(reference: str) -> str:
    """Student-facing message for a call to a blocked reference implementation."""
    if reference == WATCH_OFF:
        return ("Your code switched off the grader's operator watch (torch's function-mode stack or "
                "torch-function dispatch); graded code must leave it alone.")
    owner = reference.split(".", 1)[0]
    return (
        f"You called {owner}'s reference implementation `{reference}`; "
        "write your own implementation."
    )


def student_call(fn, *args, **kwargs):
    """Call submission code from a hidden test; what the student's code raised becomes an
    ``AssertionError`` with the same student-facing message.

    A test can then catch it to add context ("at step 3, ...") exactly as it does for its
    own checks. Crashes, timeouts and calls of a blocked reference (the subclasses of
    ``SubmissionError``) propagate unchanged: a test must not be able to swallow them.
    """
    try:
        return fn(*args, **kwargs)
    except SubmissionError as exc:
        if type(exc) is not SubmissionError:
            raise
        raise AssertionError(str(exc)) from None
