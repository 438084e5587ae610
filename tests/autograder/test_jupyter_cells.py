"""Honest notebooks graded the way Jupyter runs them: IPython syntax, magics, top-level await,
notebooks whose nbgrader metadata was stripped (Colab), modules that carry a buffer."""
import copy

import nbformat
import pytest

from .conftest import FULL_MARKS, RELEASE, grade_id, lab_copy, solution_sources, solved_release

pytestmark = pytest.mark.slow
SOL = solution_sources()


def failed(result) -> dict[str, str]:
    return {t.name: t.message for t in result.tests if t.status == "failed"}


def cell(nb, gid):
    return next(c for c in nb.cells if grade_id(c) == gid)


def insert_after(nb, gid, source):
    nb.cells.insert(nb.cells.index(cell(nb, gid)) + 1, nbformat.v4.new_code_cell(source))


@pytest.mark.parametrize(("source", "python"), [
    ("x = 1\ny = x % 2", "x = 1\ny = x % 2"),                      # Python stays as it is
    ("%matplotlib inline\nimport os", "get_ipython().run_line_magic('matplotlib', 'inline')\nimport os\n"),
    ("\n\nlen?", "\n\nget_ipython().run_line_magic('pinfo', 'len')\n"),  # line numbers kept
    ("files = !ls", "files = get_ipython().getoutput('ls')\n"),
    ("%%time\nz = 3", "get_ipython().run_cell_magic('time', '', 'z = 3\\n')\n"),
    ("def f(:\n    pass", "def f(:\n    pass"),                   # broken either way: reported as written
])
def test_cells_are_transformed_by_ipython(source, python):
    from autograder.runner.ipython_cells import to_python

    assert to_python(source) == python


def test_ipython_syntax_and_magics_grade_like_jupyter(grade):
    nb = solved_release()
    insert_after(nb, "imports", "%%writefile helper.py\ndef _add(a, b):\n    return a + b\n")
    insert_after(nb, "imports", "%matplotlib inline\nimport torch\ntorch?\n%load_ext autoreload\n%autoreload 2")
    cell(nb, "add").source = ("from helper import _add\nechoed = !echo hi\nassert echoed == ['hi'], echoed\n"
                              "add = _add\nadd?\n%time three = add(1, 2)\nassert three == 3\n"
                              "!pip install nothing-at-all\n%pip install nothing-either")
    cell(nb, "softmax").source = "%%time\n" + SOL["softmax"]
    cell(nb, "counter").source = "%%capture captured\nprint('noise')\n" + SOL["counter"]
    nb.cells.append(nbformat.v4.new_code_cell(
        "assert captured.stdout == 'noise\\n', captured.stdout\n"
        "import asyncio\nawait asyncio.sleep(0)\n"
        "%env GENLAB_TEST_VAR=1\nimport os\nassert os.environ['GENLAB_TEST_VAR'] == '1'\n"))
    result = grade(nb)
    assert result.notebook_issues == [] and result.score == FULL_MARKS, (result.notebook_issues, failed(result))


def test_an_error_inside_a_cell_magic_points_at_the_students_line(grade):
    nb = solved_release()
    cell(nb, "add").source = "%%time\ndef add(a, b):\n    return a + b\n1 / 0\n"
    result = grade(nb)
    assert any("raised ZeroDivisionError" in i and "line 4" in i and "1 / 0" in i for i in result.notebook_issues), \
        result.notebook_issues
    assert result.score == FULL_MARKS


def stripped(nb, ids=True):
    """The notebook as Colab saves it: no nbgrader metadata, no tags (and, optionally, new ids)."""
    nb = copy.deepcopy(nb)
    for i, c in enumerate(nb.cells):
        c.metadata.pop("nbgrader", None)
        c.metadata.pop("tags", None)
        if not ids:
            c["id"] = f"colab-{i:03d}"
    return nb


@pytest.mark.parametrize("ids", [True, False], ids=["ids-kept", "ids-new"])
def test_a_notebook_without_nbgrader_metadata_is_restored_never_accused(grade, ids):
    result = grade(stripped(solved_release(), ids=ids))
    assert result.notebook_issues == [], result.notebook_issues
    assert result.score == FULL_MARKS        # the training cell (an endless loop) was recognised and skipped


def test_a_stripped_notebooks_copies_of_locked_cells_never_run(grade):
    nb = solved_release()
    cell(nb, "check_add").source = "raise RuntimeError('the student copy of check_add ran')"
    train = copy.deepcopy(cell(nb, "train"))
    nb.cells.append(train)                    # a second copy of the endless training cell
    result = grade(stripped(nb, ids=False))
    issues = "\n".join(result.notebook_issues)
    assert "cell 'check_add' was modified; the original was restored" in issues
    assert "a copy of the protected cell 'train' was found; it was removed, not run" in issues
    assert "student copy" not in issues and "stopped the worker" not in issues
    assert result.score == FULL_MARKS


LOAD_TESTS = '''
import pytest
import torch

@pytest.mark.points(1)
def test_loads_only_what_it_needs(submission):
    net = submission.function("Net")()
    state = {"proj.weight": torch.ones(2, 2), "proj.bias": torch.zeros(2)}
    data = submission.probe("load_state", module=net, state=state, exact=True)
    assert data["buffers"] == ["scale"], data
    out = net(torch.ones(1, 2))
    assert torch.equal(out, torch.full((1, 2), 4.0)), out
'''
NET = ("class Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
       "        self.proj = torch.nn.Linear(2, 2)\n        self.register_buffer('scale', torch.tensor(2.0))\n"
       "    def forward(self, x):\n        return self.proj(x) * self.scale\n")


def test_a_module_that_registers_a_buffer_loads_the_weights_a_test_gives(tmp_path, grade):
    lab = lab_copy(tmp_path, extra_files={"test_load.py": LOAD_TESTS})
    assert grade(solved_release({"net": NET}), lab_=lab).score == FULL_MARKS + 1
    wrong = NET.replace("self.proj = torch.nn.Linear(2, 2)", "self.proj = torch.nn.Linear(2, 2)\n"
                        "        self.extra = torch.nn.Linear(2, 2)")
    result = grade(solved_release({"net": wrong}), lab_=lab)
    assert "parameters the test did not expect: extra.bias, extra.weight" in failed(result)["load::test_loads_only_what_it_needs"]


def test_release_notebook_cells_match_themselves():
    from autograder.runner.cell_match import match

    release = nbformat.read(RELEASE, as_version=4)
    found = match(stripped(release, ids=False).cells, release.cells)
    assert {gid for gid in found.values()} == {grade_id(c) for c in release.cells if grade_id(c)}
