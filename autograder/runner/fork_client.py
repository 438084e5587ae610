"""The batch's side of the fork server (``fork_server.py``): start it, ask it to fork graders.

``ForkServer(work)`` starts ``python -m autograder.runner.fork_server WORK MODULE PRELOAD``
(WORK, the batch's work folder, is on its command line so that it can be found in the
process list), which imports the grader's heavy modules once and then forks one fresh
child per request. ``spawn(argv, log)`` returns a ``Forked``, the same interface as
``launcher.PlainProcess``. Protocol: JSON lines; requests ``{"id", "argv", "log"}`` on the
server's stdin; replies ``{"ready": true}``, ``{"id", "pid"}`` and ``{"id", "rc"}`` on its
stdout.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .launcher import killpg, tail, wrap


class ForkServer:
    """A running fork server and what it has said so far (pids and exit codes by request id)."""

    PRELOAD = ("torch", "pytest", "nbformat", "autograder.runner.grade", "autograder.runner.grade_one",
               "_pytest.python", "_pytest.terminal", "_pytest.runner", "_pytest.fixtures", "_pytest.capture",
               "IPython.core.inputtransformer2")

    def __init__(self, work: Path, module: str = "autograder.runner.grade_one", preload: tuple = PRELOAD,
                 pass_fds: tuple[int, ...] = (), env: dict[str, str] | None = None):
        """``pass_fds`` and ``env`` (added to this process's environment) reach every child."""
        self.log_path = work / "fork-server.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                wrap([sys.executable, "-m", "autograder.runner.fork_server", str(work), module, ",".join(preload)]),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                pass_fds=pass_fds, env={**os.environ, **env} if env else None)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buf = b""
        self.next_id = 0
        self.ready = False
        self.pids: dict[int, int] = {}
        self.rcs: dict[int, int] = {}

    @property
    def dead(self) -> bool:
        self.pump()
        return self.proc.poll() is not None

    def spawn(self, argv: list[str], log_path: Path) -> Forked:
        """Ask for a child that runs ``MODULE.main(argv)`` with its output in ``log_path``."""
        self.next_id += 1
        line = json.dumps({"id": self.next_id, "argv": argv, "log": str(log_path)}) + "\n"
        try:
            self.proc.stdin.write(line.encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the server is dead: the run reports itself unstarted
        return Forked(self, self.next_id)

    def pump(self) -> None:
        """Read whatever the server has said."""
        while True:
            try:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
            except OSError:  # BlockingIOError included: nothing more for now
                break
            if not chunk:
                break
            self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("ready"):
                self.ready = True
            elif "rc" in msg:
                self.rcs[msg["id"]] = msg["rc"]
            elif "pid" in msg:
                self.pids[msg["id"]] = msg["pid"]

    def close(self) -> None:
        """Kill the server and every child still running; remove its log."""
        self.pump()
        for rid, pid in self.pids.items():
            if rid not in self.rcs:  # a reaped child's pid may already belong to someone else
                killpg(pid)
        killpg(self.proc.pid)
        self.proc.wait()
        self.log_path.unlink(missing_ok=True)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass

    def failure(self) -> str:
        """The last line the server wrote to stderr (why it died)."""
        lines = tail(self.log_path).strip().splitlines()
        return lines[-1] if lines else ""


class Forked:
    """One grader forked by the ``ForkServer``."""

    def __init__(self, server: ForkServer, rid: int):
        self.server, self.id = server, rid

    def poll(self) -> int | None:
        s = self.server
        s.pump()
        if self.id in s.rcs:
            return s.rcs[self.id]
        if s.proc.poll() is not None:
            s.pump()
            if self.id in s.rcs:
                return s.rcs[self.id]
            return -signal.SIGKILL  # died with the server (PR_SET_PDEATHSIG)
        return None

    def unstarted(self) -> bool:
        """The server died before forking this one: it can simply be started again."""
        return self.server.dead and self.id not in self.server.pids and self.id not in self.server.rcs

    def kill(self) -> None:
        pid = self.server.pids.get(self.id)
        if pid is not None and self.poll() is None:
            killpg(pid)

    def wait(self) -> int | None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rc = self.poll()
            if rc is not None:
                return rc
            time.sleep(0.02)
        return -signal.SIGKILL
