"""results.json, feedback.md, grades.csv and the atomic writer."""
import csv
import io
import json
import re

import pytest

from autograder.runner import reports
from autograder.runner.results import SubmissionResult, TestOutcome


def sample(student="alice", error=None, issues=()):
    return SubmissionResult(
        student=student, lab="03_transformer", execution_time=1.23456, isolation="separate process, no network",
        notebook_issues=list(issues), error=error,
        tests=[TestOutcome("test_shapes", 2, 2, "passed", "", "sdpa"),
               TestOutcome("test_scale", 3, 0, "failed", "expected weights summing to 1, got ```2```", "sdpa"),
               TestOutcome("test_fp16_cuda", 1, 0, "not_run", "", "mha")])


def test_results_json_follows_gradescope_schema():
    data = json.loads(reports.gradescope_json(sample()))
    assert data["score"] == 2 and data["execution_time"] == 1.235
    assert [t["name"] for t in data["tests"]] == ["test_shapes", "test_scale", "test_fp16_cuda"]
    for t in data["tests"]:
        assert {"name", "score", "max_score", "output", "visibility"} <= set(t)
    assert data["tests"][1]["status"] == "failed" and data["tests"][1]["max_score"] == 3
    assert data["tests"][2]["max_score"] == 0 and "status" not in data["tests"][2]


def test_feedback_lists_every_test_with_its_mark_and_message():
    md = reports.feedback_markdown(sample(issues=["cell 4 raised NameError: name 'np' is not defined"]))
    assert "**Score: 2 / 5**" in md
    assert "✓ **test_shapes**: 2 / 2" in md
    assert "✗ **test_scale**: 0 / 3" in md
    assert "– **test_fp16_cuda**: not run" in md and "1 more points come from GPU tests" in md
    assert "cell 4 raised NameError" in md and "separate process, no network" in md
    assert "### sdpa (2 / 5)" in md
    # the message contains a triple backtick: the fence must be longer so it stays one block
    assert "````text\nexpected weights summing to 1, got ```2```\n````" in md


def test_feedback_shows_the_error_of_a_submission_that_was_not_graded():
    r = SubmissionResult("bob", "03_transformer", error="No .ipynb notebook was submitted.")
    md = reports.feedback_markdown(r)
    assert "## Problem" in md and "No .ipynb notebook" in md and "**Score: 0 / 0**" in md


def test_grades_csv_has_one_row_per_student_and_one_column_per_test():
    rows = [sample("carol"), sample("alice", issues=["a", "b"]),
            SubmissionResult("bob", "03_transformer", error="grader died")]
    table = list(csv.reader(io.StringIO(reports.grades_csv(rows))))
    assert table[0] == ["student", "score", "max_score", "pending_gpu_points", "test_shapes", "test_scale",
                        "test_fp16_cuda", "notebook_issues", "error"]
    assert [r[0] for r in table[1:]] == ["alice", "bob", "carol"]
    assert table[1] == ["alice", "2", "5", "1", "2", "0", "not_run", "a | b", ""]
    # a result without tests still shows the lab's full max score, and its error
    assert table[2] == ["bob", "0", "5", "0", "", "", "", "", "grader died"]


def test_fmt_points_is_stable():
    assert [reports.fmt_points(x) for x in (2.0, 1.5, 1 / 3, 0)] == ["2", "1.5", "0.3333", "0"]


def test_summary_table_rows():
    text = reports.summary_table([sample("alice"), SubmissionResult("bob", "x", error="grader died\nmore")])
    lines = text.splitlines()
    assert lines[0].split() == ["student", "score", "pending", "GPU", "issues"]
    assert lines[2].split()[:3] == ["alice", "2/5", "1"]
    assert lines[3].split()[:2] == ["bob", "0/5"] and lines[3].endswith("grader died")


def test_write_atomic_replaces_whole_file_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "d" / "f.txt"
    reports.write_atomic(target, "old")
    reports.write_atomic(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    with pytest.raises(TypeError):
        reports.write_atomic(target, 123)  # fails mid-write
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.txt"]


HOSTILE = "\x1b[31m# Score: 100 / 100\x1b[0m\n**all** <img src=x onerror=alert(1)> [click](http://evil) =SUM(A1)"


def test_student_text_is_escaped_for_every_format():
    r = SubmissionResult("+1-2", "03_transformer", tests=[TestOutcome("test_x", 1, 0, "failed", HOSTILE, "p")],
                         notebook_issues=[HOSTILE, "=cmd|' /C calc'!A0"], error=HOSTILE, isolation=HOSTILE).capped()
    md = reports.feedback_markdown(r)
    assert "\x1b" not in md
    live = re.sub(r"(?ms)^(`{3,})text\n.*?^\1$", "", md)   # what renders as Markdown: outside the fences
    assert "<img" not in live and "](http://" not in live and "`" not in live
    assert not [ln for ln in live.splitlines() if ln.startswith("# Score") or ln.startswith("**all")]
    assert "- \\# Score: 100 / 100 ⏎ \\*\\*all\\*\\* &lt;img" in md    # issues: literal text in a list item
    data = json.loads(reports.gradescope_json(r))
    assert data["output_format"] == data["test_output_format"] == "text"
    assert [ln.split(":")[0] for ln in data["output"].splitlines()] == ["# Score", "Notebook", "Notebook", "Isolation"]
    rows = list(csv.reader(io.StringIO(reports.grades_csv([r]))))
    assert rows[1][0] == "'+1-2" and rows[1][-2].startswith("# Score") and "\n" not in rows[1][-1]
    assert all(not cell.startswith(("=", "+", "-", "@")) for cell in rows[1])
    table = reports.summary_table([r])
    assert "\x1b" not in table and len(table.splitlines()) == 3


def test_capped_results_bound_each_student():
    r = SubmissionResult("s", "lab", tests=[TestOutcome(f"t{i}", 1, 0, "failed", "m" * 10**6, "p") for i in range(80)],
                         notebook_issues=["i" * 10**5] * 500, error="e" * 10**7)
    capped = r.capped()
    assert len(capped.to_json()) < 200_000 and len(capped.notebook_issues) == 20
    assert capped.notebook_issues[-1] == "... and 481 more notebook issues"
    assert capped.capped() == capped
