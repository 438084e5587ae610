"""Fixtures for the student-release tests: one bundle per session, and fresh virtual
environments that hold only the student wheel (plus this venv's third-party packages).

A fresh venv is made offline and fast: ``python -m venv --without-pip``, then a ``.pth``
line that appends an *overlay* folder: symlinks to every entry of this venv's
site-packages except genlab's own (its editable finder and metadata) and autograder's.
So torch, lightning and pip come from here, and ``genlab`` only from the wheel; pip never
sees (and so never uninstalls) the developer's editable genlab.
"""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from autograder.release.bundle import all_labs, write_bundle
from autograder.release.wheel import LOCAL_VERSION, project_metadata

DEV_SITE = Path(sysconfig.get_paths()["purelib"])
HIDDEN_FROM_VENV = ("genlab", "__editable__", "__editable___genlab", "autograder")


def _overlay(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for entry in DEV_SITE.iterdir():
        if entry.name.startswith(HIDDEN_FROM_VENV) or entry.suffix == ".pth":
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


class StudentVenv:
    """A fresh venv at ``root``; ``run`` executes its python with ``PATH`` leading to it."""

    def __init__(self, root: Path, overlay: Path):
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
        self.root = root
        self.python = root / "bin" / "python"
        site = Path(self.run("import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
        (site / "dev-third-party.pth").write_text(f"{overlay}\n")
        self.site = site

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.update(MPLBACKEND="Agg", OMP_WAIT_POLICY="PASSIVE", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
        return env

    def run(self, code: str, check: bool = True, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
        result = subprocess.run([str(self.python), "-c", code], capture_output=True, text=True,
                                env=self.env(**env), cwd=self.root, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"the student venv's python failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def pip_install_wheel(self, wheel: Path) -> None:
        subprocess.run([str(self.python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                       check=True, env=self.env(), capture_output=True)


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    """The student bundle of every lab, its install cells pointing at its own wheel on disk."""
    out = tmp_path_factory.mktemp("release") / "student"
    wheel = out / "wheel" / f"genlab-{project_metadata()['version']}+{LOCAL_VERSION}-py3-none-any.whl"
    bundle = write_bundle(out, str(wheel), all_labs(), progress=lambda _: None)
    assert bundle.wheel == wheel
    return bundle


@pytest.fixture(scope="session")
def overlay(tmp_path_factory):
    return _overlay(tmp_path_factory.mktemp("overlay") / "site")


@pytest.fixture(scope="session")
def student_venv(bundle, overlay, tmp_path_factory):
    """A fresh venv with the student wheel installed (``pip install --no-deps --no-index``)."""
    venv = StudentVenv(tmp_path_factory.mktemp("venv") / "student", overlay)
    venv.pip_install_wheel(bundle.wheel)
    return venv


@pytest.fixture()
def bare_venv(overlay, tmp_path):
    """A fresh venv without genlab."""
    return StudentVenv(tmp_path / "bare", overlay)
