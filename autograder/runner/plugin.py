"""The pytest plugin that runs a lab's hidden tests against one submission.

* markers: ``points(n)`` (required on every hidden test; a test without it is a lab error)
  and ``gpu`` (needs CUDA; without it the test is "not_run" and its points are pending);
* the session-scoped ``submission`` fixture (a ``submission.Submission``);
* every test's verdict becomes a ``TestOutcome``. Its message is the assertion's own message
  (hidden tests write it for students), or the message of a ``SubmissionError``; any other
  exception in test code gives "internal grader error in this test (reported to the
  instructor)". Tracebacks, test source and hidden inputs never reach a message: hidden
  tests run with ``--assert=plain`` and the details go to the grader's log only.
"""
from __future__ import annotations

import traceback

import pytest

from .errors import SubmissionError
from .results import TestOutcome
from .submission import Submission

INTERNAL = "internal grader error in this test (reported to the instructor)"


class GraderPlugin:
    """Registered with ``pytest.main(..., plugins=[GraderPlugin(...)])``."""

    def __init__(self, submission: Submission, cuda: bool, parts: tuple[str, ...] | None = None):
        self._submission = submission
        self.cuda = cuda
        self.parts = None if parts is None else frozenset(parts)
        self.outcomes: dict[str, TestOutcome] = {}
        self.lab_errors: list[str] = []
        self.log: list[str] = []
        self._points: dict[str, float] = {}
        self._gpu: set[str] = set()
        self._started = False

    # -- configuration and collection
    def pytest_configure(self, config):
        config.addinivalue_line("markers", "points(n): points the hidden test is worth (required)")
        config.addinivalue_line("markers", "gpu: needs a CUDA GPU; reported as not run without one")

    @pytest.fixture(scope="session")
    def submission(self):
        return self._submission

    def pytest_collectreport(self, report):
        if report.failed:
            self.lab_errors.append(f"hidden test file {report.nodeid or '?'} could not be collected")
            self.log.append(f"collection error in {report.nodeid}:\n{report.longreprtext}")

    def pytest_collection_modifyitems(self, session, config, items):
        for item in items:
            marker = item.get_closest_marker("points")
            points = None
            if marker is not None:
                raw = marker.args[0] if marker.args else marker.kwargs.get("n", marker.kwargs.get("points"))
                try:
                    points = float(raw)
                except (TypeError, ValueError):
                    points = None
            if points is None or points < 0:
                self.lab_errors.append(
                    f"hidden test {item.nodeid} has no valid @pytest.mark.points(n) marker"
                )
                continue
            self._points[item.nodeid] = points
            if item.get_closest_marker("gpu") is not None:
                self._gpu.add(item.nodeid)
        if self.parts is not None and not self.lab_errors:
            self._select_parts(config, items)
        if self.lab_errors:
            config.hook.pytest_deselected(items=list(items))
            items[:] = []

    def _select_parts(self, config, items) -> None:
        """Keep only the tests of ``self.parts``; a part the lab does not have is a lab error."""
        known = {_part(item) for item in items}
        unknown = sorted(self.parts - known)
        if unknown:
            self.lab_errors.append(f"no hidden-test part {', '.join(unknown)}; the lab's parts: {', '.join(sorted(known))}")
            return
        dropped = [item for item in items if _part(item) not in self.parts]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [item for item in items if _part(item) in self.parts]

    # -- running
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        if item.nodeid in self._gpu and not self.cuda:
            self._record(item, "not_run", "")
            pytest.skip("needs a CUDA GPU")
        if not self._started:
            self._started = True
            self._submission.start()
        self._submission.begin_test()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if item.nodeid in self.outcomes:
            return
        if call.when == "setup" and report.failed:
            self._record(item, "failed", self._message(item, call.excinfo))
        elif call.when == "setup" and report.skipped:
            self._record(item, "not_run", _skip_reason(call.excinfo))
        elif call.when == "call":
            incidents = self._submission.end_test()
            if report.passed:
                if incidents:
                    self._record(item, "failed", incidents[0])
                else:
                    self._record(item, "passed", "")
            elif report.skipped:
                self._record(item, "not_run", _skip_reason(call.excinfo))
            else:
                message = self._message(item, call.excinfo)
                if incidents and message == INTERNAL:
                    message = incidents[0]
                self._record(item, "failed", message)

    def _message(self, item, excinfo) -> str:
        if excinfo is None:
            return INTERNAL
        exc = excinfo.value
        if isinstance(exc, SubmissionError):
            return str(exc)
        if isinstance(exc, AssertionError):
            text = _safe_str(exc)
            return text or "a hidden check failed (no further details)"
        if isinstance(exc, pytest.fail.Exception):
            return getattr(exc, "msg", "") or "a hidden check failed (no further details)"
        self.log.append(
            f"internal error in {item.nodeid}:\n"
            + "".join(traceback.format_exception(excinfo.type, exc, excinfo.tb))
        )
        return INTERNAL

    def _record(self, item, status: str, message: str) -> None:
        points = self._points.get(item.nodeid, 0.0)
        self.outcomes[item.nodeid] = TestOutcome(
            name=f"{_part(item)}::{item.name}",
            points=points,
            score=points if status == "passed" else 0.0,
            status=status,
            message=message,
            part=_part(item),
        )


def _part(item) -> str:
    stem = item.path.stem if getattr(item, "path", None) else item.nodeid.split("::")[0]
    return stem.removeprefix("test_")


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc).strip()
    except Exception:
        return ""


def _skip_reason(excinfo) -> str:
    try:
        return str(excinfo.value.msg)
    except Exception:
        return ""
