"""The fork server: import the grader's heavy modules once, then fork a fresh grader per request.

    python -m autograder.runner.fork_server WORK MODULE PRELOAD

PRELOAD is a comma-separated list of modules imported up front (torch, pytest, the
runner); each child runs ``MODULE.main(argv)`` and exits. WORK (the batch's work folder)
only names the server in the process list. The server never grades anything itself, so
each submission still gets its own new process, minus the seconds of imports. Children
run in their own session and die with the server (PR_SET_PDEATHSIG), which dies with the
batch. The protocol is described in ``fork_client.py``, the batch's side.
"""
from __future__ import annotations

import importlib
import json
import os
import select
import sys
import traceback

from .fast_start import freeze_heap, skip_unused_imports
from .launcher import set_pdeathsig


def serve(module: str, preload: list[str]) -> None:
    """Answer fork requests on stdin until it closes and every child has been reaped."""
    parent = os.getppid()
    set_pdeathsig()
    if os.getppid() != parent:  # the batch died before the death signal was armed
        os._exit(70)
    skip_unused_imports()
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception as e:  # the child imports it again and reports properly
            print(f"fork server: could not preload {name}: {e}", file=sys.stderr, flush=True)
    target = importlib.import_module(module)
    freeze_heap()   # the children's collections skip everything imported above

    def send(msg: dict) -> None:
        os.write(1, (json.dumps(msg) + "\n").encode())

    send({"ready": True})
    children: dict[int, int] = {}
    buf, eof = b"", False
    while not (eof and not children):
        readable, _, _ = select.select([] if eof else [0], [], [], 0.05)
        if readable:
            chunk = os.read(0, 65536)
            eof = not chunk
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                req = json.loads(line)
                sys.stdout.flush()
                sys.stderr.flush()
                server = os.getpid()
                pid = os.fork()
                if pid == 0:
                    _child(req, target.main, server)
                children[pid] = req["id"]
                send({"id": req["id"], "pid": pid})
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            rid = children.pop(pid, None)
            if rid is not None:
                send({"id": rid, "rc": os.waitstatus_to_exitcode(status)})


def _child(req: dict, main, server: int) -> None:
    """In the forked child: a fresh session, output to the log, run ``main(argv)``, exit."""
    set_pdeathsig()
    if os.getppid() != server:  # the server died before the death signal was armed
        os._exit(70)
    rc = 1
    try:
        os.setsid()
        fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        rc = main(req["argv"])
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
        rc = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(rc if isinstance(rc, int) else 1)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python -m autograder.runner.fork_server WORK MODULE PRELOAD")
    serve(sys.argv[2], [m for m in sys.argv[3].split(",") if m])
