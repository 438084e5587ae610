"""Workers forked from the worker template (``zygote.py``) are isolated like fresh ones."""
from __future__ import annotations

import os
import signal
import time

import pytest

from autograder.runner import sandbox, zygote
from autograder.runner.notebook import CodeCell
from autograder.runner.submission import Submission
from autograder.runner.worker_client import WorkerHandle

from .conftest import both_spawn_modes

PROBE = """
import os, socket, stat
fds = sorted(int(f) for f in os.listdir('/proc/self/fd'))
kinds = {}
for fd in fds:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        continue
    kinds[fd] = 'socket' if stat.S_ISSOCK(mode) else 'pipe' if stat.S_ISFIFO(mode) else 'other'
sockets = sorted(fd for fd, kind in kinds.items() if kind == 'socket')
pipes = sorted(fd for fd, kind in kinds.items() if kind == 'pipe')
pid, uid = os.getpid(), os.getuid()
env = sorted(os.environ)
torch_loaded = 'torch' in __import__('sys').modules
frozen = __import__('gc').get_freeze_count()
"""


def _worker(lab, source=PROBE):
    handle = WorkerHandle(lab, [CodeCell(index=1, source=source)])
    handle.start()
    return handle, Submission(handle, lab)


@both_spawn_modes
def test_a_worker_holds_only_its_own_pipes(lab, spawn_mode):
    handle, sub = _worker(lab)
    try:
        assert sub.get("sockets") == [], "the template's socket (or a grader's channel) reached the worker"
        assert len(sub.get("pipes")) == 4   # request, reply, stdout and stderr (the output pipe twice)
        assert sub.get("pid") == 1
        assert "GENLAB_WORKER_TEMPLATE_FD" not in sub.get("env")
        assert handle.isolation.startswith("full:"), handle.isolation
        forked = isinstance(handle.proc.proc, zygote.TemplateChild)
        assert forked == (spawn_mode == "template")
        # the template froze torch's objects (gc.freeze): a forked worker's collections skip them
        assert (sub.get("frozen") > 10000) == forked
    finally:
        handle.close()


def test_template_and_fresh_workers_get_the_same_isolation(lab, monkeypatch):
    sentences = {}
    for mode in ("template", "python"):
        if mode == "python":
            monkeypatch.delenv(zygote.ENV_FD, raising=False)
        handle, sub = _worker(lab)
        try:
            sub.get("pid")
            sentences[mode] = (handle.isolation, sub.get("uid") != 0 or os.geteuid() != 0)
        finally:
            handle.close()
    assert sentences["template"] == sentences["python"]
    assert sentences["template"][1], "the forked worker still runs as root"


def test_a_worker_dies_when_its_grader_lets_go(lab):
    handle, sub = _worker(lab, "import time\nx = 1")
    sub.get("x")
    child = handle.proc.proc
    assert isinstance(child, zygote.TemplateChild)
    pid = child.pid
    child.channel.close()   # what the kernel does when the grader dies
    _wait_gone(pid)
    handle.close()


def test_closing_the_template_stops_its_workers_and_later_ones_start_a_python(lab, monkeypatch):
    template = zygote.WorkerTemplate(lab)
    fd = os.dup(template.fd)
    monkeypatch.setenv(zygote.ENV_FD, str(fd))
    try:
        handle, sub = _worker(lab, "x = 2")
        assert sub.get("x") == 2
        pid = handle.proc.proc.pid
        template.close()
        assert handle.proc.proc.wait(timeout=10) == -signal.SIGKILL
        _wait_gone(pid)
        handle.close()
        handle, sub = _worker(lab, "x = 3")   # the template is gone: a fresh python
        assert sub.get("x") == 3
        assert isinstance(handle.proc.proc, sandbox.subprocess.Popen)
        handle.close()
    finally:
        os.close(fd)


def test_the_cpu_limit_counts_only_the_workers_own_time(tmp_path):
    from .conftest import lab_copy

    lab = lab_copy(tmp_path, limits={"cpu_s": 3})
    template = zygote.WorkerTemplate(lab)
    try:
        os.environ[zygote.ENV_FD] = str(template.fd)
        handle, sub = _worker(lab, "x = 4")
        assert sub.get("x") == 4   # 3 s of CPU is far less than importing torch and lightning took
        handle.close()
    finally:
        os.environ.pop(zygote.ENV_FD, None)
        template.close()


def _wait_gone(pid: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _state(pid) not in ("Z", "gone"):
        time.sleep(0.05)
    assert _state(pid) in ("Z", "gone"), f"worker {pid} is still running"


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


@pytest.mark.parametrize("switch", ["0"])
def test_the_switch_turns_templates_off(monkeypatch, switch, lab):
    monkeypatch.setenv(zygote.ENV_SWITCH, switch)
    assert zygote.connected() is None
