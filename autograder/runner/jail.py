"""Enter the grading sandbox: namespaces, mounts, resource limits, an unprivileged uid.

Self-contained (standard library only). ``worker.py`` imports it from the temporary folder
it was copied to and calls ``enter(config)`` before anything else. The grader's side of
the story (how the config is built, what the modes mean) is in ``sandbox.py``.

``enter`` returns a sentence describing what was applied. With namespaces it forks: the
calling process stays outside the new PID namespace as a *monitor* that only waits for the
child and exits the way the child did; the child (PID 1 of the new namespace) returns from
``enter`` and goes on to run the submission.
"""
from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
import stat

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
O_PATH = getattr(os, "O_PATH", 0o10000000)
# Top-level folders that stay visible in the sandbox; every other one is covered.
SYSTEM_DIRS = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "dev", "proc", "sys"}
TMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def _call(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(path):
    return None if path is None else os.fsencode(path)


def _mount(source, target, fstype, flags, data=None) -> None:
    _call(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def _prctl(option: int, arg: int) -> None:
    _call(_libc.prctl(option, arg, 0, 0, 0), f"prctl {option}")


class _Applied:
    """Collects what was applied, for the isolation sentence."""

    def __init__(self):
        self.parts: list[str] = []
        self.missing: list[str] = []


# ----------------------------------------------------------------------------- entry
def enter(cfg: dict) -> str:
    """Apply the sandbox described by ``cfg`` (built by ``sandbox.py``); return its description."""
    applied = _Applied()
    mode = cfg.get("mode", "auto")
    if os.geteuid() != 0:
        cfg["user_tasks"] = _count_tasks(os.getuid())
    namespaced = False
    if mode == "weak":
        applied.missing.append("namespaces not requested (GENLAB_SANDBOX=weak)")
    else:
        try:
            _unshare(cfg, applied)
            namespaced = True
        except OSError as exc:
            applied.missing.append(f"namespaces unavailable ({exc.strerror or exc})")
    if namespaced:
        _private_mounts(cfg, applied)
        _fork_into_pid_namespace(cfg, applied)
        _mount_proc(applied)
    _limits(cfg, applied)
    workdir = _workdir(cfg, namespaced)
    _drop_privileges(cfg, applied, namespaced)
    os.chdir(workdir)
    os.environ.update(HOME=workdir, TMPDIR=workdir, MPLCONFIGDIR=os.path.join(workdir, ".matplotlib"))
    cfg["workdir"] = workdir
    full = namespaced and not applied.missing
    head = "full" if full else ("partial" if namespaced else "weak")
    text = f"{head}: " + ", ".join(applied.parts)
    if applied.missing:
        text += "; missing: " + "; ".join(applied.missing)
    return text


# ------------------------------------------------------------------------ namespaces
def _unshare(cfg: dict, applied: _Applied) -> None:
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    cfg["userns"] = False
    if cfg.get("mode") == "userns":  # force the unprivileged path (tests, or by choice)
        _unshare_user(flags, cfg)
    elif os.geteuid() == 0:
        try:
            _call(_libc.unshare(flags), "unshare")
        except OSError as exc:
            if exc.errno != errno.EPERM:
                raise
            _unshare_user(flags, cfg)
    else:
        _unshare_user(flags, cfg)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    try:
        name = b"sandbox"
        _libc.sethostname(name, len(name))
    except Exception:
        pass
    applied.parts.append("netns (no network)")


def _unshare_user(flags: int, cfg: dict) -> None:
    uid, gid = os.geteuid(), os.getegid()
    _call(_libc.unshare(flags | CLONE_NEWUSER), "unshare with a user namespace")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1")
    _write("/proc/self/gid_map", f"0 {gid} 1")
    cfg["userns"] = True


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- mounts
def _other_can_enter(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return bool(mode & stat.S_IXOTH) and bool(mode & stat.S_IROTH)


def _blocked_ancestor(path: str) -> str | None:
    """The outermost ancestor of ``path`` that an unprivileged uid cannot enter."""
    parts = os.path.abspath(path).split(os.sep)[1:]
    current = ""
    for part in parts[:-1] if os.path.isfile(path) else parts:
        current += os.sep + part
        if not _other_can_enter(current):
            return current
    return None


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _private_mounts(cfg: dict, applied: _Applied) -> None:
    """A minimal view of the file system, with the interpreter and libraries still visible.

    Covered by empty tmpfs mounts: every top-level folder except the system ones
    (``SYSTEM_DIRS``: /usr, /etc, /lib...), so /home, /root, /work, /var, /opt, /srv, /mnt,
    /run and the like; plus ``cfg["cover"]`` (the repository, wherever it lies). /tmp,
    /var/tmp and /dev/shm become private writable tmpfs mounts. ``cfg["expose"]``: folders
    the worker must read (the interpreter, site-packages, genlab); they are bind-mounted
    back read-only. ``cfg["hide"]`` (the autograder package, the hidden tests) is covered
    last, even inside an exposed folder, and checked to be empty.
    """
    hide = [os.path.realpath(p) for p in cfg.get("hide", [])]
    expose = sorted({os.path.realpath(p) for p in cfg.get("expose", []) if os.path.isdir(p)}, key=len)
    expose = [p for i, p in enumerate(expose)
              if not any(_under(p, q) for q in expose[:i]) and not any(_under(p, h) for h in hide)]
    fds = {p: os.open(p, O_PATH | os.O_CLOEXEC) for p in expose}
    tmp_like = TMP_DIRS
    covers = list(tmp_like) + [os.path.realpath(p) for p in cfg.get("cover", [])]
    for entry in os.listdir("/"):
        path = "/" + entry
        if entry not in SYSTEM_DIRS and not os.path.islink(path) and os.path.isdir(path):
            covers.append(path)
    if os.geteuid() == 0 and not cfg.get("userns"):
        covers += [b for b in map(_blocked_ancestor, expose) if b]
    covers = sorted({c for c in covers if os.path.isdir(c) and not os.path.islink(c)}, key=len)
    covers = [c for i, c in enumerate(covers) if not any(_under(c, d) for d in covers[:i])]
    tmp_mb = int(cfg["limits"].get("tmp_mb", 512))
    try:
        for c in covers:
            tmp = c in tmp_like
            _mount("tmpfs", c, "tmpfs", MS_NOSUID | MS_NODEV,
                   f"mode={'1777' if tmp else '755'},size={tmp_mb if tmp else 16}m")
        for p in expose:
            if any(_under(p, c) for c in covers):
                os.makedirs(p, mode=0o755, exist_ok=True)
                _mount(f"/proc/self/fd/{fds[p]}", p, None, MS_BIND | MS_REC)
                _mount(None, p, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        applied.parts.append("private /tmp")
    except OSError as exc:
        applied.missing.append(f"private /tmp and covers ({exc})")
    finally:
        for fd in fds.values():
            os.close(fd)
    failed = []
    for h in hide:
        if not os.path.isdir(h):
            continue
        try:
            _mount("tmpfs", h, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=555,size=4k")
        except OSError as exc:
            failed.append(f"{h} ({exc.strerror})")
    for h in hide:
        if os.path.isdir(h) and os.listdir(h) and h not in " ".join(failed):
            failed.append(f"{h} (still readable)")
    if failed:
        applied.missing.append("could not hide " + ", ".join(failed))
    else:
        applied.parts.append("mountns (minimal file system; autograder/ and hidden tests hidden)")


def _fork_into_pid_namespace(cfg: dict, applied: _Applied) -> None:
    """Fork; the parent becomes the monitor, the child PID 1 of the new PID namespace."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    child = os.fork()
    if child:
        _monitor(child, cfg)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    cfg["pid1"] = True
    applied.parts.append("pidns")


def _monitor(child: int, cfg: dict) -> None:
    """Wait for the sandboxed child and exit the same way; hold no pipe open meanwhile."""
    for fd in (cfg["fds"]["req"], cfg["fds"]["resp"], 0, 1, 2):
        try:
            os.close(fd)
        except OSError:
            pass
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    while True:
        try:
            _, status, usage = os.wait4(child, 0)
            break
        except ChildProcessError:
            os._exit(70)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        cpu = float(cfg["limits"].get("cpu_s", 0))
        if sig == signal.SIGKILL and cpu and usage.ru_utime + usage.ru_stime >= cpu - 0.5:
            sig = signal.SIGXCPU  # PID 1 ignores SIGXCPU, so the hard limit's SIGKILL ended it
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _mount_proc(applied: _Applied) -> None:
    try:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError as exc:
        applied.missing.append(f"/proc not remounted ({exc.strerror})")


# ---------------------------------------------------------------------- limits, uid
def _limits(cfg: dict, applied: _Applied) -> None:
    lim = cfg["limits"]
    done = []

    def setr(which, soft, hard, label):
        try:
            resource.setrlimit(which, (soft, hard))
            done.append(label)
        except (OSError, ValueError) as exc:
            applied.missing.append(f"rlimit {label} ({exc})")

    if lim.get("memory_mb") and not cfg.get("cuda"):
        mb = int(lim["memory_mb"])
        setr(resource.RLIMIT_AS, mb << 20, mb << 20, f"address space {mb} MiB")
    elif cfg.get("cuda"):
        done.append("no address-space limit (CUDA reserves a huge address space)")
    cpu = int(lim.get("cpu_s", 300))
    # As PID 1 of a namespace the worker ignores SIGXCPU: there the hard limit (SIGKILL) acts.
    setr(resource.RLIMIT_CPU, cpu, cpu if cfg.get("pid1") else cpu + 5, f"cpu {cpu} s")
    nproc = int(lim.get("max_processes", 128))
    if cfg.get("userns") or os.geteuid() != 0:
        nproc += int(cfg.get("user_tasks", 0))  # the count is shared with the grader's user
    setr(resource.RLIMIT_NPROC, nproc, nproc, f"processes {int(lim.get('max_processes', 128))}")
    # Files are bounded by the private tmpfs (full isolation) and by this per-file limit (the
    # only bound in weak mode); the output stream is capped by the grader, not here, so that
    # compilers and caches (torch.compile) can write their files.
    fsize = int(lim.get("tmp_mb", 512)) << 20
    setr(resource.RLIMIT_FSIZE, fsize, fsize, f"file size {fsize >> 20} MiB")
    setr(resource.RLIMIT_CORE, 0, 0, "no core dumps")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    applied.parts.append("rlimits (" + ", ".join(done) + ")")


def _count_tasks(uid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                continue
    return count


def _workdir(cfg: dict, namespaced: bool) -> str:
    if namespaced and os.path.isdir("/tmp") and os.access("/tmp", os.W_OK):
        workdir = "/tmp/work"
        os.makedirs(workdir, mode=0o700, exist_ok=True)
    else:
        workdir = cfg["workdir"]
    uid = cfg.get("uid")
    if os.geteuid() == 0 and uid is not None and not cfg.get("userns"):
        os.chown(workdir, uid, uid)
    return workdir


def _drop_privileges(cfg: dict, applied: _Applied, namespaced: bool) -> None:
    uid = cfg.get("uid")
    if cfg.get("userns"):
        _nested_user_namespace()
        applied.parts.append("user namespace (unprivileged uid inside)")
    elif os.geteuid() == 0 and uid is not None:
        unreadable = [] if namespaced else [p for p in cfg.get("expose", []) if _blocked_ancestor(p)]
        if unreadable:
            applied.missing.append(f"still root: {unreadable[0]} is not readable by other users")
        else:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            # No number: the uid differs per concurrent worker, and reruns must be identical.
            applied.parts.append("an unprivileged uid of its own")
    elif os.geteuid() != 0:
        applied.parts.append("the grader's own uid")
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
    except OSError:
        pass


def _nested_user_namespace() -> None:
    """Leave root of the first user namespace: map ourselves to uid/gid 1000 in a nested one.

    The nested namespace also gets its own mount namespace, which locks the mounts made
    above (they can no longer be unmounted to reveal what they cover).
    """
    _call(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare nested user namespace")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", "1000 0 1")
    _write("/proc/self/gid_map", "1000 0 1")
    os.setresgid(1000, 1000, 1000)
    os.setresuid(1000, 1000, 1000)
