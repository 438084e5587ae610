"""The grader's side of the worker: process handling, requests, and the ``submission`` proxy.

* ``WorkerHandle`` starts a worker (``sandbox.spawn``), waits until it has executed the
  notebook's cells, sends requests with a timeout and restarts it. A cell that kills or
  hangs the worker while the notebook runs is skipped on the next start (reported).
* ``Submission`` is what hidden tests get as the ``submission`` fixture:
  ``function(name)``, ``get(name)``, ``probe(name, **kwargs)``, ``setup_report``.
* ``Remote`` stands for an object that stays in the worker: call it, call its methods
  (``remote.method(*args)``), read attributes with ``remote.getattr(name)``. Comparing it,
  indexing it or giving it to torch raises ``NotTransferable`` with a student-facing message.
"""
from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import sandbox, wire
from .errors import (
    GraderError,
    NotDefined,
    NotTransferable,
    ReferenceUsed,
    SandboxError,
    SubmissionCrashed,
    SubmissionError,
    SubmissionTimeout,
    reference_message,
)
from .lab import Lab
from .notebook import CodeCell

MAX_SETUP_ATTEMPTS = 3


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
            signal.SIGXFSZ: f"wrote a file larger than the limit ({lim.max_output_kb} KiB)",
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

    def __init__(self, lab: Lab, cells: list[CodeCell], *, cuda: bool = False):
        self.lab = lab
        self.cells = list(cells)
        self.cuda = cuda
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
            {"index": c.index, "source": c.source, "label": c.label}
            for c in self.cells if c.index not in self.report.skipped
        ]
        self.proc = sandbox.spawn(self.lab, cuda=self.cuda, init={"cells": cells, "blocked": list(self.lab.blocked), "seed": 0})
        self.ready = False
        self.generation += 1
        self.current_cell = None
        self.pending_release.clear()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.proc.poll() is None

    def close(self) -> None:
        if self.proc is not None:
            self.last_output = self.proc.output_tail()
            self.proc.kill()
            self.proc = None
        self.ready = False

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
        text = describe_exit(code, self.lab)
        if self.last_output:
            text += "\nLast output:\n" + self.last_output
        return text

    # -- setup
    def ensure_ready(self) -> None:
        """Start the worker if needed and wait until it ran the notebook.

        A cell that kills the worker or does not finish within ``setup_timeout_s`` is
        skipped on the next attempt. Raises ``SubmissionCrashed`` if no attempt succeeds.
        """
        if self.ready and self.alive:
            return
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
            limit = deadline if cell_deadline is None else min(deadline, cell_deadline)
            try:
                message = wire.load(wire.read_frame(self.proc.resp_r, limit, max_bytes=16 << 20))
            except wire.FrameTimeout:
                cell = self.current_cell
                self.close()
                raise _SetupFailure(cell, f"did not finish within {self.lab.limits.setup_timeout_s:g} s") from None
            except wire.FrameEOF:
                cell = self.current_cell
                raise _SetupFailure(cell, self._died()) from None
            except Exception as exc:  # unreadable frame: treat like a crash of that cell
                cell = self.current_cell
                self.close()
                raise _SetupFailure(cell, f"sent something unreadable ({type(exc).__name__})") from None
            kind = message.get("kind") if isinstance(message, dict) else None
            if kind == "progress":
                self.current_cell = int(message.get("cell"))
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
        self.report.cells = [
            CellRun(index=int(c["index"]), label=labels.get(int(c["index"]), f"cell {c['index']}"),
                    error=c.get("error"), seconds=float(c.get("seconds", 0.0)))
            for c in message.get("cells", [])
        ]
        self.report.warnings = [str(w) for w in message.get("warnings", [])]
        self.isolation = str(message.get("isolation", self.isolation))
        self.ready_after = time.monotonic() - self.proc.started if self.proc else 0.0
        self.ready = True
        self.current_cell = None

    # -- requests
    def request(self, op: str, what: str, timeout: float, **fields) -> dict:
        """Send one request and return the worker's reply dict.

        Raises ``SubmissionTimeout`` (worker killed) or ``SubmissionCrashed`` (worker died).
        """
        self.ensure_ready()
        assert self.proc is not None
        self.seq += 1
        message = {"op": op, "seq": self.seq, "release": list(self.pending_release), **fields}
        self.pending_release.clear()
        payload = wire.dump_torch(message)
        deadline = time.monotonic() + timeout
        try:
            wire.write_frame(self.proc.req_w, payload, deadline)
            reply = wire.load(wire.read_frame(self.proc.resp_r, deadline))
        except wire.FrameTimeout:
            self.close()
            raise SubmissionTimeout(
                f"{what} did not finish within {timeout:g} s (an endless loop, or far too slow?); "
                "the worker running your notebook was stopped"
            ) from None
        except wire.FrameEOF:
            raise SubmissionCrashed(f"while running {what}, the worker running your notebook {self._died()}") from None
        except Exception as exc:
            self.close()
            raise SubmissionCrashed(
                f"while running {what}, the worker sent a reply that could not be read ({type(exc).__name__}); "
                "it was stopped"
            ) from None
        if not isinstance(reply, dict) or reply.get("kind") != "reply" or reply.get("seq") != self.seq:
            self.close()
            raise SubmissionCrashed(f"while running {what}, the worker sent an unexpected reply; it was stopped")
        return reply


# --------------------------------------------------------------------------- Remote
class Remote:
    """An object that lives in the worker. Call it, call its methods, read its attributes."""

    __slots__ = ("_sub", "_id", "_gen", "_type", "_repr", "_origin", "_name", "_callable", "__weakref__")

    def __init__(self, sub: Submission, info: dict, origin: str, name: str | None = None):
        self._sub = sub
        self._id = info.get(wire.REMOTE_KEY)
        self._gen = sub._handle.generation if sub._handle else 0
        self._type = str(info.get("type", "object"))
        self._repr = str(info.get("repr", ""))[:300]
        self._origin = origin          # what produced it, e.g. "MultiHeadAttention(...)"
        self._name = name              # the notebook's global name, if it came from get()
        self._callable = bool(info.get("callable", True))

    @property
    def remote_type(self) -> str:
        """The worker-side type name, e.g. ``"MultiHeadAttention"`` or ``"torch.nn.Linear"``."""
        return self._type

    def __repr__(self) -> str:
        return f"<remote {self._type}: {self._repr}>"

    def _display(self) -> str:
        return self._name or self._type.rsplit(".", 1)[-1]

    def __call__(self, *args, **kwargs):
        what = f"{self._name}(...)" if self._name else f"calling a {self._display()} object"
        return self._sub._request(what, "call", target=self, args=args, kwargs=kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _RemoteMethod(self, name)

    def getattr(self, name: str):
        """Read attribute ``name`` of the object in the worker (plain data, or another Remote)."""
        return self._sub._request(f"{self._display()}.{name}", "getattr", handle=self, name=name)

    def call_method(self, name: str, *args, **kwargs):
        """Call method ``name``; use this when the name clashes with Remote's own attributes."""
        return self._sub._request(
            f"{self._display()}.{name}(...)", "method", handle=self, name=name, args=args, kwargs=kwargs
        )

    def _misuse(self, *args, **kwargs):
        raise NotTransferable(
            f"{self._origin} gave back a {self._type} object ({self._repr}) where a tensor or a "
            "plain value (number, tuple, list, dict) was expected"
        )

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _misuse
    __bool__ = __len__ = __iter__ = __getitem__ = __contains__ = _misuse
    __float__ = __int__ = __index__ = __complex__ = __array__ = _misuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _misuse
    __matmul__ = __rmatmul__ = __neg__ = __abs__ = __pow__ = _misuse
    __hash__ = object.__hash__

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        for value in list(args) + list((kwargs or {}).values()):
            for item in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(item, Remote):
                    item._misuse()
        raise NotTransferable("a value from your notebook is not a tensor")

    def __del__(self):
        try:
            handle = self._sub._handle
            if handle is not None and handle.generation == self._gen and isinstance(self._id, int):
                handle.pending_release.append(self._id)
        except Exception:
            pass


class _RemoteMethod:
    """``remote.name``: calling it calls the method in the worker."""

    __slots__ = ("_remote", "_name")

    def __init__(self, remote: Remote, name: str):
        self._remote, self._name = remote, name

    def __call__(self, *args, **kwargs):
        return self._remote.call_method(self._name, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<remote method {self._remote._type}.{self._name}>"

    def _misuse(self, *args, **kwargs):
        raise NotTransferable(
            f"`{self._remote._display()}.{self._name}` was used as a value; hidden tests read "
            "attributes with .getattr(name) (this is a grader bug if you see it)"
        )

    __eq__ = __ne__ = __bool__ = __len__ = __iter__ = __getitem__ = __float__ = __int__ = _misuse
    __hash__ = object.__hash__


# ----------------------------------------------------------------------- Submission
class Submission:
    """The ``submission`` fixture: the hidden tests' only view of the student's notebook."""

    def __init__(self, handle: WorkerHandle | None, lab: Lab, broken: str | None = None):
        self._handle = handle
        self._lab = lab
        self._broken = broken
        self._deadline: float | None = None
        self._restarts_left = 1
        self.incidents: list[str] = []

    # -- per-test bookkeeping (called by the plugin)
    def begin_test(self) -> None:
        self._deadline = time.monotonic() + self._lab.limits.test_timeout_s
        self._restarts_left = 1
        self.incidents = []

    def end_test(self) -> list[str]:
        self._deadline = None
        incidents, self.incidents = self.incidents, []
        return incidents

    def start(self) -> None:
        """Run the notebook now (the plugin calls this before the first test)."""
        if self._handle is None or self._broken:
            return
        try:
            self._handle.ensure_ready()
        except SubmissionError as exc:
            self._broken = str(exc)

    @property
    def setup_report(self) -> SetupReport:
        """Which cells ran, which raised (``.raised``) and which were skipped."""
        return self._handle.report if self._handle else SetupReport()

    @property
    def isolation(self) -> str:
        return self._handle.isolation if self._handle else sandbox.planned_isolation()

    # -- the hidden-test API
    def function(self, name: str) -> Remote:
        """The function or class ``name`` defined by the notebook, as a callable ``Remote``."""
        value = self._request(f"`{name}`", "get", name=name)
        if not isinstance(value, Remote) or not value._callable:
            raise NotDefined(
                f"`{name}` in your notebook is not a function or class (it is {_describe_plain(value)}); "
                f"define `{name}` as the instructions say"
            )
        return value

    def get(self, name: str):
        """The value of the global ``name`` in the notebook (plain data, or a ``Remote``)."""
        return self._request(f"`{name}`", "get", name=name)

    def has(self, name: str) -> bool:
        """Whether the notebook defines the global ``name``."""
        try:
            self.get(name)
        except NotDefined:
            return False
        except NotTransferable:   # defined, but its value cannot cross
            pass
        return True

    def probe(self, name: str, **kwargs):
        """Run probe ``name`` (``<lab>/probes/name.py`` or ``autograder/probes/name.py``)
        beside the submission: its ``run(namespace, **kwargs)`` returns plain data."""
        for folder in self._lab.probe_dirs():
            path = Path(folder) / f"{name}.py"
            if path.is_file():
                source = path.read_text(encoding="utf-8")
                break
        else:
            raise GraderError(f"no probe named {name!r} in {', '.join(map(str, self._lab.probe_dirs()))}")
        what = f"the {name} check" + (f" of `{kwargs['fn']}`" if isinstance(kwargs.get("fn"), str) else "")
        return self._request(what, "probe", name=name, source=source, kwargs=kwargs)

    # -- plumbing
    def _remote_id(self, obj):
        if not isinstance(obj, Remote):
            return None
        if obj._sub is not self or self._handle is None or obj._gen != self._handle.generation:
            raise SubmissionCrashed(
                "an object from your notebook was lost when the worker restarted after an earlier "
                "problem in this test"
            )
        return obj._id

    def _request(self, what: str, op: str, **fields):
        if self._broken:
            raise SubmissionCrashed(self._broken)
        handle = self._handle
        if handle is None:
            raise SubmissionCrashed("no notebook to grade")
        if not (handle.ready and handle.alive):
            if handle.generation > 0:
                if self._restarts_left <= 0:
                    raise SubmissionCrashed(
                        "the worker running your notebook already stopped during this test; "
                        "the rest of this test was not run"
                    )
                self._restarts_left -= 1
            try:
                handle.ensure_ready()
            except SubmissionError as exc:
                self._broken = f"the worker could not be restarted: {exc}"
                raise SubmissionCrashed(self._broken) from None
        timeout = self._lab.limits.call_timeout_s
        if self._deadline is not None:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise SubmissionTimeout(
                    f"this test's time limit ({self._lab.limits.test_timeout_s:g} s) was used up before {what}"
                )
            timeout = min(timeout, remaining)
        if "target" in fields and isinstance(fields["target"], Remote):
            fields["target"] = self._remote_id(fields["target"])
        if "handle" in fields:
            fields["handle"] = self._remote_id(fields["handle"])
        for key in ("args", "kwargs"):
            if key in fields:
                try:
                    fields[key] = wire.encode(fields[key], self._remote_id)
                except TypeError as exc:
                    raise GraderError(f"hidden test sent an unsupported value: {exc}") from None
        try:
            reply = handle.request(op, what, timeout, **fields)
        except (SubmissionCrashed, SubmissionTimeout) as exc:
            self.incidents.append(str(exc))
            raise
        name = fields.get("name") if op == "get" else None
        return self._unpack(reply, what, name, strict=(op == "probe"))

    def _unpack(self, reply: dict, what: str, name: str | None, strict: bool):
        if reply.get("ok"):
            def make_remote(info):
                if strict:
                    raise NotTransferable(f"{what} returned an object that is not plain data")
                return Remote(self, info, origin=what, name=name)
            return wire.decode(reply.get("value"), make_remote)
        category = reply.get("category")
        error = reply.get("error") or {}
        etype = str(error.get("type", "Exception"))
        message = str(error.get("message", ""))
        where = [str(w) for w in error.get("where", [])]
        if category == "not_defined":
            raise NotDefined(self._not_defined_message(message))
        if category == "reference":
            refs = [str(r) for r in reply.get("references", [])] or [message]
            text = " ".join(reference_message(r) for r in refs)
            self.incidents.append(text)
            raise ReferenceUsed(text)
        if category == "transfer":
            raise NotTransferable(f"{what} {message}" if not message.startswith(what) else message)
        text = f"{what} raised {etype}" + (f": {message}" if message else "")
        if where:
            text += "\n" + "\n".join(f"  at {w}" for w in where)
        if category == "internal":
            text = f"{what} failed in the worker: {etype}: {message}"
        raise SubmissionError(text, exc_type=etype)

    def _not_defined_message(self, name: str) -> str:
        text = (
            f"Your notebook does not define `{name}`. Define it with exactly this name, "
            "in the cell the instructions give, and make sure that cell runs without errors."
        )
        raised = self.setup_report.raised
        if raised:
            first = raised[0]
            text += f" While the notebook ran, {len(raised)} cell(s) raised errors, e.g. {first.label}: {first.error}"
        return text


def _describe_plain(value) -> str:
    if isinstance(value, Remote):
        return f"a {value.remote_type} object"
    text = json.dumps(value, default=lambda v: type(v).__name__)
    return f"the value {text[:60]}"
