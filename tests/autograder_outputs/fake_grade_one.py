"""A stand-in for ``python -m autograder.runner.grade_one`` (same argv, same output file).

The notebook's ``metadata.fake`` says what to do: ``passed`` (test names that pass),
``sleep`` (seconds), ``die`` ("SIGKILL" or an exit code, without writing a result),
``message``, ``error`` (copied into the result). An unreadable notebook scores 0 with a notebook issue, like the real grader.
If ``$FAKE_TRACE`` is set, "start/end <student> <pid> <time>" lines are appended to it.
"""
import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from autograder.runner.results import SubmissionResult, TestOutcome  # noqa: E402

TESTS = [("test_alpha", 2.0, "alpha"), ("test_beta", 3.0, "beta"), ("test_gpu_half", 1.0, "beta")]


def trace(word, student):
    path = os.environ.get("FAKE_TRACE")
    if path:
        with open(path, "a") as f:
            f.write(f"{word} {student} {os.getpid()} {time.time():.4f}\n")


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("lab")
    p.add_argument("notebook")
    p.add_argument("--student", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    trace("start", a.student)
    issues, fake = [], {}
    try:
        nb = json.loads(Path(a.notebook).read_text())
        fake = nb["metadata"].get("fake", {})
    except Exception as e:
        issues.append(f"this file is not a readable notebook ({type(e).__name__})")
    time.sleep(float(fake.get("sleep", 0)))
    die = fake.get("die")
    if die == "SIGKILL":
        os.kill(os.getpid(), signal.SIGKILL)
    if die is not None:
        sys.exit(int(die))
    passed = set(fake.get("passed", []))
    tests = []
    for name, pts, part in TESTS:
        if name == "test_gpu_half":
            tests.append(TestOutcome(name, pts, 0.0, "not_run", "", part))
        elif name in passed and not issues:
            tests.append(TestOutcome(name, pts, pts, "passed", "", part))
        else:
            tests.append(TestOutcome(name, pts, 0.0, "failed", fake.get("message", f"{name}: expected 1, got 2"), part))
    r = SubmissionResult(a.student, a.lab, tests, execution_time=0.01, isolation="fake isolation",
                         notebook_issues=issues, error=fake.get("error"))
    out = Path(a.out)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(r.to_json())
    os.replace(tmp, out)
    trace("end", a.student)
    return 0


if __name__ == "__main__":
    sys.exit(main())
