"""``submission.seed``: hidden inputs drawn per submission, the same on a regrade."""
import nbformat

from autograder.runner.grade import code_seed
from autograder.runner.lab import Lab
from autograder.runner.notebook import prepare

from .conftest import FIXTURE, solved_release, write_nb


def test_the_seed_follows_the_code_not_the_outputs(tmp_path):
    lab = Lab.load(FIXTURE)
    nb = solved_release()
    first = code_seed(prepare(lab, write_nb(nb, tmp_path / "a.ipynb")).cells)
    again = code_seed(prepare(lab, write_nb(nb, tmp_path / "b.ipynb")).cells)
    assert first == again and 0 <= first < 2 ** 63
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="printed\n")]
    assert code_seed(prepare(lab, write_nb(nb, tmp_path / "c.ipynb")).cells) == first
    changed = solved_release({"softmax": "def softmax(x):\n    e = x.exp()\n    return e / e.sum(-1, keepdim=True)\n"})
    assert code_seed(prepare(lab, write_nb(changed, tmp_path / "d.ipynb")).cells) != first
