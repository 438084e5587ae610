"""Write batch results into nbgrader's gradebook, through ``nbgrader.api.Gradebook``.

Mapping (so that ``nbgrader export`` and formgrader's gradebook views work):

- assignment = the lab name (``03_transformer``), notebook = the release notebook's stem;
- one grade cell per hidden test (name = the test's name, ``max_score`` = its points,
  type ``code``), so formgrader shows the per-test breakdown;
- one student and one submission per result (the nbgrader ``timestamp.txt`` when the
  submission came from an nbgrader tree; one that nbgrader cannot parse is left out and
  reported, never a reason to stop: each student is written on its own, and a student that
  cannot be written is rolled back, reported in ``problems`` and the others still go in);
- each grade's ``auto_score`` = the test's score. A test that was not run (a ``gpu`` test
  on a CPU runner) gets ``auto_score = None`` and ``needs_manual_grade = True``: it counts
  0 for now and formgrader flags it. A submission whose grader died is flagged the same way.
  A manual score that an instructor entered in formgrader is never overwritten.

Any SQLAlchemy URL nbgrader accepts works: ``sqlite:///gradebook.db`` (a bare path
``gradebook.db`` is taken as SQLite too) or ``postgresql://user:pass@host/db`` (needs a
driver: ``pip install 'psycopg[binary]'``, SQLAlchemy's default for ``postgresql://``, or
``psycopg2-binary``, used automatically when it is the only one installed).
"""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path

from autograder.runner.results import SubmissionResult


class GradebookError(RuntimeError):
    """The gradebook could not be opened or written (message says which URL and why)."""


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def normalize_url(url: str) -> str:
    """``gradebook.db`` -> ``sqlite:////abs/gradebook.db``; other URLs pass through, except that
    a plain ``postgresql://`` URL uses psycopg2 when that is the only driver installed
    (SQLAlchemy >= 2.1 would otherwise look for psycopg 3)."""
    if "://" not in url:
        return f"sqlite:///{Path(url).resolve()}"
    if url.startswith(("postgresql://", "postgres://")) and not _has("psycopg") and _has("psycopg2"):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


@contextlib.contextmanager
def _alembic_head():
    """nbgrader stamps a new database with its alembic head by running the ``alembic`` command
    (a second Python start, seconds, and it must be on PATH, which it is not when genlab runs
    as ``.venv/bin/genlab``). Read the same head in-process instead; fall back to nbgrader's
    own way, with this Python's bin folder on PATH, if that fails."""
    import nbgrader.api as api

    original = api.get_alembic_version

    def head() -> str:
        try:
            from alembic.script import ScriptDirectory

            found = ScriptDirectory(str(Path(api.__file__).parent / "alembic")).get_current_head()
            if found:
                return found
        except Exception:
            pass
        old = os.environ.get("PATH", "")
        os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + old
        try:
            return original()
        finally:
            os.environ["PATH"] = old

    api.get_alembic_version = head
    try:
        yield
    finally:
        api.get_alembic_version = original


def write_gradebook(
    url: str,
    lab: str,
    notebook: str,
    results: Iterable[SubmissionResult],
    *,
    complete: dict[str, bool] | None = None,
    timestamps: dict[str, str | None] | None = None,
    course_id: str | None = None,
    problems: list[str] | None = None,
) -> int:
    """Create/update ``lab`` in the gradebook at ``url`` and store every result's scores.

    ``notebook`` is the nbgrader notebook name (release notebook stem). ``complete[s]`` is
    False for a student whose grader died (flagged for manual grading). Returns the number
    of submissions written. Idempotent: writing the same results again changes nothing.
    ``problems`` (a list) receives one line per student that was written without its
    timestamp, or not at all.
    """
    from nbgrader.api import Grade as GradeRow  # imported here: it takes seconds
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.utils import parse_utc

    problems = problems if problems is not None else []

    results = sorted(results, key=lambda r: r.student)
    complete = complete or {}
    timestamps = timestamps or {}
    url = normalize_url(url)
    kwargs = {} if course_id is None else {"course_id": course_id}
    try:
        with _alembic_head():
            gb = Gradebook(url, **kwargs)
    except ModuleNotFoundError as e:
        raise GradebookError(f"cannot open gradebook {url}: its database driver {e.name!r} is not installed; "
                             "for PostgreSQL: pip install 'psycopg[binary]' (or psycopg2-binary)") from e
    except Exception as e:
        raise GradebookError(f"cannot open gradebook {url}: {type(e).__name__}: {e}") from e
    try:
        with gb, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SQLAlchemy noise from inside nbgrader's add_submission
            gb.update_or_create_assignment(lab)
            gb.update_or_create_notebook(notebook, lab)
            cells: dict[str, float] = {}
            for r in results:
                for t in r.tests:
                    cells.setdefault(t.name, t.points)
            for name, points in cells.items():
                gb.update_or_create_grade_cell(name, notebook, lab, max_score=float(points), cell_type="code")
            nb_row = gb.find_notebook(notebook, lab)
            cell_ids = {c.name: c.id for c in nb_row.grade_cells}
            for nb in nb_row.submissions:  # grade rows for cells added after a submission existed
                have = {g.cell_id for g in nb.grades}
                for cid in cell_ids.values():
                    if cid not in have:
                        gb.db.add(GradeRow(cell_id=cid, notebook=nb))
            gb.db.commit()
            written = 0
            for r in results:
                try:
                    _write_student(gb, r, lab, notebook, cell_ids, timestamps.get(r.student),
                                   not complete.get(r.student, True), parse_utc, MissingEntry, problems)
                    written += 1
                except Exception as e:   # this student only: undo its half-written rows, go on
                    gb.db.rollback()
                    problems.append(f"{r.student}: not written ({type(e).__name__}: {str(e)[:200]})")
    except GradebookError:
        raise
    except Exception as e:
        raise GradebookError(f"writing to gradebook {url} failed: {type(e).__name__}: {e}") from e
    return written


def _write_student(gb, r: SubmissionResult, lab: str, notebook: str, cell_ids: dict, stamp: str | None,
                   died: bool, parse_utc, MissingEntry, problems: list[str]) -> None:
    """One student's submission and grades, committed together."""
    kwargs = {}
    if stamp:
        try:
            parse_utc(stamp)
            kwargs["timestamp"] = stamp
        except Exception:
            problems.append(f"{r.student}: timestamp.txt {stamp[:60]!r} is not a date nbgrader can read; "
                            "the submission was written without it")
    gb.update_or_create_student(r.student)
    gb.update_or_create_submission(lab, r.student, **kwargs)
    by_name = {t.name: t for t in r.tests}
    for name in cell_ids:
        try:
            grade = gb.find_grade(name, notebook, lab, r.student)
        except MissingEntry:
            continue
        t = by_name.get(name)
        if t is None or t.status == "not_run":
            grade.auto_score = None if (t is not None or died) else 0.0
        else:
            grade.auto_score = float(t.score)
        grade.needs_manual_grade = grade.auto_score is None or grade.manual_score is not None
    gb.db.commit()
