"""The instructor's similarity report: robust to renaming and reformatting, against the
references, the solution and every other submission; never in a student's files."""
import csv
import functools
import inspect

import nbformat
import pytest
import torch.nn.functional as F

from autograder.runner import cli, similarity
from autograder.runner.batch import grade_batch
from autograder.runner.discover import Handin
from autograder.runner.lab import AUTOGRADER_DIR, Lab

from .helpers import FIXTURE_LAB, fake_command

SOURCE = FIXTURE_LAB / "source" / "fixture.ipynb"
RENAMED = '''def softmax(scores):   # the solution, renamed and reflowed
    centred = scores - scores.max(dim = -1,
                                  keepdim = True).values
    z = centred.exp()

    return z / z.sum(dim=-1, keepdim=True)
'''
OWN = '''def softmax(x):
    rows = []
    for row in x.reshape(-1, x.shape[-1]):
        top = max(row.tolist())
        weights = [math.exp(v - top) for v in row.tolist()]
        rows.append(torch.tensor([w / sum(weights) for w in weights]))
    return torch.stack(rows).reshape(x.shape)
'''
DELEGATES = inspect.getsource(F.softmax)   # the library's own code, pasted


def notebook(tmp_path, name, softmax=None, strip=False):
    nb = nbformat.read(SOURCE, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "softmax" and softmax is not None:
            cell.source = softmax
        if strip:
            cell.metadata.pop("nbgrader", None)
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, str(path))
    return Handin(name, path, "file")


def by(rows, part, student, kind, other=None):
    return next(r.similarity for r in rows if (r.part, r.student, r.kind) == (part, student, kind)
                and (other is None or r.other == other))


def test_fingerprints_ignore_names_layout_and_docstrings():
    a = similarity.fingerprints("def f(x):\n    '''doc'''\n    y = x * 2\n    return y.sum(dim=0) + 1\n")
    b = similarity.fingerprints("def g(v):\n    w = (v *\n         2)\n    return w.sum(dim = 0) + 7  # note\n")
    c = similarity.fingerprints("def f(x):\n    return [i for i in range(x)]\n")
    assert a and similarity.share(a, b) == 1.0 and similarity.share(a, c) < 0.5


def test_report_compares_with_references_solution_and_each_other(tmp_path):
    lab = Lab.load(FIXTURE_LAB)
    handins = [notebook(tmp_path, "ann"), notebook(tmp_path, "ben", RENAMED), notebook(tmp_path, "cat", OWN),
               notebook(tmp_path, "dan", RENAMED, strip=True), notebook(tmp_path, "eve", DELEGATES)]
    rows = similarity.write_similarity(lab, handins, tmp_path / "out")
    assert by(rows, "softmax", "ann", "solution") == 1.0
    assert by(rows, "softmax", "ben", "solution") == 1.0            # renamed and reflowed: still a copy
    assert by(rows, "softmax", "ben", "student", "dan") == 1.0      # found although Colab stripped the metadata
    assert by(rows, "softmax", "cat", "solution") < 0.5 and by(rows, "softmax", "ann", "student", "cat") < 0.5
    assert by(rows, "softmax", "eve", "reference") > 0.6            # the library's own code, pasted
    assert [r.other for r in rows if (r.student, r.kind, r.part) == ("eve", "reference", "softmax")] == [
        "torch.nn.functional.softmax"]
    table = list(csv.DictReader((tmp_path / "out" / "similarity.csv").open()))
    assert {r["kind"] for r in table} == {"reference", "solution", "student"}
    pairs = [(r["student"], r["compared_with"]) for r in table if r["kind"] == "student" and r["part"] == "softmax"]
    assert len(pairs) == 10 and len(set(map(frozenset, pairs))) == 10   # each pair of five once
    text = similarity.summary(rows, limit=100)
    assert "softmax: ben ~ the solution  100%" in text and "softmax: cat ~" not in text


def test_the_report_is_the_instructors_only(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "grade_batch", functools.partial(grade_batch, command=fake_command, progress=False))
    subs = tmp_path / "subs"
    subs.mkdir()
    for h in (notebook(subs, "ann"), notebook(subs, "ben", RENAMED)):
        nb = nbformat.read(h.notebook, as_version=4)
        nb.metadata["fake"] = {"passed": ["test_alpha"]}
        nbformat.write(nb, str(h.notebook))
    out = tmp_path / "out"
    assert cli.main(["grade", str(FIXTURE_LAB), str(subs), "--out", str(out)]) == 0
    stdout, stderr = capsys.readouterr()
    assert "warning" not in stderr, stderr
    assert "Similarity (instructor only" in stdout and "ann ~ ben" in stdout
    assert (out / "similarity.csv").is_file()
    for student in ("ann", "ben"):
        for path in (out / student).iterdir():
            assert "imilar" not in path.read_text(), path


def _imported(key: str):
    """The object ``key`` ("torch.nn.LSTMCell", "genlab.nn.attention.MultiHeadAttention.forward") names."""
    import importlib

    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj, rest = importlib.import_module(".".join(parts[:i])), parts[i:]
            break
        except ImportError:
            continue
    for name in rest:
        obj = getattr(obj, name)
    return obj


@pytest.mark.parametrize("lab_folder", sorted(p.name for p in AUTOGRADER_DIR.glob("lab*") if (p / "lab.toml").is_file()))
def test_references_are_read_from_source_as_inspect_reads_them(lab_folder):
    """Every lab's blocked references, genlab's and torch's (re-exports followed), are fingerprinted
    from their files exactly as ``inspect.getsource`` gives them; only compiled ones are missing."""
    import textwrap

    from autograder.runner import worker_blockers

    lab = Lab.load(AUTOGRADER_DIR / lab_folder)
    refs = similarity.references(lab)
    expected = {}
    for ref in lab.blocked:
        for single in worker_blockers.expand(ref):
            key = single.replace(":", ".")
            try:
                source = inspect.getsource(_imported(key))
            except (TypeError, OSError, AttributeError):   # compiled: no source to compare with
                continue
            expected[key] = similarity.fingerprints(textwrap.dedent(source))
    assert refs == expected
    assert len(refs) >= 3


def test_references_import_neither_torch_nor_the_models():
    import subprocess
    import sys

    code = ("import sys; from autograder.runner import similarity; from autograder.runner.lab import Lab, AUTOGRADER_DIR; "
            "[similarity.references(Lab.load(AUTOGRADER_DIR / n)) for n in ('lab05_gan', 'lab01_rnn', 'lab00_precision')]; "
            "print(sorted(m for m in ('torch', 'lightning', 'genlab.models.gan') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
