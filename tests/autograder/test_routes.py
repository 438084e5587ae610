"""The instructor's routes report (``routes.py``): names of routes the worker cannot refuse."""
import csv
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from autograder.runner.lab import REPO_ROOT, Lab
from autograder.runner.routes import find_routes, summary, write_routes


@dataclass
class _Handin:
    student: str
    notebook: str | None


@pytest.mark.parametrize("code, name", [
    ("import torch\ntorch._C.DisableTorchFunction().__enter__()\n", "DisableTorchFunction"),
    ("with torch._C.DisableTorchFunctionSubclass():\n    pass\n", "DisableTorchFunctionSubclass"),
    ("from torch.utils._python_dispatch import _pop_mode\n", "_pop_mode"),
    ("torch._C._pop_torch_function_stack()\n", "_pop_torch_function_stack"),
    ("class T(torch.Tensor):\n    @classmethod\n    def __torch_function__(cls, f, t, a=(), k=None):\n"
     "        return f(*a)\n", "__torch_function__"),
    ("import threading\n", "threading"),
    ("from concurrent.futures import ThreadPoolExecutor\n", "concurrent.futures"),
    ("import gc\nfns = [o for o in gc.get_objects() if callable(o)]\n", "gc.get_objects"),
    ("original = F.softmax.__wrapped__\n", "__wrapped__"),
    ("original = getattr(F.softmax, '__wrapped__')\n", "__wrapped__"),
    ("import importlib\nimportlib.reload(genlab.nn.attention)\n", "importlib.reload"),
    ("m = sys.modules['genlab.nn.attention']\n", "sys.modules"),
])
def test_each_route_is_found(code, name):
    assert name in [found for _, found, _ in find_routes(code)]


def test_comments_strings_and_honest_code_are_not_findings():
    code = ("# threading and DisableTorchFunction are not used here\n"
            "note = 'gc.get_objects() would be cheating'\n"
            "x = torch.softmax(torch.randn(3), -1)\n%timeit x.sum()\n")
    assert find_routes(code) == []
    assert find_routes("def broken(:\n") == []


@pytest.mark.parametrize("name", ["00_precision", "01_rnn", "02_seq2seq", "03_transformer", "04_vae", "05_gan"])
def test_no_solution_is_reported(name):
    """No false alarm on the honest notebooks the course ships."""
    lab = Lab.load(name)
    solution = REPO_ROOT / "solutions" / lab.name / lab.release.name
    nb = nbformat.read(solution, as_version=4)
    findings = [(i, f) for i, c in enumerate(nb.cells) if c.cell_type == "code" for f in find_routes(c.source)]
    assert findings == []


def test_write_routes_and_summary(tmp_path):
    lab = Lab.load("03_transformer")
    nb = nbformat.read(REPO_ROOT / "solutions" / lab.name / lab.release.name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import threading\n\n\nt = torch._C.DisableTorchFunction()"))
    path = tmp_path / "sneaky.ipynb"
    nbformat.write(nb, path)
    findings = write_routes(lab, [_Handin("=sneaky", str(path)), _Handin("missing", None)], tmp_path)
    rows = list(csv.DictReader((tmp_path / "routes.csv").open()))
    assert [(r["student"], r["cell"], r["line"], r["name"]) for r in rows] == [
        ("'=sneaky", str(len(nb.cells) - 1), "1", "threading"),
        ("'=sneaky", str(len(nb.cells) - 1), "4", "DisableTorchFunction"),
    ]
    text = summary(findings)
    assert text.startswith("Routes around the grader's watch (instructor only, routes.csv): 1 notebook(s)")
    assert "cell" in text and "DisableTorchFunction" in text
    assert Path(tmp_path / "routes.csv").read_text().count("\n") == 3
