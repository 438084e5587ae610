"""The library a sandboxed worker imports: genlab with every graded part stubbed.

The grader's hidden tests compare a submission against genlab's reference implementations,
so the grader imports the full library. The worker, which runs the submission, must not be
able to reach them by any route (a wrapper's ``__wrapped__``, a module reload, a base class,
a file read of the source): blocking recognises spellings, removal does not need to. So the
worker gets the same copy of genlab that students get (``autograder.release.library.
stub_library``): every library part that any lab grades (each
lab.toml's ``graded``) is a stub raising ``GradedPartError``, and the full library is hidden
from it (``sandbox.hidden_paths``). The public checks' oracles (``@oracle``, the formulas of
the graded answers) are stubs too and answer only from the recordings of the checks' own
inputs; the rest of ``genlab.checks`` stays, since the lab's probes, which run in the worker,
build on its helpers (lab 01's ``ProbeLM``); a call to the bug-namers from the notebook stays
blocked (``lab.toml``'s ``blocked``).

``worker_library()`` builds that copy once per library version and set of labs, under the
system's temporary folder (``genlab-worker-library-<key>/genlab``, readable by the
workers' uids), and returns the folder that holds it. Concurrent graders race safely: each
builds in a private folder and renames it into place; the loser uses the winner's copy.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import LabError

PREFIX = "genlab-worker-library-"


def _source() -> Path:
    from autograder.release.library import LIBRARY

    return LIBRARY


def _labs():
    from autograder.release.bundle import all_labs

    return all_labs()


def build_key(source: Path, labs) -> str:
    """A digest of the library's files and of every lab's graded entries."""
    h = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(source)).encode() + b"\0")
        h.update(path.read_bytes())
    for lab in labs:
        h.update(lab.name.encode() + b"\0" + "\0".join(lab.graded).encode() + b"\1")
    return h.hexdigest()[:20]


def worker_library(cache: Path | None = None) -> Path:
    """The folder whose ``genlab`` is the worker's stubbed library (built if missing)."""
    from autograder.release.library import stub_library
    from autograder.release.stubs import StubError

    source, labs = _source(), _labs()
    if not source.is_dir():
        raise LabError(f"genlab's sources are not at {source}: the worker's library cannot be built")
    cache = Path(cache or tempfile.gettempdir())
    final = cache / (PREFIX + build_key(source, labs))
    if (final / "genlab" / "__init__.py").is_file():
        return final
    work = Path(tempfile.mkdtemp(prefix=PREFIX + "build-", dir=cache))
    try:
        try:
            stub_library(work, labs, source=source)
        except StubError as exc:
            raise LabError(f"the worker's library could not be built: {exc}") from None
        for root, _dirs, files in os.walk(work):
            os.chmod(root, 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        try:
            os.rename(work, final)
        except OSError:   # another grader got there first
            if not (final / "genlab" / "__init__.py").is_file():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return final
