"""Scores into nbgrader's gradebook (SQLite always; PostgreSQL when a server is at hand)."""
import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autograder.runner.gradebook import GradebookError, _has, normalize_url, write_gradebook
from autograder.runner.results import SubmissionResult, TestOutcome

LAB, NB = "03_transformer", "transformer"
VENV_BIN = str(Path(sys.executable).parent)


def result(student, scores, gpu=False, error=None):
    tests = [TestOutcome(name, pts, got, "passed" if got == pts else "failed", "", "p")
             for name, pts, got in scores]
    if gpu:
        tests.append(TestOutcome("test_gpu", 1, 0, "not_run", "", "p"))
    return SubmissionResult(student, LAB, tests, error=error)


RESULTS = [
    result("alice", [("test_a", 2, 2), ("test_b", 3, 3)], gpu=True),
    result("bob", [("test_a", 2, 2), ("test_b", 3, 0)], gpu=True),
    SubmissionResult("carol", LAB, error="grader died"),
]


def read_back(url):
    from nbgrader.api import Gradebook

    with Gradebook(url) as gb:
        a = gb.find_assignment(LAB)
        cells = {c.name: c.max_score for c in gb.find_notebook(NB, LAB).grade_cells}
        subs = {s.student.id: (s.score, s.max_score, s.needs_manual_grade) for s in a.submissions}
        grades = {(s, c): (g.auto_score, g.needs_manual_grade)
                  for s in subs for c in cells for g in [gb.find_grade(c, NB, LAB, s)]}
    return cells, subs, grades


def check_gradebook(url):
    n = write_gradebook(url, LAB, NB, RESULTS, complete={"carol": False},
                        timestamps={"alice": "2024-03-01 10:00:00 UTC"})
    assert n == 3
    cells, subs, grades = read_back(url)
    assert cells == {"test_a": 2, "test_b": 3, "test_gpu": 1}
    assert subs["alice"][:2] == (5, 6) and subs["bob"][:2] == (2, 6) and subs["carol"][:2] == (0, 6)
    assert grades[("alice", "test_gpu")] == (None, True)  # not run: flagged for a (GPU) regrade
    assert grades[("bob", "test_b")] == (0, False)
    assert grades[("carol", "test_a")] == (None, True)  # its grader died: flagged
    # idempotent, and a manual score given in formgrader survives a rewrite
    from nbgrader.api import Gradebook

    with Gradebook(url) as gb:
        gb.find_grade("test_b", NB, LAB, "bob").manual_score = 1.5
        gb.db.commit()
    write_gradebook(url, LAB, NB, RESULTS, complete={"carol": False})
    cells, subs, grades = read_back(url)
    assert subs["bob"][0] == 3.5 and grades[("bob", "test_b")] == (0, True)
    # a test added later gets grades for the submissions that already exist
    write_gradebook(url, LAB, NB, [result("dave", [("test_a", 2, 2), ("test_c", 4, 4)])])
    cells, subs, grades = read_back(url)
    assert cells["test_c"] == 4 and grades[("alice", "test_c")] == (None, True)
    assert subs["dave"][:2] == (6, 10)


def test_sqlite_gradebook(tmp_path):
    check_gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}")


def test_a_bare_path_means_sqlite(tmp_path):
    assert normalize_url(str(tmp_path / "g.db")) == f"sqlite:///{tmp_path / 'g.db'}"
    assert normalize_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_unusable_url_is_a_clear_error(tmp_path):
    with pytest.raises(GradebookError, match="cannot open gradebook"):
        write_gradebook(f"sqlite:///{tmp_path}/no/such/dir/g.db", LAB, NB, RESULTS)


def test_nbgrader_export_reads_our_gradebook(tmp_path):
    """The real `nbgrader export` CLI, in a course folder whose config points at our database."""
    db = tmp_path / "gradebook.db"
    write_gradebook(f"sqlite:///{db}", LAB, NB, RESULTS, complete={"carol": False})
    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.db_url = 'sqlite:///{db}'\n")
    env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([str(Path(VENV_BIN) / "nbgrader"), "export", "--to", "export.csv"], cwd=course,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["student_id"]: r for r in csv.DictReader((course / "export.csv").open())}
    assert set(rows) == {"alice", "bob", "carol"}
    assert {s: (float(r["raw_score"]), float(r["max_score"])) for s, r in rows.items()} == {
        "alice": (5, 6), "bob": (2, 6), "carol": (0, 6)}
    assert all(r["assignment"] == LAB for r in rows.values())


# --------------------------------------------------------------------------- PostgreSQL

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name):
    found = shutil.which(name)
    if found:
        return found
    cands = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(cands[-1]) if cands else None


@pytest.fixture(scope="module")
def postgres_url():
    """$GENLAB_TEST_POSTGRES_URL, else a throw-away server started from the installed binaries."""
    if os.environ.get("GENLAB_TEST_POSTGRES_URL"):
        yield os.environ["GENLAB_TEST_POSTGRES_URL"]
        return
    if not (_has("psycopg") or _has("psycopg2")):
        pytest.skip("no PostgreSQL driver: pip install 'psycopg[binary]' or psycopg2-binary")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server installed (Debian: apt-get install postgresql)")
    data = Path(tempfile.mkdtemp(prefix="genlab-pg-"))
    prefix = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        runuser = shutil.which("runuser")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            runuser = None
        if not runuser:
            pytest.skip("running as root and no 'postgres' user to run the server as")
        shutil.chown(data, "postgres")
        prefix = [runuser, "-u", "postgres", "--"]
    port = _free_port()
    try:
        subprocess.run([*prefix, initdb, "-D", str(data / "db"), "-A", "trust", "-U", "postgres"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run([*prefix, pg_ctl, "-D", str(data / "db"), "-l", str(data / "log"), "-w", "-o",
                        f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off", "start"],
                       check=True, capture_output=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        shutil.rmtree(data, ignore_errors=True)
        pytest.skip(f"could not start a PostgreSQL server: {e}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data / "db"), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.parametrize("driver", ["", "+psycopg2"])
def test_postgresql_gradebook(postgres_url, driver):
    """A plain postgresql:// URL (psycopg 3 if installed, else psycopg2) and an explicit psycopg2 one."""
    if driver and not _has(driver[1:]):
        pytest.skip(f"{driver[1:]} is not installed")
    from sqlalchemy import create_engine, text

    url = postgres_url.replace("postgresql://", f"postgresql{driver}://")
    engine = create_engine(normalize_url(url))
    with engine.connect() as conn:  # a fresh database per variant
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text(f"CREATE DATABASE gb{driver[1:]}"))
    engine.dispose()
    check_gradebook(url.rsplit("/", 1)[0] + f"/gb{driver[1:]}")
