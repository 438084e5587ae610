"""One student's bad input is that student's result, never the batch's: reserved and huge ids,
links out of the submission, malformed nbgrader timestamps, names that carry markup."""
import csv
import io
import os

from autograder.runner import reports
from autograder.runner.discover import discover
from autograder.runner.gradebook import write_gradebook
from autograder.runner.results import SubmissionResult, TestOutcome
from autograder.runner.store import ResultStore

from .helpers import FAKE_LAB, make_nb
from .test_batch import ALL, run


def test_a_student_named_like_the_batchs_files_is_that_students_error(tmp_path, trace):
    subs = tmp_path / "subs"
    make_nb(subs / "grades.csv.ipynb", passed=ALL)
    make_nb(subs / "Similarity.CSV.ipynb", passed=ALL)
    make_nb(subs / "alice.ipynb", passed=ALL)
    out = tmp_path / "out"
    for _ in range(2):   # and again: a rerun must not trip over it either
        outcome = run(subs, out)
        assert not outcome.failed
        assert outcome.results["alice"].score == 5
        bad = outcome.results["grades.csv"]
        assert bad.score == 0 and "keeps for its own files" in bad.error and "Rename the notebook" in bad.error
    assert (out / "grades.csv").is_file() and (out / "_grades.csv" / "feedback.md").is_file()
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert set(rows) == {"alice", "grades.csv", "Similarity.CSV"}
    assert set(ResultStore(out, FAKE_LAB.name).results) == set(rows)


def test_a_very_long_student_id_is_graded(tmp_path, trace):
    subs = tmp_path / "subs"
    make_nb(subs / ("x" * 240 + ".ipynb"), passed=ALL)
    make_nb(subs / ("x" * 239 + "y.ipynb"), passed=["test_alpha"])
    outcome = run(subs, tmp_path / "out")
    assert not outcome.failed and sorted(r.score for r in outcome.results.values()) == [2, 5]
    assert all(len(s) <= 80 for s in outcome.results)


def test_links_out_of_the_submission_are_refused(tmp_path, trace):
    solution = make_nb(tmp_path / "elsewhere" / "solution.ipynb", passed=ALL)
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "mallory.ipynb").symlink_to(solution)
    make_nb(flat / "alice.ipynb", passed=ALL)
    tree = tmp_path / "submitted"
    (tree / "bob" / "fakelab").mkdir(parents=True)
    (tree / "bob" / "fakelab" / "lab.ipynb").symlink_to(solution)
    (tree / "carol").mkdir()
    (tree / "carol" / "fakelab").symlink_to(solution.parent, target_is_directory=True)
    (tree / "dave" / "fakelab").mkdir(parents=True)
    (tree / "dave" / "fakelab" / "work").symlink_to(solution.parent, target_is_directory=True)
    make_nb(tree / "erin" / "fakelab" / "lab.ipynb", passed=ALL)
    (tree / "erin" / "fakelab" / "timestamp.txt").symlink_to("/etc/hostname")
    for folder, linked in ((flat, ["mallory"]), (tree, ["bob", "carol", "dave"])):
        outcome = run(folder, tmp_path / f"out-{folder.name}")
        for student in linked:
            r = outcome.results[student]
            assert r.score == 0 and "symbolic link" in r.error, (student, r.error)
        assert [s for s, r in outcome.results.items() if r.score == 5] == (["alice"] if folder is flat else ["erin"])
    assert discover([tree], FAKE_LAB.name, FAKE_LAB.notebook).submissions[-1].timestamp is None
    (tmp_path / "given.ipynb").symlink_to(solution)
    sub, = discover([tmp_path / "given.ipynb"], FAKE_LAB.name, FAKE_LAB.notebook).submissions
    assert sub.notebook is None and "symbolic link" in sub.problem


def test_a_malformed_timestamp_does_not_stop_the_gradebook(tmp_path):
    results = [SubmissionResult(s, "fakelab", [TestOutcome("test_a", 1, 1, "passed", "", "a")])
               for s in ("ann", "ben", "cat")]
    problems = []
    db = f"sqlite:///{tmp_path / 'gb.db'}"
    n = write_gradebook(db, "fakelab", "lab", results, problems=problems,
                        timestamps={"ann": "2024-03-01 10:00:00 UTC", "ben": "next tuesday-ish ☺",
                                    "cat": "2024-03-02 11:00:00 UTC"})
    assert n == 3 and len(problems) == 1 and problems[0].startswith("ben: timestamp.txt")
    from nbgrader.api import Gradebook

    with Gradebook(db) as gb:
        subs = {s.student.id: s for s in gb.find_assignment("fakelab").submissions}
        assert set(subs) == {"ann", "ben", "cat"} and subs["cat"].timestamp.day == 2


def test_names_with_markup_and_escapes_stay_inert(tmp_path, trace, capsys):
    subs = tmp_path / "subs"
    make_nb(subs / "-2+3.ipynb", passed=ALL)
    (subs / "\x1b[31m# evil\n.txt").write_text("x")
    found = discover([subs], FAKE_LAB.name, FAKE_LAB.notebook)
    assert all("\x1b" not in note and "\n" not in note for note in found.skipped)
    outcome = run(subs, tmp_path / "out")
    text = (tmp_path / "out" / "grades.csv").read_text()
    row = next(csv.reader(io.StringIO(text.splitlines()[1])))
    assert row[0] == "'-2+3"   # a spreadsheet shows the id, it does not compute it
    table = reports.summary_table(outcome.results.values())
    assert len(table.splitlines()) == 3


def test_a_results_file_for_another_folder_is_ignored(tmp_path):
    out = tmp_path / "out"
    (out / "bob").mkdir(parents=True)
    (out / "bob" / "result.json").write_text(SubmissionResult("alice", FAKE_LAB.name).to_json())
    store = ResultStore(out, FAKE_LAB.name)
    assert store.results == {} and "holds student 'alice'" in store.warnings[0]


def test_a_special_file_is_never_read(tmp_path, trace):
    tree = tmp_path / "submitted"
    make_nb(tree / "alice" / "fakelab" / "lab.ipynb", passed=ALL)
    (tree / "fred" / "fakelab").mkdir(parents=True)
    os.mkfifo(tree / "fred" / "fakelab" / "lab.ipynb")   # reading it would block the batch forever
    outcome = run(tree, tmp_path / "out")
    assert outcome.results["alice"].score == 5
    assert outcome.results["fred"].score == 0 and "not a regular file" in outcome.results["fred"].error
