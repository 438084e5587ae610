"""The worker template: torch and the library imported once, a fresh worker forked per submission.

    python -s -B worker_zygote.py CONFIG_JSON

Started by the batch (``zygote.py`` is its client) from the same private folder layout as a
worker (``sandbox.WORKER_FILES``), with the worker's scrubbed environment, outside any
sandbox and before any submission exists: it imports only ``cfg["preload"]`` (torch, numpy,
matplotlib, lightning, genlab) and never runs a line of student code, so its memory, which
every child inherits, holds nothing but libraries.

Requests arrive on the socket ``cfg["fd"]`` (``SOCK_SEQPACKET``, one message per request),
each a JSON object ``{"cfg", "env", "cwd"}`` with four file descriptors attached:
the request's private channel (a socket), the worker's request pipe, its reply pipe and its
output pipe. For each, the template forks a child that starts a new session, keeps only
those pipes (every other descriptor, the template's socket and other submissions' channels
included, is closed), takes the worker's environment and folder, and runs
``worker.start(cfg)``: exactly what ``python worker.py CONFIG`` does, jail first, minus the
imports. On the channel the template answers ``{"pid"}``, later ``{"rc"}`` (the exit code,
``-N`` for signal N, as ``Popen.returncode``). When the grader closes its channel (it
finished, or died), the child is killed with SIGKILL; when the batch closes the template's
socket, or sends SIGTERM, every child is killed and the template exits.
"""
import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import traceback

MAX_REQUEST = 1 << 20


def preload(names) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the child imports it again, and reports it properly
            print(f"worker template: could not preload {name}: {type(exc).__name__}: {exc}", file=sys.stderr)


def _close_all_but(keep) -> None:
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else map(str, range(3, 1024)):
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _child(request: dict, fds: list, sockets: list) -> None:
    """In the forked child: become a worker for one submission (never returns)."""
    code = 70
    try:
        for sock in sockets:      # forget the template's sockets without closing reused numbers later
            sock.detach()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        chan, req, resp, out = fds
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        _close_all_but({0, 1, 2, req, resp})
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        cfg = request["cfg"]
        cfg["fds"] = {"req": req, "resp": resp}
        # What a fresh worker's command line shows, so that both kinds look alike from inside.
        sys.argv = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py"), json.dumps(cfg)]
        cfg["zygote_file"] = os.path.abspath(__file__)
        import worker

        worker.start(cfg)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        try:
            traceback.print_exc()
        except BaseException:
            pass
    os._exit(code)


def _send(chan: socket.socket, message: dict) -> None:
    try:
        chan.send(json.dumps(message).encode())
    except OSError:
        pass


def serve(listener: socket.socket) -> None:
    """Fork a worker per request until the batch closes ``listener`` (or sends SIGTERM);
    reap and report them."""
    children: dict[int, socket.socket] = {}   # pid -> its grader's channel (None once closed)

    def stop(signum, frame):   # the batch is done: every worker goes, then the template
        for pid in children:
            _kill(pid)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    closing = False
    while not closing or children:
        watched = [c for c in children.values() if c is not None] + ([] if closing else [listener])
        readable, _, _ = select.select(watched, [], [], 0.05)
        for sock in readable:
            if sock is listener:
                try:
                    data, fds, _, _ = socket.recv_fds(listener, MAX_REQUEST, 4)
                except OSError:
                    data, fds = b"", []
                if not data:
                    closing = True
                    for pid in children:
                        _kill(pid)
                    continue
                _start(data, fds, listener, children)
            else:   # a grader's channel: its end closed (finished or died), or it spoke out of turn
                pid = next(p for p, c in children.items() if c is sock)
                _kill(pid)
                sock.close()
                children[pid] = None
        _reap(children)


def _start(data: bytes, fds: list, listener: socket.socket, children: dict) -> None:
    if len(fds) != 4:
        for fd in fds:
            os.close(fd)
        return
    chan = socket.socket(fileno=fds[0])
    try:
        request = json.loads(data)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
    except Exception as exc:
        _send(chan, {"error": f"{type(exc).__name__}: {exc}"})
        chan.close()
        for fd in fds[1:]:
            os.close(fd)
        return
    if pid == 0:
        open_channels = [c for c in children.values() if c is not None]
        _child(request, fds, [listener, chan, *open_channels])
    for fd in fds[1:]:
        os.close(fd)
    children[pid] = chan
    _send(chan, {"pid": pid})


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)   # the monitor: PID 1 of its namespace dies with it
    except OSError:
        pass


def _reap(children: dict) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        chan = children.pop(pid, "unknown")
        if chan == "unknown":
            continue
        if chan is not None:
            _send(chan, {"rc": os.waitstatus_to_exitcode(status)})
            chan.close()


def main() -> None:
    cfg = json.loads(sys.argv[1])
    try:   # die with the batch that started us
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:
        pass
    listener = socket.socket(fileno=int(cfg["fd"]))
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import jail  # noqa: F401
    import worker  # noqa: F401  (its siblings too, before the jail hides this folder)

    sys.path[:] = [p for p in sys.path if p != here]
    sys.path[:0] = [p for p in cfg.get("library", []) if p not in sys.path]
    preload(cfg.get("preload", []))
    gc.collect()
    gc.freeze()   # each forked worker's collections then skip torch's and lightning's objects
    serve(listener)   # requests sent meanwhile wait in the socket


if __name__ == "__main__":
    main()
