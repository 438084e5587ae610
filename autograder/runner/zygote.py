"""Workers forked from a template that has already imported torch (the grader's side).

A worker started as ``python worker.py`` spends seconds importing torch (and lightning, when
a test trains) before it runs the first cell; a batch pays that for every submission. So the
batch starts one *template* per lab (``WorkerTemplate``: ``worker_zygote.py``, the worker's
own files in a private folder, the worker's scrubbed environment), which imports the heavy
libraries once (while the fork server starts), outside any sandbox and before any submission
exists. Each grader then asks
it for a worker (``spawn``) instead of starting a Python: the template forks, and the child
enters the same jail a fresh worker enters (``jail.enter``: namespaces, mounts, limits, its
own uid) before it reads a line of the submission. What a child inherits is only the
template's memory, which holds libraries and no submission, test or result.

The graders find the template through ``GENLAB_WORKER_TEMPLATE_FD`` (a socket the fork
server passes on to them). Without it (a single ``grade_one``, ``GENLAB_WORKER_TEMPLATE=0``,
a GPU worker, or a template that stopped), ``sandbox.spawn`` starts ``python worker.py``
as before; the isolation is the same either way.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .errors import SandboxError

ENV_FD = "GENLAB_WORKER_TEMPLATE_FD"
ENV_SWITCH = "GENLAB_WORKER_TEMPLATE"
#: What the template imports. Not genlab's submodules that a lab blocks parts of: the
#: blockers patch re-exports of modules already imported, but keeping the library's own
#: modules to the child's first import keeps its blocking exactly that of a fresh worker.
PRELOAD = ("torch", "numpy", "matplotlib", "matplotlib.pyplot", "lightning")
#: How long a grader waits for its worker's pid: the first requests wait while the template
#: still imports (it starts alongside the fork server and reads requests once it is ready).
REPLY_TIMEOUT_S = 180.0


def enabled() -> bool:
    """``GENLAB_WORKER_TEMPLATE=0`` turns templates off (every worker starts its own Python)."""
    return os.environ.get(ENV_SWITCH, "1") != "0" and sys.platform.startswith("linux")


class WorkerTemplate:
    """A running template for one lab's workers; ``fd`` is the socket graders inherit."""

    def __init__(self, lab, preload: tuple[str, ...] = PRELOAD):
        from . import sandbox

        self.folder = Path(tempfile.mkdtemp(prefix="genlab-template-"))
        os.chmod(self.folder, 0o711)
        for name in (*sandbox.WORKER_FILES, "worker_zygote.py"):
            shutil.copyfile(sandbox.HERE / name, self.folder / name)
            os.chmod(self.folder / name, 0o644)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.socket = ours
        self.log_path = self.folder / "template.log"
        cfg = {"fd": theirs.fileno(), "library": sandbox.library_paths(), "preload": list(preload)}
        env = sandbox.worker_env(lab.limits.threads)
        env.update(HOME=str(self.folder), MPLCONFIGDIR=str(self.folder / ".matplotlib"))
        try:
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-s", "-B", str(self.folder / "worker_zygote.py"), json.dumps(cfg)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(theirs.fileno(),),
                    env=env, cwd=str(self.folder), start_new_session=True)
        except OSError as exc:
            ours.close()
            shutil.rmtree(self.folder, ignore_errors=True)
            raise SandboxError(f"could not start the worker template: {exc}") from None
        finally:
            theirs.close()

    def stopped(self) -> str | None:
        """Why the template stopped early (its last log line), or None while it runs."""
        if self.proc.poll() is None:
            return None
        return self.failure() or f"exit code {self.proc.returncode}"

    @property
    def fd(self) -> int:
        return self.socket.fileno()

    def environ(self) -> dict[str, str]:
        """What a grader process needs in its environment to find this template."""
        return {ENV_FD: str(self.fd)}

    def failure(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def close(self) -> None:
        """Stop the template and every worker it still has (they are killed with it)."""
        try:
            self.socket.close()
        except OSError:
            pass
        self.proc.terminate()   # it kills its children and exits (graders may still hold the socket)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def connected() -> socket.socket | None:
    """The template socket this grader inherited, or None."""
    raw = os.environ.get(ENV_FD)
    if not raw or not enabled():
        return None
    try:
        return socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=os.dup(int(raw)))
    except (OSError, ValueError):
        return None


class TemplateChild:
    """A worker forked by the template: the part of ``subprocess.Popen`` the sandbox uses."""

    def __init__(self, pid: int, channel: socket.socket):
        self.pid = pid
        self.channel = channel
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._read(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
            self._read(left)
        return self.returncode

    def _read(self, timeout: float | None) -> None:
        if self.channel.fileno() < 0:   # we let go of it: the template has killed it
            self.returncode = -signal.SIGKILL
            return
        readable, _, _ = select.select([self.channel], [], [], timeout)
        if not readable:
            return
        try:
            data = self.channel.recv(4096)
        except OSError:
            data = b""
        if not data:   # the template is gone: so is the worker (it kills its children first)
            self.returncode = -signal.SIGKILL
        else:
            try:
                rc = json.loads(data).get("rc")
            except (ValueError, AttributeError):
                rc = None
            if isinstance(rc, int):
                self.returncode = rc
        if self.returncode is not None:
            self.channel.close()

    def close(self) -> None:
        """Tell the template we are done (it kills the worker if it still runs)."""
        try:
            self.channel.close()
        except OSError:
            pass


def spawn(template: socket.socket, *, cfg: dict, env: dict, cwd: str, fds: tuple[int, int, int]) -> TemplateChild:
    """Ask ``template`` for a worker running ``cfg`` with pipes ``fds`` = (request read end,
    reply write end, output write end). Raises ``SandboxError`` when it cannot."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        message = json.dumps({"cfg": cfg, "env": env, "cwd": cwd}).encode()
        try:
            socket.send_fds(template, [message], [theirs.fileno(), *fds])
        except OSError as exc:
            raise SandboxError(f"the worker template is not answering ({exc})") from None
        finally:
            theirs.close()
            template.close()
        readable, _, _ = select.select([ours], [], [], REPLY_TIMEOUT_S)
        reply = ours.recv(4096) if readable else b""
        try:
            answer = json.loads(reply) if reply else {}
        except ValueError:
            answer = {}
        if not isinstance(answer.get("pid"), int):
            raise SandboxError(f"the worker template did not start a worker ({answer.get('error', 'no answer')})")
    except BaseException:
        ours.close()
        raise
    return TemplateChild(answer["pid"], ours)
