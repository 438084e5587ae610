"""The worker's stdout and stderr: one pipe, drained by the grader, of which only the tail is kept.

The submission's output is capped as a stream, not as a file: the worker's Python-level
writes stop at ``max_output_kb`` (``worker_output.CappedWriter``), and whatever reaches the
pipe (C code, ``os.write``, child processes) is read here and all but its last
``TAIL_BYTES`` thrown away. The worker never blocks on a full pipe, no output file grows on
the grader's disk, and no file the submission writes in its own folder is limited by it.
"""
from __future__ import annotations

import os
import select
import threading

TAIL_BYTES = 64 * 1024


class OutputPipe:
    """The read end of the worker's output pipe and the thread that drains it."""

    def __init__(self, read_fd: int, tail_bytes: int = TAIL_BYTES):
        self.fd, self.tail_bytes = read_fd, tail_bytes
        self.total = 0
        self._tail = bytearray()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="worker-output", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.2)
                if not ready:
                    continue
                chunk = os.read(self.fd, 1 << 16)
            except (OSError, ValueError):
                return
            if not chunk:
                return
            with self._lock:
                self.total += len(chunk)
                self._tail += chunk
                if len(self._tail) > 2 * self.tail_bytes:
                    del self._tail[: len(self._tail) - self.tail_bytes]

    def tail(self, max_bytes: int = 16384) -> bytes:
        """The last ``max_bytes`` the worker wrote (its own output only)."""
        with self._lock:
            return bytes(self._tail[-max_bytes:])

    def close(self, wait_s: float = 1.0) -> None:
        """Stop draining (after what is left in the pipe, up to ``wait_s``) and close the pipe."""
        self._thread.join(wait_s)
        self._stop.set()
        self._thread.join(1.0)
        try:
            os.close(self.fd)
        except OSError:
            pass
