"""What `genlab grade LAB SUBMISSION...` accepts, and the student ids it derives."""
import json

import pytest

from autograder.runner.discover import DiscoveryError, discover, safe_id

from .helpers import make_nb

LAB, RELEASE = "03_transformer", "transformer.ipynb"


def ids(found):
    return [s.student for s in found.submissions]


def test_notebook_files_use_their_stem(tmp_path):
    a, b = make_nb(tmp_path / "alice.ipynb"), make_nb(tmp_path / "x" / "bob.ipynb")
    found = discover([a, b], LAB, RELEASE)
    assert ids(found) == ["alice", "bob"]
    assert found.submissions[0].notebook == a.resolve() and found.submissions[0].layout == "file"


def test_folder_of_notebooks_skips_other_files_and_hidden_ones(tmp_path):
    make_nb(tmp_path / "alice.ipynb")
    (tmp_path / "bob.ipynb").write_text("this is not json")  # broken: still graded (scores 0)
    (tmp_path / "notes.txt").write_text("hi")
    make_nb(tmp_path / ".hidden.ipynb")
    make_nb(tmp_path / ".ipynb_checkpoints" / "alice-checkpoint.ipynb")
    found = discover([tmp_path], LAB, RELEASE)
    assert ids(found) == ["alice", "bob"]
    assert any("notes.txt" in s and "not a .ipynb" in s for s in found.skipped)


def test_nbgrader_submitted_tree_uses_folder_names(tmp_path):
    sub = tmp_path / "course" / "submitted"
    make_nb(sub / "alice" / LAB / RELEASE)
    (sub / "alice" / LAB / "timestamp.txt").write_text("2024-03-01 10:00:00 UTC\n")
    make_nb(sub / "bob" / LAB / RELEASE)
    make_nb(sub / "bob" / LAB / "scratch.ipynb")  # the release name wins
    (sub / "carol" / LAB).mkdir(parents=True)  # submitted nothing
    (sub / "dave" / LAB).mkdir(parents=True)
    (sub / "dave" / LAB / "answer.py").write_text("print(1)")  # not a notebook: graded, scores 0
    make_nb(sub / "erin" / "other_lab" / "x.ipynb")  # did not submit this lab
    for arg in (sub, tmp_path / "course"):
        found = discover([arg], LAB, RELEASE)
        assert ids(found) == ["alice", "bob", "carol", "dave"]
        by = {s.student: s for s in found.submissions}
        assert by["alice"].timestamp == "2024-03-01 10:00:00 UTC" and by["alice"].layout == "nbgrader"
        assert by["bob"].notebook.name == RELEASE
        assert by["carol"].notebook is None and "Nothing was submitted" in by["carol"].problem
        assert by["dave"].notebook.name == "answer.py" and by["dave"].problem is None
        assert any("erin" in s for s in found.skipped)


def test_one_nbgrader_student_or_lab_folder(tmp_path):
    nb = make_nb(tmp_path / "submitted" / "alice" / LAB / "whatever.ipynb")
    assert ids(discover([tmp_path / "submitted" / "alice"], LAB, RELEASE)) == ["alice"]
    found = discover([tmp_path / "submitted" / "alice" / LAB], LAB, RELEASE)
    assert ids(found) == ["alice"] and found.submissions[0].notebook == nb.resolve()


def test_several_notebooks_without_the_release_name_is_a_problem_not_a_crash(tmp_path):
    make_nb(tmp_path / "submitted" / "alice" / LAB / "a.ipynb")
    make_nb(tmp_path / "submitted" / "alice" / LAB / "b.ipynb")
    sub, = discover([tmp_path / "submitted"], LAB, RELEASE).submissions
    assert sub.notebook is None and "Several notebooks" in sub.problem and RELEASE in sub.problem


def test_gradescope_layout_reads_the_student_from_metadata(tmp_path):
    nb = make_nb(tmp_path / "autograder" / "submission" / "my work.ipynb")
    found = discover([tmp_path / "autograder" / "submission"], LAB, RELEASE)
    assert ids(found) == ["submission"] and found.submissions[0].notebook == nb.resolve()
    (tmp_path / "autograder" / "submission_metadata.json").write_text(
        json.dumps({"id": 1, "users": [{"email": "ada@uni.edu", "id": 7, "name": "Ada L"}]}))
    sub, = discover([tmp_path / "autograder" / "submission"], LAB, RELEASE).submissions
    assert sub.student == "ada@uni.edu" and sub.layout == "gradescope"


def test_gradescope_submission_without_notebook_still_yields_a_submission(tmp_path):
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "a.py").write_text("x")
    (tmp_path / "submission" / "b.py").write_text("y")
    sub, = discover([tmp_path / "submission"], LAB, RELEASE).submissions
    assert sub.notebook is None and "No .ipynb notebook" in sub.problem


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(DiscoveryError, match="does not exist"):
        discover([tmp_path / "nope.ipynb"], LAB, RELEASE)
    with pytest.raises(DiscoveryError, match="no SUBMISSION"):
        discover([], LAB, RELEASE)


def test_folder_without_any_notebook_is_an_error(tmp_path):
    (tmp_path / "readme.md").write_text("x")
    with pytest.raises(DiscoveryError, match="contains no .ipynb"):
        discover([tmp_path], LAB, RELEASE)


def test_duplicate_ids_are_refused_with_both_paths(tmp_path):
    a, b = make_nb(tmp_path / "x" / "alice.ipynb"), make_nb(tmp_path / "y" / "alice.ipynb")
    with pytest.raises(DiscoveryError, match="alice") as e:
        discover([a, b], LAB, RELEASE)
    assert str(a) in str(e.value) and str(b) in str(e.value)
    assert ids(discover([a, a, tmp_path / "x"], LAB, RELEASE)) == ["alice"]  # the same file twice is fine


def test_safe_id():
    assert safe_id("Ada Lovelace/../x") == "Ada_Lovelace_.._x"
    assert safe_id("..") == "submission" and safe_id("ada@uni.edu") == "ada@uni.edu"
