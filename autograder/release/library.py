"""Copy the ``genlab`` package to a folder with the labs' graded parts stubbed.

``stub_library(dest, labs)``: every ``graded`` entry of ``labs`` is stubbed. One build serves
both readers: ``genlab release`` ships it to students, and the grader's worker imports it
(``autograder/runner/worker_library.py``).

A lab's ``graded`` never names ``genlab.checks.*``: the public checks and their bug-namers
(``labNN_bugs``) stay, because they say *which* bug a student's answer has, and the probes,
which run in the worker, build on their helpers (lab 01's ``ProbeLM``). What in them computes
a graded answer is an ``@oracle`` (``genlab.checks.recorded``): every oracle of the built
labs' checks modules (``genlab/checks/labNN*.py``) is stubbed, and answers from the lab's
recording (``recorded/labNN.pt``, made by ``make recordings``) on the checks' own inputs.
``genlab release`` first requires those recordings to be current
(``autograder.release.recordings``); the worker's copy does not, since no public check runs
in the worker.

The full library in the repository is never modified.
"""
from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from autograder.runner.lab import Lab

from .stubs import Part, StubError, drop_dead_private, names_used, stub_oracles, stub_source

LIBRARY = Path(__file__).resolve().parents[2] / "shared" / "genlab"


@dataclass(frozen=True)
class StubReport:
    """What ``stub_library`` did: ``stubbed`` ``{module: [names]}``, ``dropped`` private helpers."""

    package: Path
    stubbed: dict[str, list[str]]
    dropped: dict[str, list[str]]

    def count(self) -> int:
        return sum(len(v) for v in self.stubbed.values())


def graded_parts(labs: Iterable[Lab]) -> list[Part]:
    """The ``graded`` entries of ``labs``, as the parts to stub."""
    parts = []
    for lab in labs:
        for entry in lab.graded:
            part = Part.parse(entry, lab.number, lab.display_title)
            if part.module.startswith("genlab.checks."):
                raise StubError(f"{lab.name}: graded entry {entry!r} is in genlab.checks; the public checks "
                                "and the probes need those modules whole (block them in `blocked` instead)")
            parts.append(part)
    return parts


def module_file(package: Path, module: str) -> Path:
    """``genlab.nn.attention`` -> ``<package>/nn/attention.py`` (or ``.../__init__.py``)."""
    rel = module.split(".")[1:]
    candidates = [package.joinpath(*rel).with_suffix(".py"), package.joinpath(*rel, "__init__.py")]
    for path in candidates:
        if rel and path.is_file():
            return path
    raise StubError(f"graded module {module} does not exist (looked for {candidates[0]})")


def copy_library(dest: Path, source: Path = LIBRARY) -> Path:
    """Copy the package (sources and package data, no caches) to ``dest/genlab``."""
    target = dest / "genlab"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
    return target


def stub_library(dest: Path, labs: Sequence[Lab], source: Path = LIBRARY) -> StubReport:
    """Write ``dest/genlab``: a copy of ``source`` with the graded parts of ``labs`` stubbed."""
    package = copy_library(Path(dest), source)
    by_module: dict[str, list[Part]] = defaultdict(list)
    for part in graded_parts(labs):
        by_module[part.module].append(part)
    stubbed: dict[str, list[str]] = {}
    for module, parts in sorted(by_module.items()):
        path = module_file(package, module)
        new, names = stub_source(path.read_text(encoding="utf-8"), parts, filename=str(path))
        path.write_text(new, encoding="utf-8")
        stubbed[module] = names
    for lab in labs:
        for path in sorted((package / "checks").glob(f"lab{lab.number}*.py")):
            module = f"genlab.checks.{path.stem}"
            new, names = stub_oracles(path.read_text(encoding="utf-8"), module, filename=str(path))
            if names:
                path.write_text(new, encoding="utf-8")
                stubbed[module] = names
    files = sorted(package.rglob("*.py"))
    texts = {p: p.read_text(encoding="utf-8") for p in files}
    used = {p: names_used(t) for p, t in texts.items()}
    dropped: dict[str, list[str]] = {}
    for module in stubbed:
        path = module_file(package, module)
        elsewhere = set().union(*(u for p, u in used.items() if p != path))
        new, gone = drop_dead_private(texts[path], elsewhere)
        if gone:
            path.write_text(new, encoding="utf-8")
            texts[path], used[path] = new, names_used(new)
            dropped[module] = gone
    for path, text in texts.items():   # every file still parses: a broken stub fails here, not on import
        compile(text, str(path), "exec")
    return StubReport(package, stubbed, dropped)
