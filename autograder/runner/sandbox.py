"""How a submission's worker process is started, and how it is isolated.

The grader copies ``worker.py`` and its siblings (``WORKER_FILES``) into a fresh private
temporary folder and starts ``python -s -B worker.py CONFIG`` with a scrubbed environment
(``PATH``, ``LANG``, ``MPLBACKEND=Agg``, ``OMP_NUM_THREADS`` and friends,
``PYTHONHASHSEED=0``; ``HOME`` and ``TMPDIR`` point at the worker's own folder), in a new
session, with stdin from ``/dev/null`` and stdout/stderr going into a pipe that the grader
drains, keeping only its tail (``output_pipe.py``). The worker imports a copy of the
``genlab`` the grader imported with every graded part stubbed (``library_paths``,
``worker_library.py``), whatever the layout: a checkout with an editable install,
Gradescope's container, or the zip unpacked elsewhere for a local trial; the full library
is hidden from it. Before
any submission code runs, the worker isolates itself (``jail.py``). Every
``SubmissionResult`` carries the sentence that says exactly what was applied (``isolation``).
``GENLAB_SANDBOX`` chooses: ``auto`` (default), ``userns`` (the unprivileged path even as
root) or ``weak``.

Full isolation (Linux, as root, or as any user where unprivileged user namespaces are on)
  * network namespace: no network at all, only a loopback that is down; DNS fails;
  * mount namespace with a minimal view of the file system: /usr, /etc, /lib*, /bin, /dev,
    /sys and a new /proc (showing only the sandbox's processes) stay; every other top-level
    folder (/home, /root, /work, /var, /opt, /srv, /mnt, /run...) and the repository are
    covered by empty tmpfs mounts; only the interpreter, its standard library,
    site-packages and the genlab package are bind-mounted back, read-only. The autograder
    package, every installed copy of it (``pip install`` of the project puts one in
    site-packages) and the lab's hidden tests are covered even if they lie inside one of those.
    /tmp, /var/tmp and /dev/shm are private size-capped tmpfs; the working folder is
    /tmp/work. Other students' submissions and results, course files, the instructor's
    home and the hidden tests are therefore out of reach;
  * PID namespace: the worker is its PID 1; when it dies every process it started dies
    (a fork bomb ends with it). IPC and UTS namespaces too;
  * resource limits: address space (``memory_mb``; not applied when CUDA is used, since the
    CUDA driver reserves a huge address space), CPU seconds (as PID 1 the worker ignores
    SIGXCPU, so the limit acts through SIGKILL and is reported as the CPU limit), processes
    (``RLIMIT_NPROC``), file size (``tmp_mb``, the size of the private /tmp), no core dumps;
  * unprivileged identity: as root, the worker drops to a uid of its own (``100000 + n``,
    one per concurrently running worker, so process limits are not shared) with no
    supplementary groups and ``no_new_privs``. In a user namespace it maps itself to an
    unprivileged uid of a nested user namespace, which also locks the mounts above.
  The isolation sentence starts with ``full:``; ``partial:`` lists what could not be done.

Weak isolation (no namespaces: not Linux, containers that forbid ``unshare``, or
``GENLAB_SANDBOX=weak``)
  * resource limits, scrubbed environment, temporary working folder, and, as root, an
    unprivileged uid when the interpreter is readable by other users;
  * the submission CAN reach the network and CAN read whatever file permissions allow,
    including ``autograder/`` (hidden tests); processes it starts in the background may
    outlive it unless they stay in its process group.
  The isolation sentence starts with ``weak:`` and gives the reason. Grade with full
  isolation wherever hidden tests must stay secret.
"""
from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import codec, worker_library, zygote
from .errors import SandboxError
from .lab import AUTOGRADER_DIR, REPO_ROOT, Lab
from .output_pipe import OutputPipe

HERE = Path(__file__).resolve().parent
WORKER_FILES = ("worker.py", "framing.py", "codec.py", "worker_blockers.py", "worker_values.py",
                "worker_output.py", "worker_ipython.py", "worker_opwatch.py", "jail.py")
UID_BASE = 100_000
UID_SLOTS = 50_000


def requested_mode() -> str:
    """``GENLAB_SANDBOX``: ``auto`` (default: namespaces where the kernel allows them),
    ``userns`` (use the unprivileged user-namespace path even as root) or ``weak``."""
    mode = os.environ.get("GENLAB_SANDBOX", "auto").strip().lower() or "auto"
    if mode not in ("auto", "userns", "weak"):
        raise SandboxError(f"GENLAB_SANDBOX must be 'auto', 'userns' or 'weak', got {mode!r}")
    return mode


def planned_isolation() -> str:
    """What a worker would get here; used in results of submissions that never started one."""
    if requested_mode() == "weak" or not sys.platform.startswith("linux"):
        return "weak: rlimits, scrubbed environment, temporary folder (namespaces not requested)"
    who = "as root" if os.geteuid() == 0 else "in a user namespace"
    return f"full (planned, {who}): netns, mountns (autograder hidden), pidns, rlimits; no worker was started"


def hidden_paths(lab: Lab, exposed: list[str] | None = None) -> list[str]:
    """Folders that show up empty inside the sandbox: the grader, the hidden tests, the full
    library (the worker imports the stubbed copy), and any installed copy of the
    ``autograder`` package inside a folder the worker sees."""
    found = [AUTOGRADER_DIR, lab.folder, *map(Path, full_library_paths())]
    for folder in exposed if exposed is not None else exposed_paths():
        copy = Path(folder) / "autograder"
        if copy.is_dir() and not copy.is_symlink():
            found.append(copy)
    return [str(p) for p in dict.fromkeys(found) if p.is_dir()]


def library_paths() -> list[str]:
    """The folder that holds the worker's ``genlab``: a copy of the grader's library with every
    graded part stubbed (``worker_library.py``). The worker puts it first on its ``sys.path``
    and sees no other copy, whatever the layout."""
    return [str(worker_library.worker_library())]


def full_library_paths() -> list[str]:
    """The folders of the full ``genlab`` the grader imported (hidden from the worker)."""
    spec = importlib.util.find_spec("genlab")
    if spec is None or not spec.submodule_search_locations:
        return []
    return list(dict.fromkeys(os.path.realpath(p) for p in spec.submodule_search_locations))


def covered_paths() -> list[str]:
    """Folders hidden inside the sandbox except for exposed folders: the repository
    (tests, solutions, git history...) keeps only its virtual environment and genlab."""
    return [str(REPO_ROOT)] if REPO_ROOT.is_dir() else []


def exposed_paths() -> list[str]:
    """Folders the worker must read: the interpreter, its standard library and
    site-packages, and the worker's stubbed genlab. Nothing else from ``sys.path`` (the
    current folder, test folders) is exposed."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    paths = set(prefixes) | {os.path.dirname(os.path.realpath(sys.executable))}
    for entry in sys.path:
        real = os.path.realpath(entry) if entry else ""
        if real and os.path.isdir(real) and (
            any(real == p or real.startswith(p + os.sep) for p in prefixes)
            or os.path.basename(real) in ("site-packages", "dist-packages")
        ):
            paths.add(real)
    paths.update(os.path.realpath(p) for p in library_paths())
    root = os.path.realpath(REPO_ROOT)
    return sorted(p for p in paths if os.path.isdir(p) and not (root == p or root.startswith(p + os.sep)))


def worker_env(threads: int) -> dict[str, str]:
    venv_bin = os.path.dirname(sys.executable)
    env = {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        "USER": "student",
        "LOGNAME": "student",
        "TORCHINDUCTOR_CACHE_DIR": "/tmp/work/.inductor",
    }
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = str(threads)
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return env


@dataclass
class WorkerProcess:
    """A started worker: its process, the grader's ends of the pipes, its private folder."""

    proc: subprocess.Popen | zygote.TemplateChild
    req_w: int
    resp_r: int
    folder: Path
    output: OutputPipe
    uid_lock: int | None = None
    started: float = field(default_factory=time.monotonic)

    def output_tail(self, max_lines: int = 15, max_chars: int = 1500) -> str:
        """The last lines the submission printed (its own output only), capped (not yet cleaned)."""
        text = self.output.tail().decode("utf-8", "replace")
        lines = [ln for ln in text.splitlines() if ln.strip()][-max_lines:]
        tail = "\n".join(lines)
        return tail[-max_chars:]

    def kill(self) -> None:
        """Kill the worker, everything in its namespace and its process group; clean up."""
        pid = self.proc.pid
        children = _children(pid)
        for child in children:   # PID 1 of the sandbox: its death ends the whole namespace
            _signal(child, signal.SIGKILL)
        if children:
            try:  # the monitor exits once PID 1 is reaped, i.e. once the namespace is empty
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            _signal(pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for fd in (self.req_w, self.resp_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.req_w = self.resp_r = -1
        self.output.close()
        if isinstance(self.proc, zygote.TemplateChild):
            self.proc.close()
        if self.uid_lock is not None:
            os.close(self.uid_lock)
            self.uid_lock = None
        shutil.rmtree(self.folder, ignore_errors=True)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(c) for c in fh.read().split()]
    except OSError:
        pass
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def _claim_uid() -> tuple[int | None, int | None]:
    """A uid used by no other running worker (a lock file per uid, held while it runs).

    The lowest free slot is taken, so the lock files number as many as workers ever ran
    at the same time."""
    if os.geteuid() != 0:
        return None, None
    lock_dir = Path(tempfile.gettempdir()) / "genlab-sandbox-uids"
    lock_dir.mkdir(mode=0o700, exist_ok=True)
    for i in range(UID_SLOTS):
        uid = UID_BASE + i
        fd = os.open(lock_dir / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return uid, fd
        except OSError:
            os.close(fd)
    return None, None


def spawn(lab: Lab, *, init: dict, cuda: bool = False) -> WorkerProcess:
    """Start a worker for ``lab``; it isolates itself and runs the cells listed in ``init``.

    Forked from the batch's worker template when this grader has one (``zygote.py``: torch
    already imported), else started as ``python -s -B worker.py CONFIG``; either way the
    worker enters the same jail before the submission's first cell."""
    folder = Path(tempfile.mkdtemp(prefix="genlab-worker-"))
    os.chmod(folder, 0o711)
    for name in WORKER_FILES:
        shutil.copyfile(HERE / name, folder / name)
        os.chmod(folder / name, 0o644)
    workdir = folder / "work"
    workdir.mkdir(mode=0o700)
    init_path = folder / "init.json"
    fd = os.open(init_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(init, fh)
    out_r, out_fd = os.pipe()
    uid, uid_lock = _claim_uid()
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    limits = lab.limits
    expose = exposed_paths()
    cfg = {
        "mode": requested_mode(),
        "fds": {"req": req_r, "resp": resp_w},
        "uid": uid,
        "init": str(init_path),
        "workdir": str(workdir),
        "hide": hidden_paths(lab, expose),
        "cover": covered_paths(),
        "expose": expose,
        "library": library_paths(),
        "codec": codec_limits(lab).as_dict(),
        "cuda": bool(cuda),
        "limits": {
            "memory_mb": limits.memory_mb,
            "cpu_s": limits.cpu_s,
            "max_processes": limits.max_processes,
            "max_output_kb": limits.max_output_kb,
            "tmp_mb": limits.tmp_mb,
            "threads": limits.threads,
        },
    }
    env = worker_env(limits.threads)
    template = None if cuda else zygote.connected()   # CUDA must not be forked into: a fresh Python
    proc = None
    if template is not None:
        try:
            proc = zygote.spawn(template, cfg=cfg, env=env, cwd=str(folder), fds=(req_r, resp_w, out_fd))
        except SandboxError:
            proc = None   # the template stopped: this worker starts its own Python
    try:
        if proc is None:
            proc = subprocess.Popen(
                [sys.executable, "-s", "-B", str(folder / "worker.py"), json.dumps(cfg)],
                stdin=subprocess.DEVNULL,
                stdout=out_fd,
                stderr=out_fd,
                pass_fds=(req_r, resp_w),
                env=env,
                cwd=str(folder),
                start_new_session=True,
            )
    except OSError as exc:
        for fd in (req_r, req_w, resp_r, resp_w, out_fd, out_r):
            os.close(fd)
        if uid_lock is not None:
            os.close(uid_lock)
        shutil.rmtree(folder, ignore_errors=True)
        raise SandboxError(f"could not start the worker: {exc}") from None
    for fd in (req_r, resp_w, out_fd):
        os.close(fd)
    os.set_blocking(req_w, False)
    os.set_blocking(resp_r, False)
    return WorkerProcess(proc=proc, req_w=req_w, resp_r=resp_r, folder=folder, output=OutputPipe(out_r),
                         uid_lock=uid_lock)


def codec_limits(lab: Lab) -> codec.Limits:
    """What one reply from the worker may hold (``codec.Limits``; tensors per ``max_reply_mb``)."""
    return codec.Limits(tensor_bytes=int(lab.limits.max_reply_mb) << 20)
