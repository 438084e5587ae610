"""Generate the student release ``labs/<lab>/`` from the solution ``solutions/<lab>/``.

nbgrader's ``generate_assignment`` does the work (solution regions become
``raise NotImplementedError()``, outputs are cleared, locked cells get checksums). It runs
in a scratch course directory without a gradebook, so the result depends only on the
solution notebook: regenerating it gives the same bytes, and a test compares the two.

    genlab labs                      # every lab in solutions/
    genlab labs 03_transformer       # one lab
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIR = "solutions"
RELEASE_DIR = "labs"


def available_labs(root: Path | None = None) -> list[str]:
    """Names of the labs that have a solution folder with at least one notebook."""
    source = Path(root or REPO_ROOT) / SOURCE_DIR
    if not source.is_dir():
        return []
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def _nbgrader_config(course_root: Path, lab: str):
    from traitlets.config import Config

    c = Config()
    c.CourseDirectory.root = str(course_root)
    c.CourseDirectory.source_directory = SOURCE_DIR
    c.CourseDirectory.release_directory = RELEASE_DIR
    c.CourseDirectory.course_id = "genlab"
    c.CourseDirectory.assignment_id = lab
    c.GenerateAssignment.no_database = True
    c.SaveCells.enabled = False
    c.BaseConverter.force = True
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    return c


def _generate_one(lab: str, root: Path, dest: Path) -> list[Path]:
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    src = root / SOURCE_DIR / lab
    if not src.is_dir() or not any(src.glob("*.ipynb")):
        known = ", ".join(available_labs(root)) or "none"
        raise ValueError(f"no solution notebooks in {src}; labs with solutions: {known}.")
    with tempfile.TemporaryDirectory(prefix="genlab-release-") as tmp:
        course = Path(tmp)
        shutil.copytree(src, course / SOURCE_DIR / lab, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        config = _nbgrader_config(course, lab)
        coursedir = CourseDirectory(config=config)
        converter = GenerateAssignment(coursedir=coursedir, config=config)
        converter.log.setLevel(logging.WARNING)
        converter.start()  # raises NbGraderException when a notebook is malformed
        built = course / RELEASE_DIR / lab
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(built, dest)
    return sorted(p for p in dest.rglob("*") if p.is_file())


def generate_release(lab: str | None = None, dest: str | Path | None = None,
                     root: str | Path | None = None) -> list[Path]:
    """Regenerate the student release of ``lab`` (``None``: every lab) and list the files written.

    ``dest`` replaces the release folder (default ``<root>/labs/<lab>``; with ``lab=None`` it
    is a parent folder that receives one subfolder per lab). ``root`` is the repository root.
    """
    root = Path(root or REPO_ROOT).resolve()
    labs = available_labs(root) if lab is None else [lab]
    if not labs:
        raise ValueError(f"no labs found under {root / SOURCE_DIR}.")
    written: list[Path] = []
    for name in labs:
        if dest is None:
            target = root / RELEASE_DIR / name
        elif lab is None:
            target = Path(dest) / name
        else:
            target = Path(dest)
        written += _generate_one(name, root, target.resolve())
    return written
