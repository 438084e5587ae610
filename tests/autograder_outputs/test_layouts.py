"""Every supported layout gives the worker the library, and no copy of ``autograder/``.

The fixture solution, plus a cell that imports ``genlab`` and looks for a readable
``autograder`` folder on the worker's ``sys.path``, is graded in each layout; its feedback
must hold no error and no notebook issue:

* a local batch: ``genlab grade`` in this checkout (an editable install);
* the README's local Gradescope trial: the zip unpacked in a temporary root, ``run_autograder``
  with this virtual environment's Python (``GENLAB_GRADESCOPE_ROOT``);
* Gradescope's container: the same, with a Python whose site-packages holds an installed
  (not editable) copy of the project, ``autograder`` included, as ``setup.sh`` makes it.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.runner import gradescope
from autograder.runner.lab import Lab

from .helpers import FIXTURE_LAB, REPO

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.environ.get("GENLAB_SANDBOX") == "weak" or not sys.platform.startswith("linux"),
                                 reason="needs the mount namespace (full isolation) to hide autograder/")]

LIB_CELL = (
    "import os, sys\n"
    "import genlab\n"
    "from genlab.nn import masks\n"
    "assert masks.__file__.startswith(os.path.dirname(genlab.__file__))\n"
    "readable = [os.path.join(p, 'autograder') for p in sys.path if p and os.path.isdir(os.path.join(p, 'autograder'))\n"
    "            and os.listdir(os.path.join(p, 'autograder'))]\n"
    "assert not readable, f'autograder/ is readable at {readable}'\n"
)


def solution_with_library(path: Path) -> Path:
    nb = nbformat.read(FIXTURE_LAB / "source" / "fixture.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(LIB_CELL))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    return dict(env, PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""), **extra)


def assert_clean(results_json: dict, full: float) -> None:
    assert results_json["score"] == full, results_json
    notes = [ln for ln in results_json["output"].splitlines() if not ln.startswith(("Isolation:", "1 points come"))]
    assert notes == [], notes
    assert all(t.get("status") != "failed" for t in results_json["tests"]), results_json["tests"]


def test_local_batch(tmp_path):
    nb = solution_with_library(tmp_path / "subs" / "ann.ipynb")
    out = tmp_path / "grades"
    proc = subprocess.run([sys.executable, "-m", "autograder.runner.cli", "grade", str(FIXTURE_LAB), str(nb.parent),
                           "--out", str(out)], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_clean(json.loads((out / "ann" / "results.json").read_text()), 8)
    feedback = (out / "ann" / "feedback.md").read_text()
    assert "## Problem" not in feedback and "## Notebook issues" not in feedback


def _unpack(tmp_path: Path) -> Path:
    lab = Lab.load(FIXTURE_LAB)
    zpath = gradescope.build_zip(lab.folder, lab.release, tmp_path / "gs.zip")
    root = tmp_path / "ag"
    with zipfile.ZipFile(zpath) as zf:
        zf.extractall(root / "source")
        for info in zf.infolist():
            os.chmod(root / "source" / info.filename, (info.external_attr >> 16) & 0o777)
    solution_with_library(root / "submission" / lab.release.name)
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"email": "ada@uni.edu"}]}))
    return root


def _run_autograder(root: Path, python: str) -> dict:
    proc = subprocess.run([str(root / "source" / "run_autograder")], capture_output=True, text=True, timeout=600,
                          env=_env(GENLAB_GRADESCOPE_ROOT=str(root), GENLAB_GRADESCOPE_PYTHON=python))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((root / "results" / "results.json").read_text())


def test_local_gradescope_trial(tmp_path):
    root = _unpack(tmp_path)
    assert_clean(_run_autograder(root, sys.executable), 8)


def test_gradescope_container(tmp_path):
    """A Python with the project installed into its own site-packages (as setup.sh does), the
    rest of the dependencies reached through a .pth file (no network here to install them)."""
    root = _unpack(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    src = root / "source" / "genlab-src"
    shutil.copytree(src / "shared" / "genlab", site / "genlab")
    shutil.copytree(src / "autograder", site / "autograder")   # pip install ./genlab-src puts it there too
    assert_clean(_run_autograder(root, str(python)), 8)
