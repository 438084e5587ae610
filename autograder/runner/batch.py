"""Grade many submissions, each in a fresh grader process, resumably.

``grade_batch(lab, submissions, DIR)`` grades each ``discover.Handin`` of ``submissions``
into the output folder ``DIR`` (its layout: ``store.py``). A rerun skips a student whose
result is finished for the same lab and the same notebook bytes (sha256), unless
``force``. A submission whose notebook changed since it was graded is graded again. A
submission whose grader process died (crash, signal) gets a score-0 result with ``error``
set, the batch goes on, and the next rerun tries it again; so does one whose grader
reported an internal error (``results.INTERNAL_PREFIX``). A submission that ran past the
batch's time limit (``timeout_s``, a backstop behind the lab's ``total_timeout_s``) is
stopped and its score-0 result is final, like any verdict: reruns keep it (``--force``
regrades). One student's bad input is that student's result, never the batch's: a student
id that is one of the batch's own names (``store.RESERVED``) gets an error result of its own.

Killing the batch (SIGINT/SIGTERM/SIGHUP) stops the running graders and leaves every
finished submission on disk; SIGKILL does too (graders die with the batch: ``launcher.py``).

Each submission is graded by ``grade_one`` in a process of its own. On Linux that process
is forked from a fork server (``fork_server.py``, driven through ``fork_client.py``) that
has already imported torch, pytest and the runner and never grades anything itself, which
saves the seconds those imports take per submission; ``GENLAB_FORK_SERVER=0`` starts a
fresh ``python -m autograder.runner.grade_one`` per submission instead. With the fork server
the batch also starts the lab's worker template (``zygote.py``), so that each sandboxed
worker is forked with torch and lightning already imported (``GENLAB_WORKER_TEMPLATE=0``:
each worker starts its own Python).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from . import zygote
from .discover import Handin
from .errors import LabError, SandboxError
from .fork_client import Forked, ForkServer
from .lab import Lab
from .launcher import PlainProcess, tail
from .results import SubmissionResult
from .store import BatchError, DirLock, ResultStore, fingerprint, reserved, reserved_problem
from .zygote import WorkerTemplate

__all__ = ["BatchError", "BatchInterrupted", "BatchOutcome", "LabInfo", "ResultStore", "grade_batch",
           "grade_one_command"]


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
        """What the batch needs of a ``lab.Lab``."""
        return cls(name=lab.name, ref=str(lab.folder), notebook=lab.release.name)


GradeCommand = Callable[[LabInfo, Path, str, Path], list[str]]


def grade_one_args(lab: LabInfo, notebook: Path, student: str, out: Path,
                   parts: tuple[str, ...] | None = None) -> list[str]:
    """``grade_one``'s arguments: ``LAB NOTEBOOK --student S --out OUT --log LOG [--parts P,Q]``."""
    args = [lab.ref, str(notebook), "--student", student, "--out", str(out), "--log", str(detail_log(out))]
    return args + (["--parts", ",".join(parts)] if parts else [])


def grade_one_command(lab: LabInfo, notebook: Path, student: str, out: Path,
                      parts: tuple[str, ...] | None = None) -> list[str]:
    """The real grader: ``python -m autograder.runner.grade_one ARGS`` (see ``grade_one_args``)."""
    return [sys.executable, "-m", "autograder.runner.grade_one", *grade_one_args(lab, notebook, student, out, parts)]


def detail_log(out: Path) -> Path:
    """Where the grader writes its instructor log (pytest output, internal tracebacks)."""
    return Path(out).with_suffix(".log")


@dataclass
class _Running:
    handin: Handin
    sha: str
    proc: PlainProcess | Forked
    tmp_out: Path
    log_path: Path
    started: float


def _timed_out(limit: float) -> str:
    return (f"Grading stopped: your notebook did not finish within the time limit of {limit:g} s per "
            "submission. Make the slow parts faster (no training in graded cells, smaller loops).")


def _died(rc: int | None) -> str:
    if rc is not None and rc < 0:
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
    timed_out: list[str] = field(default_factory=list)  # stopped at the batch's time limit (final)
    warnings: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def grade_batch(
    lab: LabInfo,
    submissions: list[Handin],
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
    """Grade ``submissions`` (``Handin``s) with up to ``jobs`` grader processes at once; see
    module doc.

    ``command(lab, notebook, student, out_json)`` builds the grader's argv (tests inject a
    fake grader here); for a hand-in with ``parts`` it is also given ``parts=``. With the real grader on Linux, ``fork_server`` (default on, unless
    ``GENLAB_FORK_SERVER=0``) forks each grader from a ``fork_client.ForkServer`` instead
    of starting a new ``python``. Raises ``BatchInterrupted`` on SIGINT/SIGTERM/SIGHUP after stopping
    the running graders; everything finished before that is on disk.
    """
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    stream = stream or sys.stderr
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with DirLock(out_dir):
        store = ResultStore(out_dir, lab.name)
        outcome = BatchOutcome(results=store.results, warnings=list(store.warnings))
        work = out_dir / ".work"
        work.mkdir(exist_ok=True)
        for stale in work.iterdir():  # left by a killed run; we hold the lock, so nobody uses them
            stale.unlink(missing_ok=True)

        todo: deque[tuple[Handin, str]] = deque()
        for handin in submissions:
            if reserved(handin.student):
                handin = Handin(handin.student, None, handin.layout, reserved_problem(handin.student),
                                handin.timestamp)
            sha = fingerprint(handin)
            if not force and store.is_finished(handin.student, sha):
                outcome.skipped.append(handin.student)
                store.render(store.results[handin.student])
            else:
                todo.append((handin, sha))
        store.write_csv()

        bar = tqdm(total=len(todo), desc=f"grading {lab.name}", unit="nb", file=stream,
                   disable=not progress or not todo, dynamic_ncols=True)
        running: list[_Running] = []
        if fork_server is None:
            fork_server = os.environ.get("GENLAB_FORK_SERVER", "1") != "0"
        use_server = (fork_server and command is grade_one_command and sys.platform.startswith("linux")
                      and any(handin.notebook is not None for handin, _ in todo))
        template = _start_template(lab, outcome) if use_server else None
        server = _start_fork_server(work, template) if use_server else None

        def harvest(stopping: bool) -> bool:
            """Record every grader that has exited (or ran past the limit); True if any did."""
            any_done = False
            for run in list(running):
                if run.proc.unstarted():  # the fork server died before forking it: start it again
                    running.remove(run)
                    todo.appendleft((run.handin, run.sha))
                    continue
                rc = run.proc.poll()
                over = time.monotonic() - run.started > timeout_s
                if rc is None and (stopping or not over):
                    continue
                if rc is None:
                    run.proc.kill()
                    rc = run.proc.wait()
                running.remove(run)
                _record(store, lab, run.handin, run.sha, run, rc, None if stopping or not over else timeout_s,
                        time.monotonic() - run.started, outcome)
                bar.set_postfix_str(run.handin.student, refresh=False)
                bar.update(1)
                any_done = True
            return any_done

        signals = _SignalFlag()
        try:
            while (todo or running) and signals.signum is None:
                while todo and len(running) < jobs and signals.signum is None:
                    handin, sha = todo.popleft()
                    if handin.notebook is None:
                        _record(store, lab, handin, sha, None, None, None, 0.0, outcome)
                        bar.update(1)
                        continue
                    if server is not None and server.dead:
                        outcome.warnings.append(
                            "the grader's fork server stopped (" + (server.failure() or "no message")
                            + "); the remaining submissions start their own Python instead")
                        server.close()
                        server = None
                    running.append(_start(lab, handin, sha, work, command, server))
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
            if template is not None:
                why = template.stopped()
                if why:
                    outcome.warnings.append(f"the worker template stopped ({why}); workers started their own Python")
                template.close()
            signals.restore()
            bar.close()
    outcome.wall_s = time.monotonic() - t0
    return outcome


def _start_template(lab: LabInfo, outcome: BatchOutcome) -> WorkerTemplate | None:
    """The lab's worker template (``zygote.py``), or None (then every worker starts its own Python)."""
    if not zygote.enabled():
        return None
    try:
        return WorkerTemplate(Lab.load(lab.ref))
    except (SandboxError, LabError) as exc:
        outcome.warnings.append(f"no worker template ({exc}); every worker starts its own Python")
        return None


def _start_fork_server(work: Path, template: WorkerTemplate | None) -> ForkServer:
    """The graders' fork server; with a template, its graders inherit the template's socket."""
    if template is None:
        return ForkServer(work)
    return ForkServer(work, pass_fds=(template.fd,), env=template.environ())


def _start(lab: LabInfo, handin: Handin, sha: str, work: Path, command: GradeCommand,
           server: ForkServer | None) -> _Running:
    _start.count += 1   # not the student id: any id, however long or odd, gives a usable file name
    tag = f"grader-{os.getpid()}-{_start.count}"
    tmp_out = work / f"{tag}.result.json"
    log_path = work / f"{tag}.log"
    if server is not None:
        proc = server.spawn(grade_one_args(lab, handin.notebook, handin.student, tmp_out, handin.parts), log_path)
    else:
        extra = {"parts": handin.parts} if handin.parts else {}   # only a parts-aware command is asked
        proc = PlainProcess(command(lab, handin.notebook, handin.student, tmp_out, **extra), log_path)
    return _Running(handin, sha, proc, tmp_out, log_path, time.monotonic())


_start.count = 0


def _record(store: ResultStore, lab: LabInfo, handin: Handin, sha: str, run: _Running | None,
            rc: int | None, timed_out: float | None, wall: float, outcome: BatchOutcome) -> None:
    """Turn a finished grader (or a problem submission) into files on disk."""
    result, log = None, None
    if handin.problem is not None:
        result = SubmissionResult(student=handin.student, lab=lab.name, error=handin.problem)
    elif run is not None:
        log = f"$ grade {handin.notebook}\nexit code: {rc}\n\n" + tail(run.log_path)
        if timed_out is None and run.tmp_out.is_file():
            try:
                result = SubmissionResult.from_json(run.tmp_out.read_text(encoding="utf-8")).capped()
            except (OSError, ValueError, TypeError, KeyError) as e:
                log += f"\n[batch] the grader's result file was unreadable: {e}\n"
        detail = detail_log(run.tmp_out)
        if detail.is_file():
            log += "\n----- grader log -----\n" + tail(detail)
        for p in (run.tmp_out, run.log_path, detail):
            p.unlink(missing_ok=True)
    complete = result is not None and not result.internal_error
    if result is not None and not complete:
        outcome.failed.append(handin.student)
    if result is None and timed_out is not None:
        result = SubmissionResult(student=handin.student, lab=lab.name, execution_time=round(wall, 3),
                                  error=_timed_out(timed_out))
        complete = True   # a verdict: the submission used up its time; reruns keep it
        outcome.timed_out.append(handin.student)
    if result is None:
        result = SubmissionResult(student=handin.student, lab=lab.name, execution_time=round(wall, 3),
                                  error=_died(rc))
        outcome.failed.append(handin.student)
    result.student, result.lab = handin.student, lab.name
    result = result.capped()
    meta = {
        "lab": lab.name,
        "notebook": str(handin.notebook) if handin.notebook else None,
        "layout": handin.layout,
        "sha256": sha,
        "complete": complete,
        "exit_code": rc,
        "wall_s": round(wall, 3),
        "timestamp": handin.timestamp,
    }
    store.save(result, meta, log)
    outcome.graded.append(handin.student)


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
