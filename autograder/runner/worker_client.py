"""The grader's client of one submission's worker process.

``WorkerHandle`` starts a worker (``sandbox.spawn``), waits until it has executed the
notebook's cells, sends requests with a timeout and restarts it. A cell that kills or
hangs the worker while the notebook runs is skipped on the next start (reported in the
``SetupReport``). Hidden tests never see this class: they use ``submission.Submission``.

Every reply is decoded under the grader's limits (``wire.load``: bytes, items, depth,
string lengths), and everything the worker reports (cell errors, warnings, its isolation
sentence, its last output) is cleaned and capped (``text``). ``deadline`` is the whole
submission's: past it no cell, call or restart runs, and ``out_of_time`` says so.
"""
from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field

from . import framing, sandbox, text, wire
from .errors import SandboxError, SubmissionCrashed, SubmissionTimeout
from .lab import Lab
from .notebook import CodeCell

MAX_SETUP_ATTEMPTS = 3
MAX_WARNINGS = 50


@dataclass
class CellRun:
    """How one code cell went while the notebook ran in the worker."""

    index: int
    label: str
    error: str | None = None
    seconds: float = 0.0


@dataclass
class SetupReport:
    """What happened while the worker executed the notebook."""

    cells: list[CellRun] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)   # cell index -> why it was skipped
    warnings: list[str] = field(default_factory=list)       # for the instructor's log

    @property
    def raised(self) -> list[CellRun]:
        """Cells that raised an exception (execution went on after each)."""
        return [c for c in self.cells if c.error]


class _SetupFailure(Exception):
    def __init__(self, cell: int | None, reason: str):
        super().__init__(reason)
        self.cell, self.reason = cell, reason


def out_of_time_message(lab: Lab) -> str:
    return (f"grading stopped: your notebook used up the total time limit for one submission "
            f"({lab.limits.total_timeout_s:g} s, all cells and tests together); the tests that had not "
            "run yet were failed. Make the slow parts faster (smaller loops, no training in graded cells)")


def describe_exit(returncode: int | None, lab: Lab) -> str:
    """Words for how the worker process ended."""
    if returncode is None:
        return "stopped responding"
    if returncode < 0 or returncode > 128:
        sig = -returncode if returncode < 0 else returncode - 128
        lim = lab.limits
        words = {
            signal.SIGKILL: "was killed (SIGKILL): it ran out of memory or hit a hard limit",
            signal.SIGXCPU: f"used up its CPU time limit ({lim.cpu_s} s) and was stopped (SIGXCPU)",
            signal.SIGSEGV: "crashed with a segmentation fault (this can happen when memory runs out inside native code)",
            signal.SIGABRT: "aborted (SIGABRT)",
            signal.SIGBUS: "crashed (SIGBUS)",
            signal.SIGFPE: "crashed (SIGFPE)",
            signal.SIGXFSZ: f"wrote a file larger than the limit ({lim.tmp_mb} MiB)",
        }
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return words.get(sig, f"was stopped by {name}")
    if returncode == 0:
        return "exited (exit code 0): does your code call os._exit() or end the process?"
    return f"exited with code {returncode} (does your code call os._exit() or crash?)"


class WorkerHandle:
    """One submission's worker process, restartable; requests go through ``request``."""

    def __init__(self, lab: Lab, cells: list[CodeCell], *, cuda: bool = False, deadline: float | None = None):
        self.lab = lab
        self.cells = list(cells)
        self.cuda = cuda
        self.deadline = deadline if deadline is not None else time.monotonic() + lab.limits.total_timeout_s
        self.out_of_time = False
        self.proc: sandbox.WorkerProcess | None = None
        self.ready = False
        self.generation = 0
        self.seq = 0
        self.current_cell: int | None = None
        self.report = SetupReport()
        self.isolation = sandbox.planned_isolation()
        self.pending_release: list[int] = []
        self.last_output = ""
        self.ready_after = 0.0      # seconds from spawn to "ready", for the log
        self.startup_failure: str | None = None   # the worker died before any cell ran

    # -- process life
    def start(self) -> None:
        """Spawn a worker that starts executing the cells right away (not skipped ones)."""
        self.close()
        cells = [
            {"index": c.index, "source": c.source, "python": c.python if c.python is not None else c.source,
             "label": c.label}
            for c in self.cells if c.index not in self.report.skipped
        ]
        self.proc = sandbox.spawn(self.lab, cuda=self.cuda, init={"cells": cells, "blocked": list(self.lab.blocked),
                                                                  "blocked_ops": list(self.lab.blocked_ops), "seed": 0})
        self.ready = False
        self.generation += 1
        self.current_cell = None
        self.pending_release.clear()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.proc.poll() is None

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.last_output = text.clean(self.proc.output_tail(), 1500)
            self.proc = None
        self.ready = False

    def _check_time(self) -> None:
        """Raise ``SubmissionTimeout`` once the whole submission's time is used up."""
        if self.out_of_time or time.monotonic() >= self.deadline:
            self.out_of_time = True
            self.close()
            raise SubmissionTimeout(out_of_time_message(self.lab))

    def _died(self) -> str:
        """Reap a dead worker; return words for how it ended (with its last output)."""
        proc = self.proc
        code = None
        if proc is not None:
            try:
                code = proc.proc.wait(timeout=5)
            except Exception:
                code = None
        self.close()
        words = describe_exit(code, self.lab)
        if self.last_output:
            words += "\nLast output:\n" + self.last_output
        return words

    # -- setup
    def ensure_ready(self) -> None:
        """Start the worker if needed and wait until it ran the notebook.

        A cell that kills the worker or does not finish within ``setup_timeout_s`` is
        skipped on the next attempt. Raises ``SubmissionCrashed`` if no attempt succeeds.
        """
        if self.ready and self.alive:
            return
        self._check_time()
        for _ in range(MAX_SETUP_ATTEMPTS):
            if self.proc is None or not self.alive:
                try:
                    self.start()
                except SandboxError as exc:
                    self.startup_failure = str(exc)
                    raise SubmissionCrashed(
                        "the grader could not start the worker for your notebook (a problem of the "
                        "grader, reported to the instructor)"
                    ) from None
            try:
                self._wait_ready()
                return
            except _SetupFailure as failure:
                self._check_time()
                if failure.cell is None:  # before any cell ran: not the submission's doing
                    self.startup_failure = failure.reason
                    raise SubmissionCrashed(
                        "the grader could not start the worker for your notebook (a problem of the "
                        "grader, reported to the instructor)"
                    ) from None
                self.report.skipped[failure.cell] = failure.reason
        raise SubmissionCrashed(
            "your notebook stopped the worker several times while its cells ran; "
            "see the notebook issues for the cells that were skipped"
        )

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = self.proc.started + self.lab.limits.setup_timeout_s + 30  # + interpreter start
        cell_deadline = None
        while True:
            limit = min(self.deadline, deadline if cell_deadline is None else min(deadline, cell_deadline))
            try:
                message = wire.load(framing.read_frame(self.proc.resp_r, limit, max_bytes=16 << 20),
                                    sandbox.codec_limits(self.lab))
            except framing.FrameTimeout:
                cell = self.current_cell
                self.close()
                raise _SetupFailure(cell, f"did not finish within {self.lab.limits.setup_timeout_s:g} s") from None
            except framing.FrameEOF:
                cell = self.current_cell
                raise _SetupFailure(cell, self._died()) from None
            except Exception as exc:  # unreadable frame: treat like a crash of that cell
                cell = self.current_cell
                self.close()
                raise _SetupFailure(cell, f"sent something unreadable ({type(exc).__name__})") from None
            kind = message.get("kind") if isinstance(message, dict) else None
            if kind == "progress" and isinstance(message.get("cell"), int):
                self.current_cell = message["cell"]
                cell_deadline = time.monotonic() + self.lab.limits.setup_timeout_s
                if deadline < cell_deadline:
                    deadline = cell_deadline
            elif kind == "ready":
                self._record_ready(message)
                return
            else:
                self.close()
                raise _SetupFailure(self.current_cell, "sent an unexpected message")

    def _record_ready(self, message: dict) -> None:
        labels = {c.index: c.label for c in self.cells}
        cells = message.get("cells")
        runs = []
        for c in cells if isinstance(cells, list) else []:
            if not (isinstance(c, dict) and isinstance(c.get("index"), int) and c["index"] in labels):
                continue   # only the cells the grader sent exist
            error = c.get("error")
            seconds = c.get("seconds")
            runs.append(CellRun(index=c["index"], label=labels[c["index"]],
                                error=None if error is None else text.clean(error, text.ISSUE),
                                seconds=float(seconds) if isinstance(seconds, (int, float)) else 0.0))
        self.report.cells = runs
        warnings = message.get("warnings")
        self.report.warnings = [text.one_line(w, 500) for w in (warnings if isinstance(warnings, list) else [])]
        self.report.warnings = self.report.warnings[:MAX_WARNINGS]
        isolation = message.get("isolation")
        self.isolation = text.one_line(isolation, 600) if isinstance(isolation, str) else self.isolation
        self.ready_after = time.monotonic() - self.proc.started if self.proc else 0.0
        self.ready = True
        self.current_cell = None

    # -- requests
    def request(self, op: str, what: str, timeout: float, **fields) -> dict:
        """Send one request and return the worker's reply dict.

        Raises ``SubmissionTimeout`` (worker killed) or ``SubmissionCrashed`` (worker died).
        """
        self.ensure_ready()
        self._check_time()
        assert self.proc is not None
        self.seq += 1
        message = {"op": op, "seq": self.seq, "release": list(self.pending_release), **fields}
        self.pending_release.clear()
        payload = wire.dumps(message)
        deadline = min(time.monotonic() + timeout, self.deadline)
        limits = sandbox.codec_limits(self.lab)
        try:
            framing.write_frame(self.proc.req_w, payload, deadline)
            reply = wire.load(framing.read_frame(self.proc.resp_r, deadline, max_bytes=wire.max_frame(limits)), limits)
        except framing.FrameTimeout:
            self.close()
            self._check_time()
            raise SubmissionTimeout(
                f"{what} did not finish within {timeout:g} s (an endless loop, or far too slow?); "
                "the worker running your notebook was stopped"
            ) from None
        except framing.FrameEOF:
            raise SubmissionCrashed(f"while running {what}, the worker running your notebook {self._died()}") from None
        except Exception as exc:
            self.close()
            raise SubmissionCrashed(
                f"while running {what}, the worker sent a reply that could not be read "
                f"({text.one_line(exc, 200)}); it was stopped"
            ) from None
        if not isinstance(reply, dict) or reply.get("kind") != "reply" or reply.get("seq") != self.seq:
            self.close()
            raise SubmissionCrashed(f"while running {what}, the worker sent an unexpected reply; it was stopped")
        return reply
