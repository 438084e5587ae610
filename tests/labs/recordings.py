"""Record what every lab's public checks' oracles answer: ``make recordings``.

    python -m tests.labs.recordings              # every lab
    python -m tests.labs.recordings 03 05        # some labs

For each lab the public checks run in this process (as ``harness.public_check`` runs them):

1. every check cell of the solution notebook, as it is;
2. the same again while exploring (``genlab.checks.recorded.recording(explore=True)``):
   every comparison with an oracle's answer fails and ``kit.fail_if`` only records, so each
   bug-namer tries every known bug it has (what a student's new bug makes it do);
3. the check of every mutant and correct variant in ``tests/labNN/cases.py``, as it is and
   exploring.

Every oracle call is recorded, and so is the message each run gave (``messages``): the
tests replay the checks from the recording and require the same messages
(``tests/labs/test_recordings.py``). The file is ``shared/genlab/checks/recorded/labNN.pt``;
``genlab release`` refuses a lab whose recording is stale.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time

from autograder.release.recordings import recording_digest
from genlab.checks.recorded import Table, recording, table_path

from .harness import LabCases, all_labs, check_ids, public_check, run_checks

SOLUTION = "solution"


def record_lab(lab: LabCases) -> Table:
    """Run ``lab``'s checks on its solution and its cases with the recorder on; return the table."""
    table = Table(digest=recording_digest(lab.lab))
    with recording(table):
        table.messages[SOLUTION] = run_checks(lab)
    with recording(table, explore=True):   # a check that goes on past a failure may crash further on
        run_checks(lab, catch=Exception)
    for case in lab.mutants + lab.variants:
        with recording(table):
            table.messages[case.name] = public_check(lab, case)
        with recording(table, explore=True), contextlib.suppress(Exception):
            public_check(lab, case)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labs", nargs="*", help="lab numbers or names (default: every lab)")
    args = parser.parse_args(argv)
    labs = [lab for lab in all_labs() if not args.labs or lab.lab.number in args.labs or lab.name in args.labs]
    if not labs:
        parser.error(f"no lab matches {args.labs}")
    for lab in labs:
        start = time.perf_counter()
        table = record_lab(lab)
        path = table_path(lab.lab.number)
        table.save(path)
        failing = [k for k, v in table.messages[SOLUTION].items() if v is not None]
        print(f"{lab.name}: {len(table.answers)} answers, {len(check_ids(lab))} checks, "
              f"{len(table.messages) - 1} cases -> {path} ({time.perf_counter() - start:.1f} s)")
        if failing:
            print(f"  warning: the solution fails its checks {failing}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
