"""Starting and stopping the batch's grader processes, so that none outlives the batch.

* ``wrap(argv)``: on Linux, the command runs through a tiny shim that arms
  ``PR_SET_PDEATHSIG`` (SIGKILL when the batch dies, even by SIGKILL) before it execs.
* ``PlainProcess``: one grader started with its own ``python`` (Popen), in its own session.
* ``killpg``: SIGKILL a grader's whole process group (it runs the submission in children).
* ``tail``: the end of a grader's log, for the instructor.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

LOG_TAIL_BYTES = 64 * 1024

# Exec'd as `python -S -c _SHIM BATCH_PID CMD...`: die with the batch, or do not start at all.
_SHIM = (
    "import ctypes,os,signal,sys\n"
    "try:\n ctypes.CDLL(None,use_errno=True).prctl(1,signal.SIGKILL)\n"  # PR_SET_PDEATHSIG
    "except Exception:\n pass\n"
    "if os.getppid()!=int(sys.argv[1]):\n os._exit(70)\n"
    "os.execvp(sys.argv[2],sys.argv[2:])\n"
)


def wrap(argv: list[str]) -> list[str]:
    """``argv`` run so that it dies with this process (Linux); unchanged elsewhere."""
    if sys.platform.startswith("linux"):
        return [sys.executable, "-S", "-c", _SHIM, str(os.getpid()), *argv]
    return argv


def set_pdeathsig() -> None:
    """In this process: SIGKILL it when its parent dies (Linux; a no-op where unsupported)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def killpg(pid: int) -> None:
    """SIGKILL a process's whole group (a grader runs the submission in children)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def tail(path: Path) -> str:
    """The last ``LOG_TAIL_BYTES`` of a log file ("" if it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - LOG_TAIL_BYTES))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return ("[... earlier output cut ...]\n" + text) if size > LOG_TAIL_BYTES else text


class PlainProcess:
    """A grader started with its own ``python`` (Popen), in its own session.

    Same interface as ``fork_client.Forked``: ``poll``, ``unstarted``, ``kill``, ``wait``.
    """

    def __init__(self, argv: list[str], log_path: Path):
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(wrap(argv), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def poll(self) -> int | None:
        return self.proc.poll()

    def unstarted(self) -> bool:
        return False

    def kill(self) -> None:
        killpg(self.proc.pid)

    def wait(self) -> int | None:
        return self.proc.wait()
