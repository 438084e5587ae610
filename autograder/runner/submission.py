"""What hidden tests use: the ``submission`` fixture (``Submission``) and ``Remote``.

* ``Submission`` is the hidden tests' only view of the student's notebook:
  ``function(name)``, ``get(name)``, ``has(name)``, ``probe(name, **kwargs)``,
  ``setup_report``. Every call runs in the submission's worker (``worker_client``).
* ``Remote`` stands for an object that stays in the worker: call it, call its methods
  (``remote.method(*args)``), read attributes with ``remote.getattr(name)``. Comparing it,
  indexing it or giving it to torch raises ``NotTransferable`` with a student-facing message.
"""
from __future__ import annotations

import json
import time

from . import sandbox, text, wire
from .errors import (
    GraderError,
    NotDefined,
    NotTransferable,
    ReferenceUsed,
    SubmissionCrashed,
    SubmissionError,
    SubmissionTimeout,
    reference_message,
)
from .lab import Lab
from .worker_client import SetupReport, WorkerHandle, out_of_time_message


# --------------------------------------------------------------------------- Remote
class Remote:
    """An object that lives in the worker. Call it, call its methods, read its attributes."""

    __slots__ = ("_sub", "_id", "_gen", "_type", "_repr", "_origin", "_name", "_callable", "__weakref__")

    def __init__(self, sub: Submission, info: dict, origin: str, name: str | None = None):
        self._sub = sub
        self._id = info.get(wire.REMOTE_KEY)
        self._gen = sub._handle.generation if sub._handle else 0
        self._type = text.one_line(info.get("type", "object"), text.NAME)
        self._repr = text.one_line(info.get("repr", ""), 300)
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

    def __init__(self, handle: WorkerHandle | None, lab: Lab, broken: str | None = None, seed: int = 0):
        self._handle = handle
        self._lab = lab
        self._broken = broken
        #: Varies the hidden inputs per submission where a test wants it (``random.Random(seed)``):
        #: derived from the code the worker runs, so a regrade draws the same inputs and a changed
        #: notebook new ones (a table of answers to earlier hidden inputs is worth nothing).
        self.seed = seed
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

    def probe(self, name: str, /, **kwargs):
        """Run probe ``name`` (``autograder/probes/name.py`` or the lab's ``probes/name.py``)
        beside the submission: its ``run(namespace, **kwargs)`` returns plain data."""
        files = self._lab.probe_files()
        if name not in files:
            raise GraderError(f"no probe named {name!r}; this lab's probes: {', '.join(sorted(files)) or 'none'}")
        source = files[name].read_text(encoding="utf-8")
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
        if handle.out_of_time:
            self.incidents.append(out_of_time_message(self._lab))
            raise SubmissionTimeout(out_of_time_message(self._lab))
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
        error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        etype = text.one_line(error.get("type", "Exception"), text.NAME)
        message = text.clean(error.get("message", ""), 1500)
        where = error.get("where") if isinstance(error.get("where"), list) else []
        where = [text.one_line(w, 300) for w in where[-6:]]
        if category == "not_defined":
            raise NotDefined(self._not_defined_message(text.one_line(message, text.NAME)))
        if category == "reference":
            refs = reply.get("references") if isinstance(reply.get("references"), list) else []
            refs = [text.one_line(r, text.NAME) for r in refs[:5]] or [text.one_line(message, text.NAME)]
            words = " ".join(reference_message(r) for r in refs)
            self.incidents.append(words)
            raise ReferenceUsed(words)
        if category == "transfer":
            raise NotTransferable(f"{what} {message}" if not message.startswith(what) else message)
        words = f"{what} raised {etype}" + (f": {message}" if message else "")
        if where:
            words += "\n" + "\n".join(f"  at {w}" for w in where)
        if category == "internal":
            words = f"{what} failed in the worker: {etype}: {message}"
        raise SubmissionError(words, exc_type=etype)

    def _not_defined_message(self, name: str) -> str:
        words = (
            f"Your notebook does not define `{name}`. Define it with exactly this name, "
            "in the cell the instructions give, and make sure that cell runs without errors."
        )
        raised = self.setup_report.raised
        if raised:
            first = raised[0]
            words += f" While the notebook ran, {len(raised)} cell(s) raised errors, e.g. {first.label}: {first.error}"
        return words


def _describe_plain(value) -> str:
    if isinstance(value, Remote):
        return f"a {value.remote_type} object"
    text = json.dumps(value, default=lambda v: type(v).__name__)
    return f"the value {text[:60]}"
