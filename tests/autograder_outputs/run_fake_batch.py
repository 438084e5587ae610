"""A real batch process with the fake grader, for the kill-and-resume tests.

    python run_fake_batch.py OUT_DIR JOBS SUBMISSION...
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

from helpers import FAKE_LAB, fake_command  # noqa: E402

from autograder.runner.batch import BatchInterrupted, grade_batch  # noqa: E402
from autograder.runner.discover import discover  # noqa: E402

if __name__ == "__main__":
    out, jobs, *paths = sys.argv[1:]
    subs = discover(paths, FAKE_LAB.name, FAKE_LAB.notebook).submissions
    try:
        outcome = grade_batch(FAKE_LAB, subs, Path(out), jobs=int(jobs), command=fake_command, progress=False)
    except BatchInterrupted as e:
        sys.exit(128 + e.signum)
    print(f"graded {len(outcome.graded)} skipped {len(outcome.skipped)}")
