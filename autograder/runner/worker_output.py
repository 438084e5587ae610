"""The grading worker's ``sys.stdout``/``sys.stderr``: the submission's output, size-capped.

Standard library only; copied beside ``worker.py`` (see ``sandbox.WORKER_FILES``).
"""
import io
import os

_os_write = os.write   # bound before any submission code runs


class CappedWriter(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` replacement: writes to fd 1/2 until a shared byte cap.

    Past the cap, output is dropped silently (a print must never fail the student's code).
    Writes straight to fd 1/2 (C code, ``os.write``) go into the grader's pipe, which keeps
    only their tail (``sandbox.OutputPipe``): the stream is capped, never the files.
    """

    budget = [0]

    def __init__(self, fd: int):
        self._fd = fd
        self.buffer = _CappedBinary(self)

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            text = str(text)
        if self.budget[0] > 0:
            self.write_bytes(text[: self.budget[0]].encode("utf-8", "replace"))
        return len(text)

    def write_bytes(self, data: bytes):
        if self.budget[0] <= 0:
            return
        chunk = data[: self.budget[0]]
        self.budget[0] -= len(chunk)
        try:
            _os_write(self._fd, chunk)
            if self.budget[0] <= 0:
                _os_write(self._fd, b"\n[output truncated: limit reached]\n")
        except OSError:
            self.budget[0] = 0

    def flush(self):
        pass

    def fileno(self):
        return self._fd

    def isatty(self):
        return False


class _CappedBinary(io.RawIOBase):
    def __init__(self, text: CappedWriter):
        self._text = text

    def writable(self):
        return True

    def write(self, data):
        data = bytes(data)
        self._text.write_bytes(data)
        return len(data)
