"""The real grader (CORE's grade_one) on the fixture lab, through `genlab grade`.

Slow (a real grading takes seconds), so only a few: a batch killed with SIGKILL and
resumed, with the outputs checked against what the fixture's notebooks deserve.
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from autograder.runner.results import SubmissionResult

from .helpers import FIXTURE_LAB, REPO

SOURCE = FIXTURE_LAB / "source" / "fixture.ipynb"
RELEASE = FIXTURE_LAB / "release" / "fixture.ipynb"


def _env():
    return dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (d / "status").read_text()
        except OSError:
            continue
        if text in cmd and "State:\tZ" not in state:
            found.append(int(d.name))
    return found


def test_real_batch_killed_midway_resumes_with_the_right_scores(tmp_path):
    subs = tmp_path / "submitted"
    for student, nb in (("ann", SOURCE), ("ben", RELEASE), ("cat", SOURCE)):
        (subs / student / "fixture").mkdir(parents=True)
        shutil.copy(nb, subs / student / "fixture" / "fixture.ipynb")
    out = tmp_path / "grades"
    cmd = [sys.executable, "-m", "autograder.runner.cli", "grade", str(FIXTURE_LAB), str(subs), "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not list(out.glob("*/meta.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    done = sorted(p.parent.name for p in out.glob("*/meta.json"))
    assert done and done != ["ann", "ben", "cat"], "kill the batch while it is still grading"
    time.sleep(2)
    assert _processes_mentioning(str(tmp_path)) == [], "a grader outlived the killed batch"
    first = {s: (out / s / "result.json").read_bytes() for s in done}

    rerun = subprocess.run(cmd + ["--gradebook", f"sqlite:///{tmp_path / 'gb.db'}"], cwd=REPO, env=_env(),
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{len(done)} submission(s) already graded" in rerun.stderr
    assert {s: (out / s / "result.json").read_bytes() for s in done} == first
    results = {s: SubmissionResult.from_json((out / s / "result.json").read_text()) for s in ("ann", "ben", "cat")}
    assert results["ann"].score == results["ann"].max_score > 0 and not results["ann"].error
    assert results["cat"].score == results["ann"].score
    assert results["ben"].score == 0 and results["ben"].max_score == results["ann"].max_score
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert rows["ann"]["score"] == rows["ann"]["max_score"] and rows["ben"]["score"] == "0"
    gs = json.loads((out / "ben" / "results.json").read_text())
    assert any(t.get("status") == "failed" and t["output"] for t in gs["tests"])
    feedback = (out / "ben" / "feedback.md").read_text()
    assert "✗" in feedback and "def test_" not in feedback  # messages, never hidden test source
    assert "ann" in rerun.stdout and "Gradebook: 3 submission(s)" in rerun.stdout
