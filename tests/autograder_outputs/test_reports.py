"""results.json, feedback.md, grades.csv and the atomic writer."""
import csv
import io
import json

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
