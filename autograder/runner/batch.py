"""Grade many submissions, each in a fresh ``grade_one`` process, resumably.

Layout written under the output folder ``DIR`` (one folder per lab):

    DIR/<student>/result.json    our lossless SubmissionResult (what a rerun reads back)
    DIR/<student>/results.json   Gradescope's schema
    DIR/<student>/feedback.md    for the student
    DIR/<student>/grader.log     the grader's stdout/stderr, for the instructor only
    DIR/<student>/meta.json      notebook path + sha256, exit code, wall time; written last
    DIR/grades.csv               every student in DIR, rewritten after each submission

Every file is written atomically (write, fsync, rename). ``meta.json`` is written last
and marks a submission finished: a rerun skips a student whose ``meta.json`` says
``complete`` for the same lab and the same notebook bytes (sha256), unless ``force``.
A submission whose notebook changed since it was graded is graded again. A submission
whose grader process died (crash, signal, batch time limit) gets a score-0 result with
``error`` set, the batch goes on, and the next rerun tries it again; so does one whose
grader reported an internal error.

Killing the batch (SIGINT/SIGTERM/SIGHUP) stops the running graders and leaves every
finished submission on disk; SIGKILL does too (each grader is started with
PR_SET_PDEATHSIG on Linux, so none outlives the batch).

Each submission is graded by ``grade_one`` in a process of its own. On Linux that process
is forked from a ``_ForkServer`` that has already imported torch, pytest and the runner
(and never grades anything itself), which saves the seconds those imports take per
submission; ``GENLAB_FORK_SERVER=0`` starts a fresh ``python -m
autograder.runner.grade_one`` per submission instead.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from autograder.runner import reports
from autograder.runner.discover import Submission
from autograder.runner.results import SubmissionResult

LOG_TAIL_BYTES = 64 * 1024


class BatchError(RuntimeError):
    """The batch cannot start (output folder in use, or it holds another lab's results)."""


class BatchInterrupted(Exception):
    """Raised inside ``grade_batch`` when SIGINT/SIGTERM/SIGHUP arrives."""

    def __init__(self, signum: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


@dataclass(frozen=True)
class LabInfo:
    """What the batch layer needs to know about a lab.

    ``name``: nbgrader assignment name (``03_transformer``); ``ref``: the argument given to
    ``grade_one`` (the lab folder); ``notebook``: the release notebook's file name.
    """

    name: str
    ref: str
    notebook: str | None = None

    @classmethod
    def from_lab(cls, lab) -> LabInfo:
        """Adapt ``autograder.runner.lab.Lab``."""
        folder = next((getattr(lab, a) for a in ("path", "root", "dir", "folder") if getattr(lab, a, None)), None)
        release = getattr(lab, "release", None) or getattr(lab, "release_path", None)
        return cls(name=lab.name, ref=str(folder or lab.name), notebook=Path(release).name if release else None)


GradeCommand = Callable[[LabInfo, Path, str, Path], list[str]]


def grade_one_args(lab: LabInfo, notebook: Path, student: str, out: Path) -> list[str]:
    """``grade_one``'s arguments: ``LAB NOTEBOOK --student S --out OUT --log LOG``."""
    return [lab.ref, str(notebook), "--student", student, "--out", str(out), "--log", str(detail_log(out))]


def grade_one_command(lab: LabInfo, notebook: Path, student: str, out: Path) -> list[str]:
    """The real grader: ``python -m autograder.runner.grade_one ARGS`` (see ``grade_one_args``)."""
    return [sys.executable, "-m", "autograder.runner.grade_one", *grade_one_args(lab, notebook, student, out)]


def detail_log(out: Path) -> Path:
    """Where the grader writes its instructor log (pytest output, internal tracebacks)."""
    return Path(out).with_suffix(".log")


# grade_one's prefix for results that describe a grader fault, not the submission
# (autograder.runner.grade.INTERNAL_PREFIX): like a crash, retried on the next rerun.
INTERNAL_PREFIX = "internal grader error"


# On Linux, the grader is exec'd through this shim so that it dies with the batch even on SIGKILL.
_LAUNCHER = (
    "import ctypes,os,signal,sys\n"
    "try:\n ctypes.CDLL(None,use_errno=True).prctl(1,signal.SIGKILL)\n"  # PR_SET_PDEATHSIG
    "except Exception:\n pass\n"
    "if os.getppid()!=int(sys.argv[1]):\n os._exit(70)\n"
    "os.execvp(sys.argv[2],sys.argv[2:])\n"
)


def _wrap(cmd: list[str]) -> list[str]:
    if sys.platform.startswith("linux"):
        return [sys.executable, "-S", "-c", _LAUNCHER, str(os.getpid()), *cmd]
    return cmd


def fingerprint(sub: Submission) -> str:
    """sha256 of the submitted bytes (or of the problem text when nothing usable was sent)."""
    if sub.notebook is None:
        return "problem:" + hashlib.sha256((sub.problem or "").encode()).hexdigest()
    h = hashlib.sha256()
    with open(sub.notebook, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- the store

class ResultStore:
    """The output folder of one lab: reads back finished results, writes new ones."""

    def __init__(self, out_dir: Path, lab: str):
        self.dir = Path(out_dir)
        self.lab = lab
        self.results: dict[str, SubmissionResult] = {}
        self.warnings: list[str] = []
        for path in sorted(self.dir.glob("*/result.json")):
            try:
                r = SubmissionResult.from_json(path.read_text(encoding="utf-8"))
            except (OSError, ValueError, TypeError, KeyError) as e:
                self.warnings.append(f"{path}: unreadable ({e}); that student will be regraded if given")
                continue
            if r.lab != lab:
                raise BatchError(
                    f"{self.dir} already holds results for lab {r.lab!r} ({path.parent.name}); "
                    f"grade {lab!r} into another folder, e.g. --out {self.dir.parent / lab}")
            self.results[path.parent.name] = r

    def meta(self, student: str) -> dict | None:
        try:
            return json.loads((self.dir / student / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def is_finished(self, student: str, sha: str) -> bool:
        m = self.meta(student)
        return (student in self.results and isinstance(m, dict) and m.get("complete") is True
                and m.get("lab") == self.lab and m.get("sha256") == sha)

    def render(self, result: SubmissionResult) -> None:
        """(Re)write the files derived from a result: results.json and feedback.md."""
        d = self.dir / result.student
        reports.write_atomic(d / "results.json", reports.gradescope_json(result))
        reports.write_atomic(d / "feedback.md", reports.feedback_markdown(result))

    def save(self, result: SubmissionResult, meta: dict, log: str | None) -> None:
        d = self.dir / result.student
        if log is not None:
            reports.write_atomic(d / "grader.log", log)
        self.render(result)
        reports.write_atomic(d / "result.json", result.to_json() + "\n")
        reports.write_atomic(d / "meta.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
        self.results[result.student] = result
        self.write_csv()

    def write_csv(self) -> None:
        reports.write_atomic(self.dir / "grades.csv", reports.grades_csv(self.results.values()))


class _DirLock:
    """An exclusive flock on DIR/.lock: two batches never write one folder at once."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / ".lock"

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise BatchError(f"another `genlab grade` is writing {self.path.parent}; wait for it "
                             "or choose another --out") from None
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


# --------------------------------------------------------------------------- running graders

class _Proc:
    """A grader started with its own ``python`` (Popen), in its own session."""

    def __init__(self, argv: list[str], log_path: Path):
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(_wrap(argv), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def poll(self) -> int | None:
        return self.proc.poll()

    def unstarted(self) -> bool:
        return False

    def kill(self) -> None:
        _killpg(self.proc.pid)

    def wait(self) -> int | None:
        return self.proc.wait()


class _ForkServer:
    """A process that imports the grader's heavy modules (torch, pytest, the runner) once,
    then forks one fresh child per submission that runs ``grade_one.main(ARGS)`` and exits.

    Each submission still gets its own new process (nothing of one submission's grading is
    in the server, which never grades), minus the seconds of imports. Children run in their
    own session, die with the server (PR_SET_PDEATHSIG), which dies with the batch.
    Protocol: JSON lines; requests ``{"id", "argv", "log"}`` on the server's stdin; replies
    ``{"ready": true}``, ``{"id", "pid"}`` and ``{"id", "rc"}`` on its stdout.
    """

    PRELOAD = ("torch", "pytest", "nbformat", "autograder.runner.grade", "autograder.runner.grade_one",
               "_pytest.python", "_pytest.terminal", "_pytest.runner", "_pytest.fixtures", "_pytest.capture")

    def __init__(self, work: Path, module: str = "autograder.runner.grade_one", preload: tuple = PRELOAD):
        self.log_path = work / "fork-server.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                _wrap([sys.executable, "-m", "autograder.runner.batch", "--fork-server", str(work), module,
                       ",".join(preload)]),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buf = b""
        self.next_id = 0
        self.ready = False
        self.pids: dict[int, int] = {}
        self.rcs: dict[int, int] = {}

    @property
    def dead(self) -> bool:
        self.pump()
        return self.proc.poll() is not None

    def spawn(self, argv: list[str], log_path: Path) -> _Forked:
        self.next_id += 1
        line = json.dumps({"id": self.next_id, "argv": argv, "log": str(log_path)}) + "\n"
        try:
            self.proc.stdin.write(line.encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the server is dead: the run reports itself unstarted
        return _Forked(self, self.next_id)

    def pump(self) -> None:
        """Read whatever the server has said."""
        while True:
            try:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
            except BlockingIOError:
                break
            except OSError:
                break
            if not chunk:
                break
            self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("ready"):
                self.ready = True
            elif "rc" in msg:
                self.rcs[msg["id"]] = msg["rc"]
            elif "pid" in msg:
                self.pids[msg["id"]] = msg["pid"]

    def close(self) -> None:
        self.pump()
        for rid, pid in self.pids.items():
            if rid not in self.rcs:  # a reaped child's pid may already belong to someone else
                _killpg(pid)
        _killpg(self.proc.pid)
        self.proc.wait()
        self.log_path.unlink(missing_ok=True)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass

    def failure(self) -> str:
        """The last line the server wrote to stderr (why it died)."""
        lines = _tail(self.log_path).strip().splitlines()
        return lines[-1] if lines else ""


class _Forked:
    """One grader forked by the ``_ForkServer``."""

    def __init__(self, server: _ForkServer, rid: int):
        self.server, self.id = server, rid

    def poll(self) -> int | None:
        s = self.server
        s.pump()
        if self.id in s.rcs:
            return s.rcs[self.id]
        if s.proc.poll() is not None:
            s.pump()
            if self.id in s.rcs:
                return s.rcs[self.id]
            return -signal.SIGKILL  # died with the server (PR_SET_PDEATHSIG)
        return None

    def unstarted(self) -> bool:
        """The server died before forking this one: it can simply be started again."""
        return self.server.dead and self.id not in self.server.pids and self.id not in self.server.rcs

    def kill(self) -> None:
        pid = self.server.pids.get(self.id)
        if pid is not None and self.poll() is None:
            _killpg(pid)

    def wait(self) -> int | None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rc = self.poll()
            if rc is not None:
                return rc
            time.sleep(0.02)
        return -signal.SIGKILL


@dataclass
class _Running:
    sub: Submission
    sha: str
    proc: _Proc | _Forked
    tmp_out: Path
    log_path: Path
    started: float


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - LOG_TAIL_BYTES))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return ("[... earlier output cut ...]\n" + text) if size > LOG_TAIL_BYTES else text


def _died(rc: int | None, timed_out: float | None) -> str:
    if timed_out is not None:
        how = f"did not finish within the batch's limit of {timed_out:g} s per submission and was stopped"
    elif rc is not None and rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        how = f"was killed by {name}" + (" (often: out of memory)" if -rc == signal.SIGKILL else "")
    else:
        how = f"exited with code {rc} without writing a result"
    return (f"Grading did not finish: the grader process {how}. This is not a verdict on your "
            "code; the score is 0 for now and your instructor can regrade it.")


@dataclass
class BatchOutcome:
    """``results``: every result in DIR for this lab, by student (this batch's and earlier)."""

    results: dict[str, SubmissionResult]
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # the grader process died
    warnings: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def grade_batch(
    lab: LabInfo,
    submissions: list[Submission],
    out_dir: Path,
    *,
    jobs: int = 1,
    force: bool = False,
    command: GradeCommand = grade_one_command,
    timeout_s: float = 3600.0,
    progress: bool = True,
    stream: TextIO | None = None,
    poll_s: float = 0.05,
    fork_server: bool | None = None,
) -> BatchOutcome:
    """Grade ``submissions`` with up to ``jobs`` grader processes at once; see module doc.

    ``command(lab, notebook, student, out_json)`` builds the grader's argv (tests inject a
    fake grader here). With the real grader on Linux, ``fork_server`` (default on, unless
    ``GENLAB_FORK_SERVER=0``) forks each grader from a ``_ForkServer`` instead of starting
    a new ``python``. Raises ``BatchInterrupted`` on SIGINT/SIGTERM/SIGHUP after stopping
    the running graders; everything finished before that is on disk.
    """
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    stream = stream or sys.stderr
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with _DirLock(out_dir):
        store = ResultStore(out_dir, lab.name)
        outcome = BatchOutcome(results=store.results, warnings=list(store.warnings))
        work = out_dir / ".work"
        work.mkdir(exist_ok=True)
        for stale in work.iterdir():  # left by a killed run; we hold the lock, so nobody uses them
            stale.unlink(missing_ok=True)

        todo: deque[tuple[Submission, str]] = deque()
        for sub in submissions:
            sha = fingerprint(sub)
            if not force and store.is_finished(sub.student, sha):
                outcome.skipped.append(sub.student)
                store.render(store.results[sub.student])
            else:
                todo.append((sub, sha))
        store.write_csv()

        bar = tqdm(total=len(todo), desc=f"grading {lab.name}", unit="nb", file=stream,
                   disable=not progress or not todo, dynamic_ncols=True)
        running: list[_Running] = []
        if fork_server is None:
            fork_server = os.environ.get("GENLAB_FORK_SERVER", "1") != "0"
        use_server = (fork_server and command is grade_one_command and sys.platform.startswith("linux")
                      and any(sub.notebook is not None for sub, _ in todo))
        server = _ForkServer(work) if use_server else None

        def harvest(stopping: bool) -> bool:
            """Record every grader that has exited (or ran past the limit); True if any did."""
            any_done = False
            for run in list(running):
                if run.proc.unstarted():  # the fork server died before forking it: start it again
                    running.remove(run)
                    todo.appendleft((run.sub, run.sha))
                    continue
                rc = run.proc.poll()
                over = time.monotonic() - run.started > timeout_s
                if rc is None and (stopping or not over):
                    continue
                if rc is None:
                    run.proc.kill()
                    rc = run.proc.wait()
                running.remove(run)
                _record(store, lab, run.sub, run.sha, run, rc, None if stopping or not over else timeout_s,
                        time.monotonic() - run.started, outcome)
                bar.set_postfix_str(run.sub.student, refresh=False)
                bar.update(1)
                any_done = True
            return any_done

        signals = _SignalFlag()
        try:
            while (todo or running) and signals.signum is None:
                while todo and len(running) < jobs and signals.signum is None:
                    sub, sha = todo.popleft()
                    if sub.notebook is None:
                        _record(store, lab, sub, sha, None, None, None, 0.0, outcome)
                        bar.update(1)
                        continue
                    if server is not None and server.dead:
                        outcome.warnings.append(
                            "the grader's fork server stopped (" + (server.failure() or "no message")
                            + "); the remaining submissions start their own Python instead")
                        server.close()
                        server = None
                    running.append(_start(lab, sub, sha, work, command, server))
                if not harvest(stopping=False) and running:
                    time.sleep(poll_s)
            if signals.signum is not None:
                harvest(stopping=True)  # keep what finished while the signal arrived
                raise BatchInterrupted(signals.signum)
        finally:
            for run in running:
                run.proc.kill()
            for run in running:
                run.proc.wait()
                for path in (run.tmp_out, run.log_path, detail_log(run.tmp_out)):
                    path.unlink(missing_ok=True)
            if server is not None:
                server.close()
            signals.restore()
            bar.close()
    outcome.wall_s = time.monotonic() - t0
    return outcome


def _start(lab: LabInfo, sub: Submission, sha: str, work: Path, command: GradeCommand,
           server: _ForkServer | None) -> _Running:
    tag = f"{sub.student}.{os.getpid()}"
    tmp_out = work / f"{tag}.result.json"
    log_path = work / f"{tag}.log"
    if server is not None:
        proc = server.spawn(grade_one_args(lab, sub.notebook, sub.student, tmp_out), log_path)
    else:
        proc = _Proc(command(lab, sub.notebook, sub.student, tmp_out), log_path)
    return _Running(sub, sha, proc, tmp_out, log_path, time.monotonic())


def _killpg(pid: int) -> None:
    """SIGKILL a process's whole group (a grader runs the submission in children)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _record(store: ResultStore, lab: LabInfo, sub: Submission, sha: str, run: _Running | None,
            rc: int | None, timed_out: float | None, wall: float, outcome: BatchOutcome) -> None:
    """Turn a finished grader (or a problem submission) into files on disk."""
    result, log = None, None
    if sub.problem is not None:
        result = SubmissionResult(student=sub.student, lab=lab.name, error=sub.problem)
    elif run is not None:
        log = f"$ grade {sub.notebook}\nexit code: {rc}\n\n" + _tail(run.log_path)
        if timed_out is None and run.tmp_out.is_file():
            try:
                result = SubmissionResult.from_json(run.tmp_out.read_text(encoding="utf-8"))
            except (OSError, ValueError, TypeError, KeyError) as e:
                log += f"\n[batch] the grader's result file was unreadable: {e}\n"
        detail = detail_log(run.tmp_out)
        if detail.is_file():
            log += "\n----- grader log -----\n" + _tail(detail)
        for p in (run.tmp_out, run.log_path, detail):
            p.unlink(missing_ok=True)
    complete = result is not None and not (result.error or "").startswith(INTERNAL_PREFIX)
    if result is not None and not complete:
        outcome.failed.append(sub.student)
    if result is None:
        result = SubmissionResult(student=sub.student, lab=lab.name, execution_time=round(wall, 3),
                                  error=_died(rc, timed_out))
        outcome.failed.append(sub.student)
    result.student, result.lab = sub.student, lab.name
    meta = {
        "lab": lab.name,
        "notebook": str(sub.notebook) if sub.notebook else None,
        "layout": sub.layout,
        "sha256": sha,
        "complete": complete,
        "exit_code": rc,
        "wall_s": round(wall, 3),
        "timestamp": sub.timestamp,
    }
    store.save(result, meta, log)
    outcome.graded.append(sub.student)


# --------------------------------------------------------------------------- signals

class _SignalFlag:
    """While alive, SIGINT/SIGTERM/SIGHUP only set ``signum``: the batch loop stops at a safe
    point (never halfway through writing a result). Only installable from the main thread."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.signum: int | None = None
        self.old = {}
        if threading.current_thread() is threading.main_thread():
            self.old = {s: signal.signal(s, self._set) for s in self.SIGNALS}

    def _set(self, signum, frame):
        self.signum = signum

    def restore(self) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)
        self.old = {}


# --------------------------------------------------------------------------- the fork server

def _set_pdeathsig() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _fork_server_main(module: str, preload: list[str]) -> None:
    """``python -m autograder.runner.batch --fork-server WORK MODULE PRELOAD``: see ``_ForkServer``.

    Each child runs ``MODULE.main(argv)``; PRELOAD is a comma-separated list of modules.
    """
    import importlib
    import select
    import traceback

    parent = os.getppid()
    _set_pdeathsig()
    if os.getppid() != parent:
        os._exit(70)
    sys.modules.setdefault("rfc3987_syntax", None)  # as grade_one does: a slow, unused import
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception as e:  # the child imports it again and reports properly
            print(f"fork server: could not preload {name}: {e}", file=sys.stderr, flush=True)
    target = importlib.import_module(module)

    def send(msg: dict) -> None:
        os.write(1, (json.dumps(msg) + "\n").encode())

    send({"ready": True})
    children: dict[int, int] = {}
    buf, eof = b"", False
    while not (eof and not children):
        readable, _, _ = select.select([] if eof else [0], [], [], 0.05)
        if readable:
            chunk = os.read(0, 65536)
            eof = not chunk
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                req = json.loads(line)
                sys.stdout.flush()
                sys.stderr.flush()
                server = os.getpid()
                pid = os.fork()
                if pid == 0:
                    _fork_child(req, target.main, traceback, server)
                children[pid] = req["id"]
                send({"id": req["id"], "pid": pid})
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            rid = children.pop(pid, None)
            if rid is not None:
                send({"id": rid, "rc": os.waitstatus_to_exitcode(status)})


def _fork_child(req: dict, main, traceback, server: int) -> None:
    """In the forked child: a fresh session, output to the log, run grade_one, exit."""
    _set_pdeathsig()
    if os.getppid() != server:  # the server died before the death signal was armed
        os._exit(70)
    rc = 1
    try:
        os.setsid()
        fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        rc = main(req["argv"])
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
        rc = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(rc if isinstance(rc, int) else 1)


if __name__ == "__main__" and sys.argv[1:2] == ["--fork-server"]:
    _fork_server_main(sys.argv[3], [m for m in sys.argv[4].split(",") if m])
