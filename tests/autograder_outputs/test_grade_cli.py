"""`genlab grade` as a user sees it: options, exit codes, one-line errors, the summary."""
import functools
import subprocess
import sys

import pytest

from autograder.runner import cli
from autograder.runner.batch import grade_batch

from .helpers import REPO, fake_command, make_nb


def make_lab(folder, name="fakelab"):
    """A minimal lab folder that CORE's Lab.load accepts."""
    folder.mkdir(parents=True)
    (folder / "lab.toml").write_text(f'name = "{name}"\nrelease = "./lab.ipynb"\n')
    make_nb(folder / "lab.ipynb")
    (folder / "test_x.py").write_text("")
    return folder


def genlab(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "autograder.runner.cli", "grade", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or REPO, timeout=120)


def one_line_error(proc, expect):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genlab grade: error:") and expect in lines[0], proc.stderr


def test_unknown_lab_is_one_clear_line(tmp_path):
    one_line_error(genlab("no_such_lab", tmp_path), "no lab named 'no_such_lab'")


def test_missing_submission_path_is_one_clear_line(tmp_path):
    lab = make_lab(tmp_path / "lab")
    one_line_error(genlab(lab, tmp_path / "nope.ipynb"), "does not exist")


@pytest.mark.parametrize("extra, expect", [
    (["--jobs", "0"], "--jobs must be at least 1"),
    ([], "no SUBMISSION given"),
])
def test_bad_options(tmp_path, extra, expect):
    lab = make_lab(tmp_path / "lab")
    one_line_error(genlab(lab, *extra), expect)


def test_gradescope_zip_takes_no_submissions_and_only_project_labs(tmp_path):
    lab = make_lab(tmp_path / "lab")
    nb = make_nb(tmp_path / "a.ipynb")
    one_line_error(genlab("--gradescope-zip", lab, nb), "takes only LAB")
    one_line_error(genlab("--gradescope-zip", lab, "--out", tmp_path / "x.zip"), "outside the project")


@pytest.fixture
def fake_batch(monkeypatch):
    monkeypatch.setattr(cli, "grade_batch", functools.partial(grade_batch, command=fake_command, progress=False))


def test_grade_prints_a_summary_and_writes_outputs(tmp_path, fake_batch, capsys, monkeypatch):
    lab = make_lab(tmp_path / "lab")
    make_nb(tmp_path / "subs" / "alice.ipynb", passed=["test_alpha", "test_beta"])
    make_nb(tmp_path / "subs" / "bob.ipynb", passed=["test_alpha"])
    (tmp_path / "subs" / "notes.txt").write_text("x")
    out = tmp_path / "out"
    db = tmp_path / "gb.db"
    assert cli.main(["grade", str(lab), str(tmp_path / "subs"), "--out", str(out), "-j", "2",
                     "--gradebook", f"sqlite:///{db}"]) == 0
    stdout, stderr = capsys.readouterr()
    assert "skipped" in stderr and "notes.txt" in stderr
    lines = stdout.splitlines()
    assert lines[0].split()[:2] == ["student", "score"]
    assert lines[2].split()[:3] == ["alice", "5/5", "1"] and lines[3].split()[:3] == ["bob", "2/5", "1"]
    assert "2 graded, 0 kept" in stdout and "Gradebook: 2 submission(s)" in stdout
    assert (out / "grades.csv").is_file() and (out / "alice" / "feedback.md").is_file()
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}") as gb:
        scores = {s.student.id: s.score for s in gb.find_assignment("fakelab").submissions}
    assert scores == {"alice": 5, "bob": 2}
    # a rerun keeps both; the default output folder is grades/<lab> under the current folder
    assert cli.main(["grade", str(lab), str(tmp_path / "subs"), "--out", str(out)]) == 0
    assert "2 submission(s) already graded" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert cli.main(["grade", str(lab), str(tmp_path / "subs" / "bob.ipynb")]) == 0
    assert (tmp_path / "grades" / "fakelab" / "bob" / "result.json").is_file()


def test_a_dead_grader_makes_the_exit_status_1(tmp_path, fake_batch, capsys):
    lab = make_lab(tmp_path / "lab")
    make_nb(tmp_path / "subs" / "alice.ipynb", die="SIGKILL")
    make_nb(tmp_path / "subs" / "bob.ipynb", passed=["test_alpha"])
    assert cli.main(["grade", str(lab), str(tmp_path / "subs"), "--out", str(tmp_path / "out")]) == 1
    out, err = capsys.readouterr()
    assert "grader died on 1 submission(s) (alice)" in err and "bob" in out


def test_add_grade_parser_plugs_into_another_cli():
    import argparse

    parser = argparse.ArgumentParser(prog="genlab")
    sub = parser.add_subparsers(dest="command")
    cli.add_grade_parser(sub)
    args = parser.parse_args(["grade", "03_transformer", "a.ipynb", "b", "--jobs", "3", "--force"])
    assert (args.lab, args.submissions, args.jobs, args.force, args.out) == ("03_transformer", ["a.ipynb", "b"],
                                                                            3, True, None)
    assert args.func is cli.run_grade
