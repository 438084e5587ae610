"""The batch layer with a fake grader process: outputs, parallelism, resume, crashes, kills."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.runner import batch
from autograder.runner.batch import BatchError, grade_batch
from autograder.runner.discover import Handin, discover
from autograder.runner.fork_client import ForkServer
from autograder.runner.results import INTERNAL_PREFIX, SubmissionResult
from autograder.runner.store import ResultStore

from .helpers import FAKE_LAB, HERE, fake_command, make_nb, read_trace

ALL = ["test_alpha", "test_beta"]


def subs_for(folder):
    return discover([folder], FAKE_LAB.name, FAKE_LAB.notebook).submissions


def run(folder, out, **kw):
    kw.setdefault("command", fake_command)
    kw.setdefault("progress", False)
    return grade_batch(FAKE_LAB, subs_for(folder), out, **kw)


def snapshot(out: Path) -> dict:
    """Every output file's bytes except the run-dependent meta.json and logs."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in {"meta.json", "grader.log", ".lock"}}


def test_batch_writes_every_output_per_student_and_the_csv(tmp_path, trace):
    subs = tmp_path / "subs"
    make_nb(subs / "alice.ipynb", passed=ALL)
    make_nb(subs / "bob.ipynb", passed=["test_alpha"], message="expected 3 heads, got 4")
    (subs / "carol.ipynb").write_text("{ not a notebook")
    out = tmp_path / "out"
    outcome = run(subs, out, jobs=2)
    assert sorted(outcome.graded) == ["alice", "bob", "carol"] and not outcome.failed
    for s in ("alice", "bob", "carol"):
        assert {p.name for p in (out / s).iterdir()} == {"result.json", "results.json", "feedback.md",
                                                        "grader.log", "meta.json"}
    bob = SubmissionResult.from_json((out / "bob" / "result.json").read_text())
    assert (bob.student, bob.lab, bob.score, bob.max_score, bob.pending_points) == ("bob", "fakelab", 2, 5, 1)
    gs = json.loads((out / "bob" / "results.json").read_text())
    assert gs["score"] == 2 and len(gs["tests"]) == 3
    assert "expected 3 heads, got 4" in (out / "bob" / "feedback.md").read_text()
    carol = SubmissionResult.from_json((out / "carol" / "result.json").read_text())
    assert carol.score == 0 and "not a readable notebook" in carol.notebook_issues[0]
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert [(r["student"], r["score"], r["max_score"], r["pending_gpu_points"]) for r in rows] == [
        ("alice", "5", "5", "1"), ("bob", "2", "5", "1"), ("carol", "0", "5", "1")]
    assert rows[1]["test_beta"] == "0" and rows[1]["test_gpu_half"] == "not_run"
    assert not list((out / ".work").iterdir())


def test_jobs_run_graders_in_parallel_each_in_its_own_process(tmp_path, trace):
    subs = tmp_path / "subs"
    for s in ("a", "b", "c", "d"):
        make_nb(subs / f"{s}.ipynb", passed=ALL, sleep=0.8)
    run(subs, tmp_path / "out", jobs=2)
    events = read_trace(trace)
    pids = {pid for _, _, pid, _ in events}
    assert len(pids) == 4  # a fresh process per submission
    running, most = 0, 0
    for word, *_ in sorted(events, key=lambda e: e[3]):
        running += 1 if word == "start" else -1
        most = max(most, running)
    assert most == 2


def test_rerun_skips_finished_and_gives_identical_outputs(tmp_path, trace):
    subs = tmp_path / "subs"
    make_nb(subs / "alice.ipynb", passed=ALL)
    make_nb(subs / "bob.ipynb", passed=["test_beta"])
    out = tmp_path / "out"
    run(subs, out)
    first = snapshot(out)
    (out / "bob" / "feedback.md").unlink()  # a derived file lost: the rerun re-renders it
    outcome = run(subs, out)
    assert outcome.graded == [] and sorted(outcome.skipped) == ["alice", "bob"]
    assert len(read_trace(trace)) == 4  # no new grader process
    assert snapshot(out) == first
    outcome = run(subs, out, force=True)
    assert sorted(outcome.graded) == ["alice", "bob"] and len(read_trace(trace)) == 8
    assert snapshot(out) == first


def test_a_changed_notebook_is_graded_again(tmp_path, trace):
    subs = tmp_path / "subs"
    make_nb(subs / "alice.ipynb", passed=[])
    out = tmp_path / "out"
    run(subs, out)
    make_nb(subs / "alice.ipynb", passed=ALL)
    outcome = run(subs, out)
    assert outcome.graded == ["alice"]
    assert SubmissionResult.from_json((out / "alice" / "result.json").read_text()).score == 5


def test_a_dying_grader_gives_an_error_result_and_the_batch_goes_on(tmp_path, trace):
    subs = tmp_path / "subs"
    make_nb(subs / "alice.ipynb", passed=ALL)
    make_nb(subs / "bob.ipynb", die="SIGKILL")
    make_nb(subs / "carol.ipynb", die=3)
    make_nb(subs / "dave.ipynb", passed=ALL)
    out = tmp_path / "out"
    outcome = run(subs, out, jobs=2)
    assert sorted(outcome.failed) == ["bob", "carol"] and len(outcome.graded) == 4
    bob = SubmissionResult.from_json((out / "bob" / "result.json").read_text())
    assert bob.score == 0 and "killed by SIGKILL" in bob.error
    carol = SubmissionResult.from_json((out / "carol" / "result.json").read_text())
    assert "exited with code 3" in carol.error
    assert "exit code: 3" in (out / "carol" / "grader.log").read_text()
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert rows["bob"]["score"] == "0" and rows["bob"]["max_score"] == "5" and "SIGKILL" in rows["bob"]["error"]
    assert rows["dave"]["score"] == "5"
    # a died grader is not "finished": the next rerun tries those two again, and only those
    n = len(read_trace(trace))
    outcome = run(subs, out)
    assert sorted(outcome.graded) == ["bob", "carol"] and len(read_trace(trace)) == n + 2


def test_an_internal_grader_error_is_kept_but_retried(tmp_path, trace):
    subs = tmp_path / "subs"
    make_nb(subs / "alice.ipynb", error=f"{INTERNAL_PREFIX}: lab fakelab: fixture exploded")
    out = tmp_path / "out"
    outcome = run(subs, out)
    assert outcome.failed == ["alice"] and "fixture exploded" in outcome.results["alice"].error
    assert run(subs, out).graded == ["alice"]


def test_a_grader_past_the_time_limit_is_stopped_and_that_is_final(tmp_path, trace):
    subs = tmp_path / "subs"
    make_nb(subs / "slow.ipynb", sleep=30)
    t0 = time.monotonic()
    outcome = run(subs, tmp_path / "out", timeout_s=0.5)
    assert time.monotonic() - t0 < 10
    assert outcome.timed_out == ["slow"] and outcome.failed == []
    assert "time limit of 0.5 s per submission" in outcome.results["slow"].error
    n = len(read_trace(trace))
    again = run(subs, tmp_path / "out", timeout_s=0.5)   # a verdict: not graded again on every rerun
    assert again.skipped == ["slow"] and len(read_trace(trace)) == n


def test_a_submission_with_nothing_to_grade_scores_zero_without_a_grader(tmp_path, trace):
    sub = Handin("erin", None, "gradescope", problem="Nothing was submitted (the folder is empty).")
    outcome = grade_batch(FAKE_LAB, [sub], tmp_path / "out", command=fake_command, progress=False)
    assert outcome.results["erin"].error.startswith("Nothing was submitted") and read_trace(trace) == []
    assert outcome.failed == []  # a deterministic verdict, kept on rerun
    assert grade_batch(FAKE_LAB, [sub], tmp_path / "out", command=fake_command,
                       progress=False).skipped == ["erin"]


def test_an_output_folder_of_another_lab_is_refused(tmp_path, trace):
    (tmp_path / "out" / "zed").mkdir(parents=True)
    (tmp_path / "out" / "zed" / "result.json").write_text(SubmissionResult("zed", "other_lab").to_json())
    make_nb(tmp_path / "subs" / "alice.ipynb")
    with pytest.raises(BatchError, match="other_lab"):
        run(tmp_path / "subs", tmp_path / "out")


def test_two_batches_cannot_write_one_folder(tmp_path, trace):
    make_nb(tmp_path / "subs" / "a.ipynb", sleep=3)
    proc = subprocess.Popen([sys.executable, str(HERE / "run_fake_batch.py"), str(tmp_path / "out"), "1",
                             str(tmp_path / "subs")])
    try:
        deadline = time.monotonic() + 20
        while not read_trace(tmp_path / "trace.txt") and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(BatchError, match="another `genlab grade`"):
            run(tmp_path / "subs", tmp_path / "out")
    finally:
        proc.kill()
        proc.wait()


def test_jobs_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        grade_batch(FAKE_LAB, [], tmp_path, jobs=0)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in state


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killing_a_batch_loses_nothing_finished_and_a_rerun_completes_it(tmp_path, trace, sig):
    subs = tmp_path / "subs"
    names = [f"s{i}" for i in range(6)]
    for i, s in enumerate(names):
        make_nb(subs / f"{s}.ipynb", passed=ALL[: i % 3], sleep=0.3)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(HERE / "run_fake_batch.py"), str(out), "2", str(subs)])
    deadline = time.monotonic() + 30
    while len(list(out.glob("*/meta.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == (128 + sig if sig == signal.SIGTERM else -sig)
    finished = {p.parent.name: p.read_text() for p in out.glob("*/meta.json")}
    assert 2 <= len(finished) < 6
    time.sleep(0.3)
    started = {pid for word, _, pid, _ in read_trace(trace) if word == "start"}
    assert not [pid for pid in started if _alive(pid)], "a grader outlived its batch"
    # everything that had finished is intact and consistent
    store = ResultStore(out, FAKE_LAB.name)
    for s in finished:
        assert json.loads(finished[s])["complete"] is True and s in store.results
    before = {s: (out / s / "result.json").read_bytes() for s in finished}
    n_start = len(started)
    outcome = grade_batch(FAKE_LAB, subs_for(subs), out, jobs=2, command=fake_command, progress=False)
    assert sorted(outcome.skipped) == sorted(finished)
    assert sorted(outcome.graded) == sorted(set(names) - set(finished))
    assert len([e for e in read_trace(trace) if e[0] == "start"]) == n_start + 6 - len(finished)
    assert {s: (out / s / "result.json").read_bytes() for s in finished} == before
    # the same scores as one uninterrupted batch
    fresh = grade_batch(FAKE_LAB, subs_for(subs), tmp_path / "fresh", jobs=2, command=fake_command,
                        progress=False)
    assert {s: r.score for s, r in outcome.results.items()} == {s: r.score for s, r in fresh.results.items()}
    assert (out / "grades.csv").read_text() == (tmp_path / "fresh" / "grades.csv").read_text()
    assert os.listdir(out / ".work") == []


# --------------------------------------------------------------------------- the fork server

def _until(cond, seconds=30):
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _fake_server(work, monkeypatch, module="fake_grade_one"):
    monkeypatch.setenv("PYTHONPATH", str(HERE))  # the server imports the fake grader as a module
    work.mkdir(exist_ok=True)
    return ForkServer(work, module=module, preload=("json",))


def _args(nb, student, work):
    return ["fakelab", str(nb), "--student", student, "--out", str(work / f"{student}.json")]


def test_fork_server_forks_a_fresh_process_per_submission(tmp_path, trace, monkeypatch):
    work = tmp_path / "work"
    server = _fake_server(work, monkeypatch)
    try:
        runs = {s: server.spawn(_args(make_nb(tmp_path / f"{s}.ipynb", passed=ALL), s, work), work / f"{s}.log")
                for s in ("a", "b")}
        slow = server.spawn(_args(make_nb(tmp_path / "slow.ipynb", sleep=60), "slow", work), work / "slow.log")
        _until(lambda: all(r.poll() == 0 for r in runs.values()))
        assert SubmissionResult.from_json((work / "a.json").read_text()).score == 5
        _until(lambda: len({pid for w, _, pid, _ in read_trace(trace) if w == "start"}) == 3)
        pids = {pid for w, _, pid, _ in read_trace(trace) if w == "start"}
        assert len(pids) == 3 and server.proc.pid not in pids
        slow.kill()
        assert slow.wait() == -signal.SIGKILL
    finally:
        server.close()


def test_fork_server_children_collect_only_their_own_objects(tmp_path, monkeypatch):
    """The server freezes what it imported (gc.freeze) before forking: a child's collections,
    pytest's at the end of every session among them, skip torch's objects."""
    work = tmp_path / "work"
    server = _fake_server(work, monkeypatch, module="freeze_report")
    try:
        child = server.spawn([str(work / "frozen.txt")], work / "child.log")
        _until(lambda: child.poll() == 0)
        assert int((work / "frozen.txt").read_text()) > 1000
    finally:
        server.close()


def test_children_die_with_the_fork_server_and_unforked_work_is_not_lost(tmp_path, trace, monkeypatch):
    work = tmp_path / "work"
    server = _fake_server(work, monkeypatch)
    try:
        busy = server.spawn(_args(make_nb(tmp_path / "x.ipynb", sleep=60), "x", work), work / "x.log")
        _until(lambda: server.pump() or busy.id in server.pids)
        child = server.pids[busy.id]
        os.kill(server.proc.pid, signal.SIGKILL)
        assert busy.wait() == -signal.SIGKILL and not busy.unstarted()
        _until(lambda: not _alive(child), 10)
        later = server.spawn(_args(make_nb(tmp_path / "y.ipynb"), "y", work), work / "y.log")
        assert later.unstarted()
    finally:
        server.close()


def test_batch_falls_back_to_plain_processes_when_the_fork_server_fails(tmp_path, trace, monkeypatch):
    import functools

    monkeypatch.setattr(batch, "grade_one_command", fake_command)  # "the real grader" for this test
    monkeypatch.setattr(batch, "ForkServer", functools.partial(_fake_server, monkeypatch=monkeypatch,
                                                                module="no_such_module_here"))
    subs = tmp_path / "subs"
    for s in ("a", "b", "c"):
        make_nb(subs / f"{s}.ipynb", passed=ALL)
    outcome = grade_batch(FAKE_LAB, subs_for(subs), tmp_path / "out", jobs=2, command=fake_command,
                          progress=False, fork_server=True)
    assert sorted(outcome.graded) == ["a", "b", "c"] and not outcome.failed
    assert all(r.score == 5 for r in outcome.results.values())
    assert any("fork server stopped" in w and "no_such_module_here" in w for w in outcome.warnings)
