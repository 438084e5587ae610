"""Reading submissions and restoring protected cells (no worker involved)."""
import copy

import nbformat
import pytest
from nbgrader.utils import compute_checksum as nbgrader_checksum

from autograder.runner.errors import NotebookError
from autograder.runner.notebook import compute_checksum, prepare, read_notebook, restore

from .conftest import RELEASE, SOURCE, grade_id, solved_release, write_nb


def release():
    return nbformat.read(RELEASE, as_version=4)


def cell(nb, gid):
    return next(c for c in nb.cells if grade_id(c) == gid)


def test_checksum_is_nbgrader_s():
    for path in (SOURCE, RELEASE):
        for c in nbformat.read(path, as_version=4).cells:
            if "nbgrader" in c.metadata:
                assert compute_checksum(c) == nbgrader_checksum(c)
    for c in release().cells:
        if "checksum" in c.metadata.get("nbgrader", {}):
            assert c.metadata.nbgrader.checksum == compute_checksum(c)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "is empty"),
        (b"   \n", "is empty"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{\x00}\x00", "not UTF-8"),
        (b"[1, 2]", "not a Jupyter notebook"),
        (b'{"cells": [], "nbformat": 3, "nbformat_minor": 0, "metadata": {}}', "version 3"),
        (b'{"cells": [{"cell_type": "weird", "source": ""}], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
         "malformed"),
    ],
)
def test_unreadable_notebooks(tmp_path, content, reason):
    path = tmp_path / "bad.ipynb"
    path.write_bytes(content)
    with pytest.raises(NotebookError, match=reason):
        read_notebook(path)


def test_missing_notebook(tmp_path):
    with pytest.raises(NotebookError, match="does not exist"):
        read_notebook(tmp_path / "nothing.ipynb")


def test_untouched_release_has_no_issues():
    nb, issues = restore(release(), release())
    assert issues == []
    assert [c.source for c in nb.cells] == [c.source for c in release().cells]


def test_modified_deleted_duplicated_and_points_are_restored():
    sub = solved_release()
    cell(sub, "check_add").source = "pass  # trust me"
    cell(sub, "imports").metadata.nbgrader["points"] = 3  # not a grade cell: no effect
    cell(sub, "check_softmax").metadata.nbgrader["points"] = 100
    sub.cells.remove(cell(sub, "intro"))
    train = cell(sub, "train")
    train.source = "print('no more training')"
    train.metadata.pop("tags")
    sub.cells.append(copy.deepcopy(cell(sub, "imports")))
    restored, issues = restore(sub, release())
    text = "\n".join(issues)
    assert "cell 'check_add' was modified; the original was restored" in text
    assert "cell 'check_softmax' had its points changed" in text
    assert "cell 'intro' was deleted; the original was restored" in text
    assert "cell 'imports' was duplicated; the copy was removed" in text
    assert "cell 'train' was modified" in text
    assert cell(restored, "check_add").source == cell(release(), "check_add").source
    assert cell(restored, "train").source == cell(release(), "train").source
    assert grade_id(restored.cells[0]) == "intro"
    assert sum(grade_id(c) == "imports" for c in restored.cells) == 1
    # solution cells keep the student's work
    assert "return a + b" in cell(restored, "add").source


def test_flipping_a_test_cell_to_a_solution_cell_is_caught():
    sub = solved_release()
    meta = cell(sub, "check_add").metadata.nbgrader
    meta["solution"], meta["grade"], meta["locked"] = True, False, False
    cell(sub, "check_add").source = "pass"
    restored, issues = restore(sub, release())
    assert any("check_add" in i for i in issues)
    assert cell(restored, "check_add").source.startswith("assert add(1, 2) == 3")


def test_prepare_skips_training_cells_even_when_untagged(tmp_path, lab):
    sub = solved_release()
    cell(sub, "train").metadata.pop("tags")
    extra = nbformat.v4.new_code_cell("print('plot')", metadata={"tags": ["plotting"]})
    sub.cells.append(extra)
    prepared = prepare(lab, write_nb(sub, tmp_path / "s.ipynb"))
    assert [c.grade_id for c in prepared.skipped] == ["train", None]
    assert all("while True" not in c.source for c in prepared.cells)
    assert [c.grade_id for c in prepared.cells][:2] == ["imports", "add"]
    assert prepared.cells[0].index == 2  # 1-based position in the restored notebook
