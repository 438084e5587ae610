"""The worker imports genlab with every graded part stubbed; the full library is out of reach."""
from __future__ import annotations

import stat

from autograder.runner import sandbox, worker_library
from autograder.runner.notebook import CodeCell
from autograder.runner.submission import Submission
from autograder.runner.worker_client import WorkerHandle

from .conftest import both_spawn_modes

REAL = sandbox.full_library_paths()[0]

PROBE = f"""
import os, genlab, genlab.nn.gan, genlab.nn.attention
where = os.path.dirname(genlab.__file__)
try:
    genlab.nn.gan.discriminator_loss(None, None)
    stubbed = "ran the reference"
except Exception as exc:
    stubbed = type(exc).__name__ + ": " + str(exc)
real_visible = os.path.isdir({REAL!r}) and bool(os.listdir({REAL!r}))
import importlib
importlib.reload(genlab.nn.gan)
try:
    genlab.nn.gan.discriminator_loss(None, None)
    reloaded = "ran the reference"
except Exception as exc:
    reloaded = type(exc).__name__
writable = os.access(where, os.W_OK)
"""


@both_spawn_modes
def test_the_worker_gets_stubs_and_never_the_full_library(lab, spawn_mode):
    handle = WorkerHandle(lab, [CodeCell(index=1, source=PROBE)])
    handle.start()
    sub = Submission(handle, lab)
    try:
        assert sub.get("where").startswith(str(worker_library.worker_library())), sub.get("where")
        assert sub.get("stubbed").startswith("GradedPartError"), sub.get("stubbed")
        assert "lab 05" in sub.get("stubbed")
        assert sub.get("reloaded") == "GradedPartError", "a module reload brought the reference back"
        assert sub.get("real_visible") is False, "the full library is readable from the worker"
        assert sub.get("writable") is False
    finally:
        handle.close()


def test_the_build_is_cached_and_follows_the_library(tmp_path, monkeypatch):
    source = tmp_path / "src" / "genlab"
    (source / "nn").mkdir(parents=True)
    (source / "__init__.py").write_text("")
    (source / "nn" / "__init__.py").write_text("")
    (source / "nn" / "gan.py").write_text('def discriminator_loss(a, b):\n    """Doc."""\n    return a + b\n')

    class FakeLab:
        name, number, display_title = "05_gan", "05", "the GAN"
        graded = ("genlab.nn.gan:discriminator_loss",)

    monkeypatch.setattr(worker_library, "_source", lambda: source)
    monkeypatch.setattr(worker_library, "_labs", lambda: [FakeLab()])
    first = worker_library.worker_library(tmp_path)
    again = worker_library.worker_library(tmp_path)
    assert first == again
    text = (first / "genlab" / "nn" / "gan.py").read_text()
    assert "GradedPartError" in text and "return a + b" not in text
    mode = (first / "genlab" / "nn" / "gan.py").stat().st_mode
    assert mode & stat.S_IROTH and not mode & (stat.S_IWOTH | stat.S_IWGRP)
    (source / "nn" / "gan.py").write_text('def discriminator_loss(a, b):\n    """Doc."""\n    return a - b\n')
    assert worker_library.worker_library(tmp_path) != first, "a changed library must be rebuilt"
