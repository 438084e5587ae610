"""The one framing of the pipe between the grader and its worker, used by both sides.

A frame is an 8-byte big-endian length followed by the payload. The payload's first byte
says how the rest is encoded: ``J`` UTF-8 JSON, ``T`` a ``torch.save`` archive. A reader
decodes a ``T`` payload only with ``torch.load(..., weights_only=True)``: nothing that
crosses the pipe is ever unpickled otherwise.

Standard library only: the grader copies this file beside ``worker.py`` into the worker's
temporary folder (the worker cannot import ``autograder``). The functions the protocol
relies on are bound when this module is imported, before any submission code runs, so a
submission that replaces ``os.write`` or ``json.dumps`` cannot derail the protocol.
Both ends may be blocking or non-blocking file descriptors.
"""
import io
import json
import os
import select
import struct
import time

HEADER = struct.Struct(">Q")
MAX_FRAME = 512 * 1024 * 1024
JSON, TORCH = b"J", b"T"
_CHUNK = 1 << 20

_os_read, _os_write, _select, _monotonic = os.read, os.write, select.select, time.monotonic
_json_dumps, _json_loads, _BytesIO = json.dumps, json.loads, io.BytesIO


class FrameTimeout(Exception):
    """No complete frame arrived (or could be written) before the deadline."""


class FrameEOF(Exception):
    """The other side closed its end of the pipe (it died or finished)."""


class FrameTooLarge(Exception):
    """A frame announced more bytes than the reader accepts."""


# ------------------------------------------------------------------------- frames
def write_frame(fd: int, payload: bytes, deadline: float | None = None) -> None:
    """Write one frame; ``deadline`` is a ``time.monotonic()`` value, or None to wait forever.

    Raises ``FrameTimeout`` past the deadline and ``FrameEOF`` when the reader is gone.
    """
    view = memoryview(HEADER.pack(len(payload)) + payload)
    while view:
        _wait(fd, deadline, write=True)
        try:
            n = _os_write(fd, view[:_CHUNK])
        except BlockingIOError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            raise FrameEOF("the other side closed its end of the pipe") from None
        view = view[n:]


def read_frame(fd: int, deadline: float | None = None, max_bytes: int = MAX_FRAME) -> bytes:
    """Read one frame's payload; raises ``FrameTimeout``, ``FrameEOF`` or ``FrameTooLarge``."""
    (size,) = HEADER.unpack(_read_exact(fd, HEADER.size, deadline))
    if size > max_bytes:
        raise FrameTooLarge(f"a frame of {size} bytes was announced; the limit is {max_bytes}")
    return _read_exact(fd, size, deadline)


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    parts, got = [], 0
    while got < size:
        _wait(fd, deadline, write=False)
        try:
            chunk = _os_read(fd, min(size - got, _CHUNK))
        except BlockingIOError:
            continue
        if not chunk:
            raise FrameEOF("the other side closed its end of the pipe")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _wait(fd: int, deadline: float | None, write: bool) -> None:
    while True:
        timeout = None if deadline is None else deadline - _monotonic()
        if timeout is not None and timeout <= 0:
            raise FrameTimeout("timed out")
        r, w, _ = _select([] if write else [fd], [fd] if write else [], [], timeout)
        if r or w:
            return


# ----------------------------------------------------------------------- payloads
def json_payload(obj) -> bytes:
    """A ``J`` payload: ``obj`` as UTF-8 JSON."""
    return JSON + _json_dumps(obj).encode("utf-8")


def torch_payload(obj, save) -> bytes:
    """A ``T`` payload; ``save`` is ``torch.save`` (bound by the caller before any untrusted code ran)."""
    buf = _BytesIO()
    buf.write(TORCH)
    save(obj, buf)
    return buf.getvalue()


def load_payload(payload: bytes, load, map_location=None):
    """Decode a payload; ``load`` is ``torch.load``, called only with ``weights_only=True``
    (``map_location``: where its tensors go, None for where they were saved from)."""
    kind, body = payload[:1], payload[1:]
    if kind == JSON:
        return _json_loads(body.decode("utf-8"))
    if kind == TORCH:
        return load(_BytesIO(body), weights_only=True, map_location=map_location)
    raise ValueError(f"unknown payload kind {kind!r}")
