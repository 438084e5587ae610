"""Framing and value encoding between the grader (parent) and the worker.

A frame is an 8-byte big-endian length followed by the payload. The payload's first byte
says how the rest is encoded: ``J`` UTF-8 JSON, ``T`` a ``torch.save`` archive. The parent
only ever decodes worker payloads with ``json.loads`` or
``torch.load(..., weights_only=True)``: nothing from the worker is unpickled otherwise.

Values that cross are nested dict/list/tuple/set of ``None``, ``bool``, ``int``, ``float``,
``complex``, ``str``, ``bytes``, ``torch.dtype``, ``torch.Size`` and plain ``torch.Tensor``.
A worker object that cannot cross (a module, a function, an object of a student class)
stays in the worker's handle table and crosses as
``{"__remote__": id, "type": "...", "repr": "..."}``; ``decode`` turns that into whatever
``make_remote`` returns (the proxy's ``Remote``). The worker (``worker.py``) implements the
same framing on its side; it cannot import this module.
"""
from __future__ import annotations

import io
import json
import os
import select
import struct
import time

import torch

HEADER = struct.Struct(">Q")
MAX_FRAME = 512 * 1024 * 1024
REMOTE_KEY = "__remote__"
_CHUNK = 1 << 20


class FrameTimeout(Exception):
    """No complete frame arrived before the deadline."""


class FrameEOF(Exception):
    """The other side closed the pipe (the worker died)."""


class FrameTooLarge(Exception):
    """A frame announced more bytes than the limit."""


# ------------------------------------------------------------------------- framing
def write_frame(fd: int, payload: bytes, deadline: float | None = None) -> None:
    """Write one frame to a (non-blocking) pipe fd; raise ``FrameTimeout``/``FrameEOF``."""
    view = memoryview(HEADER.pack(len(payload)) + payload)
    while view:
        _wait(fd, deadline, write=True)
        try:
            n = os.write(fd, view[:_CHUNK])
        except BlockingIOError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            raise FrameEOF("the worker closed its end of the pipe") from None
        view = view[n:]


def read_frame(fd: int, deadline: float | None = None, max_bytes: int = MAX_FRAME) -> bytes:
    """Read one frame from a (non-blocking) pipe fd."""
    header = _read_exact(fd, HEADER.size, deadline)
    (size,) = HEADER.unpack(header)
    if size > max_bytes:
        raise FrameTooLarge(f"the worker sent {size} bytes; the limit is {max_bytes}")
    return _read_exact(fd, size, deadline)


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    parts, got = [], 0
    while got < size:
        _wait(fd, deadline, write=False)
        try:
            chunk = os.read(fd, min(size - got, _CHUNK))
        except BlockingIOError:
            continue
        if not chunk:
            raise FrameEOF("the worker closed its end of the pipe")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _wait(fd: int, deadline: float | None, write: bool) -> None:
    while True:
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            raise FrameTimeout("timed out")
        r, w, _ = select.select([] if write else [fd], [fd] if write else [], [], timeout)
        if r or w:
            return


# ----------------------------------------------------------------------- payloads
def dump_json(obj) -> bytes:
    return b"J" + json.dumps(obj).encode("utf-8")


def dump_torch(obj) -> bytes:
    buf = io.BytesIO()
    buf.write(b"T")
    torch.save(obj, buf)
    return buf.getvalue()


def load(payload: bytes):
    """Decode a payload from the worker: JSON, or torch with ``weights_only=True``."""
    kind, body = payload[:1], payload[1:]
    if kind == b"J":
        return json.loads(body.decode("utf-8"))
    if kind == b"T":
        return torch.load(io.BytesIO(body), weights_only=True, map_location="cpu")
    raise ValueError(f"unknown payload kind {kind!r}")


# ------------------------------------------------------------------ value encoding
_ATOMS = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device)


def encode(value, remote_id=None, _depth: int = 0):
    """Encode a parent-side value for the worker.

    ``remote_id(obj)`` returns the handle id of a proxy ``Remote`` (or ``None`` if ``obj`` is
    not one). Tensors are detached; anything else unsupported raises ``TypeError``.
    """
    if _depth > 100:
        raise TypeError("value nested too deeply to send to the worker")
    if isinstance(value, _ATOMS):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().as_subclass(torch.Tensor) if type(value) is not torch.Tensor else value.detach()
    if remote_id is not None:
        handle = remote_id(value)
        if handle is not None:
            return {REMOTE_KEY: handle}
    if isinstance(value, torch.Size):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [encode(v, remote_id, _depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items) if isinstance(value, tuple) else set(items)
    if isinstance(value, dict):
        if REMOTE_KEY in value:
            raise TypeError(f"dict keys named {REMOTE_KEY!r} are reserved")
        return {encode(k, remote_id, _depth + 1): encode(v, remote_id, _depth + 1) for k, v in value.items()}
    raise TypeError(
        f"cannot send a {type(value).__name__} to the worker; send tensors, numbers, "
        "strings and lists/tuples/dicts of them"
    )


def decode(value, make_remote, _depth: int = 0):
    """Turn a value loaded from the worker into parent objects (remote markers -> ``make_remote``)."""
    if _depth > 200:
        raise ValueError("value from the worker nested too deeply")
    if isinstance(value, dict):
        if REMOTE_KEY in value:
            return make_remote(value)
        return {k: decode(v, make_remote, _depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, make_remote, _depth + 1) for v in value]
    if isinstance(value, tuple) and not isinstance(value, torch.Size):
        return tuple(decode(v, make_remote, _depth + 1) for v in value)
    return value
