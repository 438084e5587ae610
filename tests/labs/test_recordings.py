"""The student build's public checks, answered from recordings, say what the full library's say.

In the student build every ``@oracle`` of the checks is a stub and its answers come from
``genlab/checks/recorded/labNN.pt`` (``make recordings``). Here the checks run in this
process with the recording forced (``recorded.replaying``), on the solution and on every
mutant and correct variant, and must give the messages the full library gave when the
recording was made.
"""
from __future__ import annotations

import pytest

from autograder.release.recordings import recording_problem
from genlab.checks.recorded import Table, replaying, table_path

from .harness import all_labs, public_check, run_checks
from .recordings import SOLUTION


def _table(lab) -> Table:
    path = table_path(lab.lab.number)
    if not path.is_file():
        pytest.fail(f"{lab.name} has no recording at {path}: run make recordings")
    return Table.load(path)


def _cases():
    return [pytest.param(lab, case, id=f"{lab.name}-{case.name}") for lab in all_labs()
            for case in lab.mutants + lab.variants]


@pytest.mark.parametrize("lab", all_labs(), ids=lambda lab: lab.name)
def test_recording_is_current(lab):
    problem = recording_problem(lab.lab)
    assert problem is None, problem


@pytest.mark.parametrize("lab", all_labs(), ids=lambda lab: lab.name)
def test_solution_passes_its_replayed_checks(lab):
    table = _table(lab)
    with replaying(table):
        messages = run_checks(lab)
    assert messages == table.messages[SOLUTION]
    assert all(m is None for m in messages.values()), messages


@pytest.mark.parametrize("lab, case", _cases())
def test_replayed_check_says_what_the_full_check_said(lab, case):
    table = _table(lab)
    with replaying(table):
        message = public_check(lab, case)
    assert message == table.messages[case.name], (
        f"replayed: {message!r}\nfull library: {table.messages[case.name]!r}")
