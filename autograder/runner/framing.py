"""The one framing of the pipe between the grader and its worker, used by both sides.

A frame is an 8-byte big-endian length followed by the payload; payloads are
``codec.py``'s (JSON and raw tensor bytes: nothing that crosses the pipe is ever unpickled).
A reader refuses a frame that announces more bytes than it accepts before reading it.

Standard library only: the grader copies this file beside ``worker.py`` into the worker's
temporary folder (the worker cannot import ``autograder``). The functions the protocol
relies on are bound when this module is imported, before any submission code runs, so a
submission that replaces ``os.write`` or ``select.select`` cannot derail the protocol.
Both ends may be blocking or non-blocking file descriptors.
"""
import os
import select
import struct
import time

HEADER = struct.Struct(">Q")
MAX_FRAME = 512 * 1024 * 1024
_CHUNK = 1 << 20

_os_read, _os_write, _select, _monotonic = os.read, os.write, select.select, time.monotonic


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
