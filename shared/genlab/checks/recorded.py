"""Oracles: the functions of the public checks that compute a graded answer, and their recordings.

An *oracle* is a function in ``genlab.checks`` that returns what a graded part should return
for given inputs (a float64 formula, a reference loop) or what one of its usual bugs would
return. The public checks compare a student's output with it to say which bug they see.
The full library computes every oracle. The student build (``genlab release``) must not
hold the formulas, so there each oracle's body is a stub that raises ``OracleRemoved``,
and the answers come from ``recorded/labNN.pt``: what each oracle returned, on the checks'
own fixed inputs, when the instructor recorded the lab (``make recordings``).

    @oracle
    def attention_formula(q, k, v, mask=None, scale="sqrt"): ...   # -> (out, weights)

A call is looked up by a fingerprint of its bound arguments (tensors by dtype, shape and
bytes). A call that was never recorded (inputs no check uses) returns ``Unrecorded``:
``genlab.checks.kit.close`` and ``kit.same`` treat it as "no match", so a bug-namer that
tries one more known bug simply does not match it, while reading it as a value (its
shape, arithmetic) raises ``RecordingMiss`` with a sentence that says why.

Recording (``recording()``) and forced replay (``replaying(table)``) are for the
instructor's tools and the project's tests. ``exploring()`` is on while the recorder runs
the checks a second time with every comparison against an oracle's answer failing, so
that every known bug a namer tries gets recorded, not only the ones the cases reach.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["oracle", "OracleRemoved", "RecordingMiss", "Unrecorded", "Table", "fingerprint", "recording",
           "replaying", "exploring", "is_oracle_answer", "load_table", "table_path", "RECORDED_DIR"]

#: Where the student build's recordings live, one file per lab (``lab03.pt``).
RECORDED_DIR = Path(__file__).resolve().parent / "recorded"
_LAB = re.compile(r"\blab(\d\d)")


class OracleRemoved(RuntimeError):
    """Raised by an oracle's body in the student build, where only its recording remains."""


class RecordingMiss(RuntimeError):
    """An oracle's answer was needed for inputs that were not recorded."""


# ------------------------------------------------------------------ fingerprints

def _feed(h, value) -> None:
    """Add a canonical byte form of ``value`` to the hash ``h``; TypeError for what has none."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, torch.dtype, torch.device)):
        h.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T:{t.dtype}:{tuple(t.shape)}:".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, (tuple, list)):
        h.update(f"{type(value).__name__}[{len(value)}]".encode())
        for item in value:
            _feed(h, item)
    elif isinstance(value, Mapping):
        h.update(f"map[{len(value)}]".encode())
        for key in sorted(value, key=repr):
            _feed(h, key)
            _feed(h, value[key])
    elif isinstance(value, nn.Module):
        h.update(f"module:{type(value).__module__}.{type(value).__qualname__}:{value.training}".encode())
        _feed(h, dict(value.state_dict()))
    elif isinstance(value, torch.Generator):
        _feed(h, value.get_state())
    elif isinstance(value, functools.partial):
        h.update(b"partial:")
        _feed(h, (value.func, value.args, value.keywords))
    elif inspect.isfunction(value):   # a closure built by a check (a decoding step): its code and cells
        h.update(f"fn:{value.__module__}.{value.__qualname__}".encode())
        _feed(h, [c.cell_contents for c in (value.__closure__ or ())])
        _feed(h, value.__defaults__)
    else:
        raise TypeError(f"an oracle's argument of type {type(value).__name__} has no fingerprint; pass tensors, "
                        "numbers, strings, containers of them, modules or functions")


def fingerprint(name: str, arguments: Mapping) -> str:
    """The lookup key of ``name`` called with ``arguments`` (parameter name -> value)."""
    h = hashlib.sha256(name.encode())
    _feed(h, dict(arguments))
    return h.hexdigest()


def _frozen(value):
    """A detached copy of an oracle's result (tensors cloned, containers rebuilt)."""
    if isinstance(value, Tensor):
        return value.detach().clone()
    if isinstance(value, tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, list):
        return [_frozen(v) for v in value]
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def _layout(value):
    """The container structure of a result (``("tuple", [...])`` or None), to shape an ``Unrecorded``."""
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, [_layout(v) for v in value])
    return None


# ------------------------------------------------------------------ the missing answer

class Unrecorded:
    """What an oracle returns in the student build for inputs no recording holds.

    Comparisons through ``kit.close``/``kit.same`` are False; unpacking and indexing follow the
    oracle's usual result layout; anything else raises ``RecordingMiss`` with ``reason``.
    """

    def __init__(self, name: str, reason: str, layout=None):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_reason", reason)
        object.__setattr__(self, "_layout", layout)

    def _part(self, layout) -> Unrecorded:
        return Unrecorded(self._name, self._reason, layout)

    def __iter__(self) -> Iterator[Unrecorded]:
        if self._layout is None:
            self._miss()
        return iter([self._part(sub) for sub in self._layout[1]])

    def __getitem__(self, index):
        if self._layout is not None and isinstance(index, int):
            return self._part(self._layout[1][index])
        return self._part(None)

    def __len__(self) -> int:
        if self._layout is None:
            self._miss()
        return len(self._layout[1])

    def _miss(self, *_args, **_kwargs):
        raise RecordingMiss(f"{self._name}: {self._reason}")

    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        self._miss()

    def __repr__(self) -> str:
        return f"Unrecorded({self._name})"

    __bool__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _miss
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _miss
    __neg__ = __abs__ = __float__ = __int__ = __index__ = __matmul__ = __rmatmul__ = __invert__ = _miss
    __and__ = __rand__ = __or__ = __ror__ = __pow__ = __rpow__ = __setattr__ = _miss
    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        found = [a for a in (*args, *(kwargs or {}).values()) if isinstance(a, Unrecorded)]
        if found:
            found[0]._miss()
        raise RecordingMiss(f"an oracle's answer was not recorded (in {getattr(func, '__name__', func)})")


# ------------------------------------------------------------------ tables

@dataclass
class Table:
    """Recorded answers of one lab: ``answers`` key -> result, ``layouts`` oracle -> layout,
    ``messages`` case -> what its public check said, ``torch`` the version that drew the inputs,
    ``digest`` of the sources the recording depends on."""

    answers: dict = field(default_factory=dict)
    layouts: dict = field(default_factory=dict)
    messages: dict = field(default_factory=dict)
    torch: str = str(torch.__version__)
    digest: str = ""

    def add(self, name: str, key: str, result) -> None:
        self.answers[key] = _frozen(result)
        self.layouts.setdefault(name, _layout(result))

    def lookup(self, name: str, key: str):
        if key in self.answers:
            return _frozen(self.answers[key])
        return Unrecorded(name, self.miss_reason(), self.layouts.get(name))

    def miss_reason(self) -> str:
        why = ("this genlab carries the public checks' answers only for the checks' own inputs, and these "
               "inputs are not among them")
        if self.torch.split("+")[0] != torch.__version__.split("+")[0]:
            why += (f". They were recorded with torch {self.torch}, and this is torch {torch.__version__}, whose "
                    "random numbers may differ: install the torch version the course names, or ask your "
                    "instructor for a build recorded with yours")
        return why + "."

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        answers = {key: _pack(value) for key, value in self.answers.items()}
        torch.save({"format": 1, "answers": answers, "layouts": self.layouts, "messages": self.messages,
                    "torch": str(self.torch), "digest": self.digest}, path)

    @classmethod
    def load(cls, path: Path) -> Table:
        data = torch.load(path, weights_only=True)
        answers = {key: _unpack(value) for key, value in data["answers"].items()}
        return cls(answers, data["layouts"], data["messages"], data["torch"], data["digest"])


_STACKED = "__genlab_stacked__"


def _pack(value):
    """Store a list or tuple of tensors of one shape and dtype as one stacked tensor (a file
    entry per tensor costs about 300 bytes): ``(_STACKED, "list", stacked)``."""
    if isinstance(value, dict):
        return {k: _pack(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if (len(value) > 1 and all(isinstance(v, Tensor) for v in value)
                and len({(v.shape, v.dtype) for v in value}) == 1):
            return (_STACKED, type(value).__name__, torch.stack(list(value)))
        return type(value)(_pack(v) for v in value)
    return value


def _unpack(value):
    if isinstance(value, dict):
        return {k: _unpack(v) for k, v in value.items()}
    if isinstance(value, tuple) and len(value) == 3 and value[0] == _STACKED:
        items = [t.clone() for t in value[2].unbind(0)]
        return items if value[1] == "list" else tuple(items)
    if isinstance(value, (list, tuple)):
        return type(value)(_unpack(v) for v in value)
    return value


def table_path(lab: str) -> Path:
    """``recorded/lab03.pt`` for ``"03"`` (or ``"lab03"``)."""
    return RECORDED_DIR / f"lab{lab.removeprefix('lab')}.pt"


@functools.cache
def load_table(lab: str) -> Table | None:
    """The packaged recording of lab ``lab`` (``"03"``), or None when there is none."""
    path = table_path(lab)
    return Table.load(path) if path.is_file() else None


def _lab_of(module: str) -> str:
    found = _LAB.search(module)
    if found is None:
        raise ValueError(f"@oracle functions live in a lab's checks (genlab.checks.labNN...), not {module}")
    return found.group(1)


# ------------------------------------------------------------------ modes

class _Mode:
    recorder: Table | None = None
    replay: Table | None = None
    explore: bool = False
    answers: dict = {}   # id -> result, while exploring: the oracle answers handed out


@contextmanager
def recording(table: Table, explore: bool = False):
    """Compute every oracle and add its answers to ``table``; with ``explore``, comparisons
    against an oracle's answer fail (``is_oracle_answer``) and ``kit.fail_if`` only records."""
    saved = (_Mode.recorder, _Mode.explore, _Mode.answers)
    _Mode.recorder, _Mode.explore, _Mode.answers = table, explore, {}
    try:
        yield table
    finally:
        _Mode.recorder, _Mode.explore, _Mode.answers = saved


@contextmanager
def replaying(table: Table):
    """Answer every oracle from ``table`` only, as the student build does (for tests)."""
    saved, _Mode.replay = _Mode.replay, table
    try:
        yield table
    finally:
        _Mode.replay = saved


def exploring() -> bool:
    """True while the recorder explores (see ``recording``)."""
    return _Mode.explore


def is_oracle_answer(value) -> bool:
    """True for an ``Unrecorded``, and while exploring for a tensor or number an oracle returned."""
    if isinstance(value, Unrecorded):
        return True
    return _Mode.explore and id(value) in _Mode.answers


def _remember(result) -> None:
    """Mark ``result`` and everything in it (tuples, lists, dict values) as oracle answers.

    Not None, bools, strings or small ints: Python shares one object for each of those, so
    marking one would make every equal value anywhere look like an answer."""
    shared = result is None or isinstance(result, (bool, str)) or (isinstance(result, int) and -5 <= result <= 256)
    if not shared:
        _Mode.answers[id(result)] = result   # keeps it alive, so the id stays its own
    items = result.values() if isinstance(result, dict) else result if isinstance(result, (tuple, list)) else ()
    for item in items:
        _remember(item)


def oracle(fn: Callable) -> Callable:
    """Mark ``fn`` as an oracle: computed in the full library, replayed in the student build."""
    name = f"{fn.__module__}:{fn.__qualname__}"
    lab = _lab_of(fn.__module__)
    signature = inspect.signature(fn)

    def key(args, kwargs) -> str:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return fingerprint(name, bound.arguments)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _Mode.replay is not None:
            return _Mode.replay.lookup(name, key(args, kwargs))
        try:
            result = fn(*args, **kwargs)
        except OracleRemoved:
            table = load_table(lab)
            if table is None:
                raise RecordingMiss(f"{name}: this genlab build has no recorded answers for lab {lab}; "
                                    "reinstall genlab from your course") from None
            return table.lookup(name, key(args, kwargs))
        if _Mode.recorder is not None:
            _Mode.recorder.add(name, key(args, kwargs), result)
            if _Mode.explore:
                _remember(result)
        return result

    wrapper.__genlab_oracle__ = name
    return wrapper
