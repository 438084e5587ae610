"""Plain result types shared by the grading core, the batch layer and the reports.

A ``SubmissionResult`` is what one graded notebook produces. It serialises to JSON
(our own lossless form, used for resuming) and to Gradescope's ``results.json`` schema.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from . import text

Status = Literal["passed", "failed", "not_run"]

# How ``SubmissionResult.error`` starts when the grader failed, not the submission: the
# batch keeps such a result but does not count it as finished (a rerun grades it again).
INTERNAL_PREFIX = "internal grader error"
MAX_ISSUES = 20            # notebook issues kept per submission
MAX_TEXT = 100_000         # characters of messages, issues and error per submission, together


@dataclass
class TestOutcome:
    """One hidden test's verdict.

    ``message`` is written for the student: what was expected, what came back, a hint.
    ``part`` groups tests by graded part (the hidden test file's stem without ``test_``).
    """

    __test__ = False  # not a pytest test class

    name: str
    points: float
    score: float
    status: Status
    message: str = ""
    part: str = ""


@dataclass
class SubmissionResult:
    """Everything known about one graded submission."""

    student: str
    lab: str
    tests: list[TestOutcome] = field(default_factory=list)
    execution_time: float = 0.0
    isolation: str = ""
    notebook_issues: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def internal_error(self) -> bool:
        """Whether the grader itself failed on this submission (see ``INTERNAL_PREFIX``)."""
        return (self.error or "").startswith(INTERNAL_PREFIX)

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests if t.status != "not_run")

    @property
    def max_score(self) -> float:
        """Points that this runner could award (tests it did not run are excluded)."""
        return sum(t.points for t in self.tests if t.status != "not_run")

    @property
    def pending_points(self) -> float:
        """Points of tests not run on this runner (for example ``gpu`` tests on a CPU)."""
        return sum(t.points for t in self.tests if t.status == "not_run")

    def capped(self) -> SubmissionResult:
        """A copy in which every piece of text is cleaned and capped (``text``): each message,
        each notebook issue (at most ``MAX_ISSUES``), the error, the isolation sentence, and
        all of them together at most ``MAX_TEXT`` characters. Idempotent."""
        issues = [text.one_line(i, text.ISSUE) for i in self.notebook_issues]
        if len(issues) > MAX_ISSUES:
            issues = issues[: MAX_ISSUES - 1] + [f"... and {len(issues) - MAX_ISSUES + 1} more notebook issues"]
        error = None if self.error is None else text.clean(self.error, text.MESSAGE)
        budget = MAX_TEXT - sum(map(len, issues)) - len(error or "")
        per_test = max(300, min(text.MESSAGE, budget // max(1, len(self.tests))))
        tests = [replace(t, name=text.one_line(t.name, text.NAME), part=text.one_line(t.part, text.NAME),
                         message=text.clean(t.message, per_test)) for t in self.tests]
        return replace(self, student=text.one_line(self.student, text.NAME), lab=text.one_line(self.lab, text.NAME),
                       tests=tests, notebook_issues=issues, error=error,
                       isolation=text.one_line(self.isolation, 600))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> SubmissionResult:
        data = json.loads(text)
        data["tests"] = [TestOutcome(**t) for t in data.get("tests", [])]
        return cls(**data)

    def to_gradescope(self) -> dict:
        """Gradescope's ``results.json`` schema.

        Tests not run on this runner appear with ``max_score`` 0 and an output naming the
        points they carry, so the total stays honest and the instructor knows to regrade.
        Every output is plain text (``output_format: text``): nothing a student wrote is
        rendered as HTML or Markdown, and text that came from the submission is one line
        per item, so it cannot fake a line of its own.
        """
        lines = []
        if self.error:
            lines.append(text.one_line(self.error, text.MESSAGE))
        lines += [f"Notebook: {text.one_line(issue, text.ISSUE)}" for issue in self.notebook_issues]
        if self.pending_points:
            lines.append(
                f"{self.pending_points:g} points come from GPU tests that were not run on "
                "this runner; regrade on a GPU runner to award them."
            )
        if self.isolation:
            lines.append(f"Isolation: {text.one_line(self.isolation, 600)}")
        tests = []
        for t in self.tests:
            entry = {
                "name": text.one_line(t.name, text.NAME),
                "score": t.score if t.status != "not_run" else 0.0,
                "max_score": t.points if t.status != "not_run" else 0.0,
                "output": text.clean(t.message, text.MESSAGE),
                "output_format": "text",
                "visibility": "visible",
            }
            if t.status != "not_run":
                entry["status"] = t.status
            else:
                entry["output"] = f"Not run on this runner (needs a CUDA GPU); worth {t.points:g} points. {t.message}".strip()
            tests.append(entry)
        return {
            "score": self.score,
            "execution_time": round(self.execution_time, 3),
            "output": "\n".join(lines),
            "output_format": "text",
            "test_output_format": "text",
            "tests": tests,
            "extra_data": {
                "max_score_on_this_runner": self.max_score,
                "pending_gpu_points": self.pending_points,
                "isolation": self.isolation,
            },
        }
