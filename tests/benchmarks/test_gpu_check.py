"""benchmarks/gpu_check.py without a GPU: a clean one-line exit, and its parts checked on the CPU."""
import math
import os
import subprocess
import sys

import pytest

from autograder.runner.results import SubmissionResult, TestOutcome
from tests.benchmarks._load import BENCHMARKS, load

gpu_check = load("gpu_check")


def test_without_cuda_it_says_so_and_exits_0(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = tmp_path / "gpu_check.json"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--out", str(out)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == gpu_check.NO_CUDA
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("name, precision", [("gpt", "bf16-mixed"), ("gan", "32-true")])
def test_precision_run_trains_on_the_cpu(name, precision):
    # gpt: autocast + the automatic loop; gan: two optimizers stepped by hand, losses read from its logs
    r = gpu_check.precision_run(name, "cpu", precision, steps=3)
    assert len(r["losses"]) == 3 and r["losses_finite"] and r["peak_memory_bytes"] is None
    assert r["median_step_s"] > 0
    values = [v for step in r["losses"] for v in step.values()]
    assert all(math.isfinite(v) for v in values) and len(set(values)) > 1   # it trained: losses moved


def test_precision_run_rejects_a_missing_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="use device='cpu'"):
        gpu_check.precision_run("vae", "cuda", "16-mixed", steps=1)
    with pytest.raises(ValueError, match="device must be"):
        gpu_check.precision_run("vae", "tpu", "32-true", steps=1)


def test_grade_summary_fails_on_pending_gpu_points(tmp_path):
    def write(student, tests):
        (tmp_path / student).mkdir()
        (tmp_path / student / "result.json").write_text(SubmissionResult(student, "lab", tests).to_json())

    write("full", [TestOutcome("a", 2, 2, "passed")])
    assert gpu_check.grade_summary(tmp_path)["ok"]
    write("pending", [TestOutcome("b", 1, 1, "passed"), TestOutcome("gpu_b", 3, 0, "not_run")])
    summary = gpu_check.grade_summary(tmp_path)
    assert not summary["ok"]
    assert summary["submissions"]["pending"]["pending_gpu_points"] == 3
    assert summary["submissions"]["pending"]["not_passed"] == ["gpu_b"]
    assert not gpu_check.grade_summary(tmp_path / "empty")["ok"]


def test_junit_counts(tmp_path):
    xml = tmp_path / "r.xml"
    xml.write_text('<testsuites><testsuite tests="4" failures="1" errors="0" skipped="2"/></testsuites>')
    assert gpu_check.junit_counts(xml) == {"tests": 4, "failures": 1, "errors": 0, "skipped": 2}
    assert gpu_check.junit_counts(tmp_path / "none.xml")["tests"] == 0
