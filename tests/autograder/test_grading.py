"""Grading the fixture lab end to end: full marks, zero, bad notebooks, isolation modes."""
import json
import os
import subprocess
import sys

import pytest
import torch

from autograder.runner import grade as grade_module
from autograder.runner.grade import grade_notebook

from .conftest import (
    FULL_MARKS,
    GPU_POINTS,
    RELEASE,
    SOURCE,
    assert_no_leak,
    by_name,
    lab_copy,
    solved_release,
)

pytestmark = pytest.mark.slow


def test_solution_scores_full_marks_and_reruns_identically(grade):
    first = grade(solved_release())
    assert first.error is None and first.notebook_issues == []
    assert first.score == FULL_MARKS == first.max_score
    assert first.pending_points == GPU_POINTS
    gpu = by_name(first)["softmax::test_softmax_on_gpu"]
    assert gpu.status == "not_run" and gpu.score == 0
    assert {t.part for t in first.tests} == {"add", "counter", "softmax"}
    if os.geteuid() == 0:
        assert first.isolation.startswith("full:"), first.isolation
    second = grade(solved_release())
    assert [(t.name, t.status, t.score, t.message) for t in second.tests] == [
        (t.name, t.status, t.score, t.message) for t in first.tests
    ]


def test_the_source_notebook_itself_scores_full_marks(grade):
    assert grade(SOURCE).score == FULL_MARKS


def test_untouched_release_scores_zero_without_crashing(grade):
    result = grade(RELEASE)
    assert result.error is None
    assert result.score == 0 and result.max_score == FULL_MARKS
    failed = [t for t in result.tests if t.status == "failed"]
    assert len(failed) == 6
    assert all("raised NotImplementedError" in t.message for t in failed)
    assert "at cell 4, line 4, in add" in by_name(result)["add::test_add_numbers"].message
    assert any("cell 5 ('check_add') raised NotImplementedError" in i for i in result.notebook_issues)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "is empty"), (b"{oops", "not valid JSON"), (b"\x89PNG\r\n\x1a\n\xff", "not UTF-8"),
     (json.dumps({"cells": [], "nbformat": 3, "metadata": {}}).encode(), "nbformat version 3")],
)
def test_unreadable_notebook_scores_zero_with_the_reason(tmp_path, lab, content, reason):
    path = tmp_path / "submission.ipynb"
    path.write_bytes(content)
    result = grade_notebook(lab, path, "s")
    assert reason in result.error and not result.error.startswith("internal")
    assert result.score == 0 and result.max_score == FULL_MARKS
    assert all(reason in t.message for t in result.tests if t.status == "failed")
    assert by_name(result)["softmax::test_softmax_on_gpu"].status == "not_run"
    assert_no_leak(result)


def test_missing_notebook(tmp_path, lab):
    result = grade_notebook(lab, tmp_path / "absent.ipynb", "s")
    assert "does not exist" in result.error and result.score == 0
    assert result.isolation


def test_hidden_test_without_points_is_a_lab_error(tmp_path, grade):
    lab = lab_copy(tmp_path, extra_files={"test_extra.py": "def test_unmarked(submission):\n    pass\n"})
    result = grade_notebook(lab, SOURCE, "s")
    assert result.error.startswith("internal grader error")
    assert "test_unmarked" in result.error and "points" in result.error


def test_internal_errors_in_hidden_tests_are_not_shown(tmp_path):
    extra = (
        "import pytest\n\n@pytest.mark.points(1)\ndef test_buggy(submission):\n"
        "    secret = {'HIDDEN-CANARY': 1}\n    secret['missing']\n"
    )
    lab = lab_copy(tmp_path, extra_files={"test_extra.py": extra})
    log = tmp_path / "log.txt"
    result = grade_notebook(lab, SOURCE, "s", log=log)
    outcome = by_name(result)["extra::test_buggy"]
    assert outcome.status == "failed"
    assert outcome.message == "internal grader error in this test (reported to the instructor)"
    assert result.score == FULL_MARKS and result.max_score == FULL_MARKS + 1
    assert "KeyError" in log.read_text()  # the instructor sees the details
    assert_no_leak(result)


@pytest.mark.parametrize("mode", ["weak", "userns"])
def test_other_isolation_modes_still_grade(grade, monkeypatch, mode):
    if mode == "userns" and os.geteuid() != 0 and not os.path.exists("/proc/self/ns/user"):
        pytest.skip("no user namespaces here")
    monkeypatch.setenv("GENLAB_SANDBOX", mode)
    result = grade(solved_release())
    assert result.score == FULL_MARKS
    if mode == "weak":
        assert result.isolation.startswith("weak:") and "GENLAB_SANDBOX=weak" in result.isolation
    else:
        assert "user namespace" in result.isolation and "netns" in result.isolation


def test_grade_one_writes_the_result_atomically(tmp_path):
    out = tmp_path / "out" / "result.json"
    out.parent.mkdir()
    nb = tmp_path / "s.ipynb"
    nb.write_bytes(SOURCE.read_bytes())
    proc = subprocess.run(
        [sys.executable, "-m", "autograder.runner.grade_one", str(SOURCE.parent.parent), str(nb),
         "--student", "bob", "--out", str(out), "--log", str(tmp_path / "log.txt")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["student"] == "bob" and data["lab"] == "fixture"
    assert sum(t["score"] for t in data["tests"]) == FULL_MARKS
    assert sorted(p.name for p in out.parent.iterdir()) == ["result.json"]


def test_grade_one_with_an_unknown_lab(tmp_path):
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "autograder.runner.grade_one", "no_such_lab", str(SOURCE), "--student", "x",
         "--out", str(out)], capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "no lab named" in json.loads(out.read_text())["error"]


API_TESTS = '''
import pytest
import torch

from autograder.runner.errors import NotDefined, SubmissionError


@pytest.mark.points(1)
def test_values_and_handles(submission):
    assert submission.get("SCALE") == 3 and submission.has("SCALE") and not submission.has("nope")
    net = submission.get("net")
    assert net.remote_type == "torch.nn.modules.linear.Linear"
    weight = net.getattr("weight")
    assert type(weight) is torch.Tensor and weight.shape == (2, 3)
    inner = submission.function("Box")(net)
    assert inner.getattr("item").remote_type == net.remote_type      # a Remote crossed back and forth
    assert inner.call_method("size") == 6 and inner.size() == 6
    out = net(torch.ones(1, 3))
    assert out.shape == (1, 2)
    state = net.state_dict()
    assert set(state) == {"weight", "bias"}
    assert sum(p.numel() for p in net.parameters()) == 8   # generators come back as lists


@pytest.mark.points(1)
def test_errors_from_student_code(submission):
    with pytest.raises(NotDefined, match="does not define `missing_function`"):
        submission.function("missing_function")
    with pytest.raises(SubmissionError) as info:
        submission.function("picky")(-1)
    assert info.value.exc_type == "ValueError" and "negative" in str(info.value)
    with pytest.raises(NotDefined, match="not a function or class"):
        submission.function("SCALE")


@pytest.mark.points(1)
def test_gradients_probe(submission):
    data = submission.probe("gradients", fn="softmax", args=(torch.randn(2, 5),))
    assert torch.allclose(data["grads"][0], torch.zeros(2, 5), atol=1e-6)
    net = submission.get("net")
    data = submission.probe("gradients", fn=net, args=(torch.ones(4, 3),))
    assert torch.allclose(data["parameter_grads"]["bias"], torch.full((2,), 4.0))


@pytest.mark.points(1)
def test_autocast_probe_on_a_module(submission):
    net = submission.get("net")
    data = submission.probe("autocast", fn=net, args=(torch.ones(4, 3),), dtype="bfloat16")
    assert data["output_dtypes"] == ["bfloat16"] and data["finite"]
    assert [(op[0], op[2]) for op in data["ops"] if op[0] == "linear"] == [("linear", "bfloat16")]


@pytest.mark.points(1)
def test_the_labs_own_probe(submission):
    assert submission.probe("scale_of", name="SCALE", times=2) == {"value": 6}   # `name` goes to the probe


@pytest.mark.points(1)
def test_setup_report(submission):
    report = submission.setup_report
    assert [c.index for c in report.raised] == [14]
    assert "ZeroDivisionError" in report.raised[0].error
'''

EXTRA_CELLS = {
    "extras": (
        "SCALE = 3\nnet = torch.nn.Linear(3, 2)\n\n\nclass Box:\n    def __init__(self, item):\n"
        "        self.item = item\n\n    def size(self):\n        return self.item.weight.numel()\n\n\n"
        "def picky(x):\n    if x < 0:\n        raise ValueError('negative values are not allowed')\n    return x\n"
    ),
    "broken": "1 / 0",
}


LAB_PROBE = "def run(namespace, name, times):\n    return {'value': namespace[name] * times}\n"


def test_hidden_test_api(tmp_path, grade):
    lab = lab_copy(tmp_path, extra_files={"test_api.py": API_TESTS, "probes/scale_of.py": LAB_PROBE})
    result = grade(solved_release(EXTRA_CELLS), lab_=lab)
    assert {t.name: t.message for t in result.tests if t.status == "failed"} == {}
    assert result.score == FULL_MARKS + 6
    assert "cell 14 raised ZeroDivisionError: division by zero" in result.notebook_issues[0]


@pytest.mark.parametrize("spawn_mode", ["python"], indirect=True)   # a template has torch imported already
def test_a_worker_that_cannot_start_is_an_internal_error(tmp_path):
    lab = lab_copy(tmp_path, limits={"memory_mb": 600})   # far too little to import torch
    log = tmp_path / "log.txt"
    result = grade_notebook(lab, SOURCE, "s", log=log)
    assert result.error == "internal grader error: the worker could not start; see the grading log"
    assert result.score == 0
    assert all("problem of the grader" in t.message for t in result.tests if t.status == "failed")
    assert "worker start failure" in log.read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_gpu_tests_run_when_cuda_is_reported(grade, monkeypatch):
    """With CUDA (faked here) gpu tests run; conftest.py files above the lab (tests/conftest.py
    skips gpu tests) must not interfere with hidden tests."""
    monkeypatch.setattr(grade_module, "cuda_available", lambda: True)
    result = grade(solved_release())
    gpu = by_name(result)["softmax::test_softmax_on_gpu"]
    assert gpu.status == "failed" and gpu.message.startswith("internal grader error")  # no GPU really
    assert "no address-space limit" in result.isolation
