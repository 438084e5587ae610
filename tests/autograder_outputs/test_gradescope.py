"""The Gradescope autograder zip, and run_autograder against a fake /autograder root."""
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

from autograder.runner import gradescope

from .helpers import FIXTURE_LAB, REPO, make_nb


def fake_repo(root: Path) -> Path:
    (root / "shared" / "genlab" / "__pycache__").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "genlab"\ndependencies = ["torch>=2.4", "torchvision>=0.19", "tqdm>=4"]\n')
    (root / "constraints.txt").write_text("# exact builds\ntorch==2.14.1\ntorchvision == 0.29.1  # with torch\n")
    (root / "README.md").write_text("# genlab\n")
    (root / "shared" / "genlab" / "__init__.py").write_text("")
    (root / "shared" / "genlab" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    for rel in ("autograder/__init__.py", "autograder/runner/grade.py", "autograder/probes/autocast.py",
                "autograder/lab_a/lab.toml", "autograder/lab_a/test_one.py", "autograder/lab_b/lab.toml",
                "autograder/lab_b/test_secret.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("# " + rel)
    make_nb(root / "labs" / "a" / "a.ipynb")
    make_nb(root / "labs" / "b" / "b.ipynb")
    return root


def test_zip_has_scripts_project_and_only_this_labs_hidden_tests(tmp_path):
    repo = fake_repo(tmp_path / "repo")
    out = gradescope.build_zip(repo / "autograder" / "lab_a", repo / "labs" / "a" / "a.ipynb",
                               tmp_path / "gs.zip", repo=repo)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
        setup = zf.read("setup.sh").decode()
        run = zf.read("run_autograder").decode()
    assert names == {"setup.sh", "run_autograder", *(f"genlab-src/{p}" for p in (
        "pyproject.toml", "constraints.txt", "README.md", "shared/genlab/__init__.py", "autograder/__init__.py",
        "autograder/runner/grade.py", "autograder/probes/autocast.py", "autograder/lab_a/lab.toml",
        "autograder/lab_a/test_one.py", "labs/a/a.ipynb"))}
    assert stat.S_IMODE(modes["setup.sh"]) == 0o755 and stat.S_IMODE(modes["run_autograder"]) == 0o755
    assert stat.S_IMODE(modes["genlab-src/pyproject.toml"]) == 0o644
    assert setup.startswith("#!/usr/bin/env bash") and run.startswith("#!/usr/bin/env bash")
    assert 'pip install "torch==2.14.1" "torchvision==0.29.1"' in setup and "pip install ./genlab-src" in setup
    assert "GENLAB_GRADESCOPE_ROOT:-/autograder" in run and '"$SRC/autograder/lab_a"' in run
    assert "/results" in gradescope.__doc__
    # deterministic: same tree, same bytes
    again = gradescope.build_zip(repo / "autograder" / "lab_a", repo / "labs" / "a" / "a.ipynb",
                                 tmp_path / "gs2.zip", repo=repo)
    assert out.read_bytes() == again.read_bytes()


def test_pinned_requirements_come_from_the_constraints_file(tmp_path):
    pins = gradescope.pinned_requirements(REPO / "constraints.txt")
    assert any(p.startswith("torch==") for p in pins)
    assert all("==" in p and "#" not in p for p in pins)
    (tmp_path / "c.txt").write_text("# a comment\nfoo == 1.2  # why\nbar>=3\n\n")
    assert gradescope.pinned_requirements(tmp_path / "c.txt") == ["foo==1.2"]
    assert gradescope.pinned_requirements(tmp_path / "missing.txt") == []


def test_run_always_writes_a_results_json(tmp_path):
    (tmp_path / "submission").mkdir()
    assert gradescope.run(tmp_path, str(tmp_path / "no_such_lab")) == 0
    data = json.loads((tmp_path / "results" / "results.json").read_text())
    assert data["score"] == 0 and "could not grade" in data["output"] and data["tests"] == []


def test_run_autograder_grades_a_submission_in_a_fake_root(tmp_path):
    """Unzip as Gradescope does, then run run_autograder with the venv's Python."""
    from autograder.runner.lab import Lab

    lab = Lab.load(FIXTURE_LAB)
    zpath = gradescope.build_zip(lab.folder, lab.release, tmp_path / "gs.zip")
    root = tmp_path / "autograder"
    with zipfile.ZipFile(zpath) as zf:
        zf.extractall(root / "source")
        for info in zf.infolist():
            os.chmod(root / "source" / info.filename, (info.external_attr >> 16) & 0o777)
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    shutil.copy(lab.release, root / "submission" / lab.release.name)
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"email": "ada@uni.edu", "id": 1}]}))
    env = dict(os.environ, GENLAB_GRADESCOPE_ROOT=str(root), GENLAB_GRADESCOPE_PYTHON=sys.executable)
    proc = subprocess.run([str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((root / "results" / "results.json").read_text())
    assert data["tests"] and {"name", "score", "max_score", "output", "visibility"} <= set(data["tests"][0])
    assert "could not grade" not in data["output"]
    assert (root / "genlab-grades" / "ada@uni.edu" / "result.json").is_file()
    assert "ada@uni.edu" in proc.stdout
