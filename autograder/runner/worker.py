"""The grading worker: runs one submission's code cells, then answers the grader's requests.

A self-contained script (standard library, torch and numpy only): the grader copies it, with
its siblings (``sandbox.WORKER_FILES``), into a fresh temporary folder and runs it with the
virtual environment's python:

    python -s -B worker.py CONFIG_JSON

``autograder/`` is hidden from it, so it must never import ``autograder``. Steps:

1. ``jail.enter(config)``: namespaces, mounts, limits, unprivileged uid (see ``sandbox.py``).
   The init file (JSON: the code cells, the blocked references) is read before that.
2. Put the grader's own ``genlab`` first on ``sys.path`` (``cfg["library"]``: the same
   library in every layout), import torch, numpy.
3. Install the reference blockers, then execute the cells in one namespace
   (``__name__ == "__main__"``), each compiled as ``<cell N>``. The grader already turned
   IPython syntax into Python with IPython's own transformer; ``get_ipython()`` here
   answers the magics (``worker_ipython.py``), and top-level ``await`` works as in Jupyter.
   Every exception, ``SystemExit``/``KeyboardInterrupt`` included, is recorded and
   execution goes on. A ``progress`` frame precedes each cell.
4. Send ``ready`` and serve requests: get, call, method, getattr, probe, release.

Protocol: the frames of ``framing.py``, the payloads of ``codec.py`` (JSON and raw tensor
bytes, never pickle). Replies carry only plain data and tensors; other objects stay here
in a handle table and cross as ``{"__remote__": id, "type", "repr"}``.

Limits of the design: submission code runs in this process, so it could in principle forge
replies (or undo a blocker) through the inherited pipe or ``gc``. That only ever yields
plain data in the grader, which decodes it under its own limits and reaches every verdict
itself; it cannot run code in the grader, read the hidden tests or touch results.
"""
import ast
import inspect
import json
import linecache
import os
import sys
import time
import traceback
import types

if __package__:  # imported as autograder.runner.worker (the grader's own tests)
    from . import codec, framing
    from .worker_blockers import Blockers, GuardedNamespace, ReferenceUsedError, blocked_name
    from .worker_ipython import Shell
    from .worker_opwatch import OpWatch
    from .worker_output import CappedWriter
    from .worker_values import Encoder, Handles, NotTransferable, bind, decode_args, short_repr
else:  # run as a script from the temporary folder the grader copied it to
    import codec
    import framing
    from worker_blockers import Blockers, GuardedNamespace, ReferenceUsedError, blocked_name
    from worker_ipython import Shell
    from worker_opwatch import OpWatch
    from worker_output import CappedWriter
    from worker_values import Encoder, Handles, NotTransferable, bind, decode_args, short_repr

# Bound early so that a submission replacing os.write & co. cannot derail the protocol.
_getpid, _os_exit = os.getpid, os._exit
_dumps, _loads = codec.dumps, codec.loads
_TOP_LEVEL_AWAIT = getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)


# -------------------------------------------------------------------------- the pipe
class Channel:
    """The worker's end of the pipe (``framing.py``): requests in on ``req``, replies out on ``resp``."""

    def __init__(self, req_fd: int, resp_fd: int, limits: "codec.Limits" = codec.DEFAULT):
        self.req, self.resp, self.limits = req_fd, resp_fd, limits

    def read(self):
        """The next request (trusted: the grader wrote it); ``framing.FrameEOF`` when the grader is gone."""
        return _loads(framing.read_frame(self.req), None, keep_devices=True)

    def send_payload(self, payload: bytes) -> None:
        framing.write_frame(self.resp, payload)

    def encode(self, obj) -> bytes:
        """``obj`` as a payload within the limits the grader enforces (``codec.CodecError`` if not)."""
        return _dumps(obj, self.limits)

    def send(self, obj) -> None:
        self.send_payload(self.encode(obj))


# ----------------------------------------------------------------------- exceptions
def describe_exception(exc: BaseException, blockers: Blockers) -> dict:
    """Plain data about ``exc``: its type's name, its message and where in the notebook it was
    raised (capped here for honest submissions; the grader caps and cleans it again)."""
    try:
        message = str(exc)
        if not isinstance(message, str):
            raise TypeError
    except BaseException:
        message = "(the exception's message could not be printed)"
    if len(message) > 1500:
        message = message[:1500] + "...(truncated)"
    try:
        name = type(exc).__name__
        name = name[:200] if isinstance(name, str) else "Exception"
    except BaseException:
        name = "Exception"
    where = []
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        filename = frame.f_code.co_filename
        if filename in blockers.trusted:
            continue
        if filename.startswith("<cell ") or blockers.is_submission_file(filename):
            line = linecache.getline(filename, lineno).strip()
            place = filename.strip("<>") if filename.startswith("<") else os.path.basename(filename)
            where.append(f"{place}, line {lineno}, in {frame.f_code.co_name}" + (f": {line[:200]}" if line else ""))
    if isinstance(exc, SyntaxError) and exc.filename and str(exc.filename).startswith("<cell "):
        where.append(f"{str(exc.filename).strip('<>')}, line {exc.lineno}" + (f": {(exc.text or '').strip()[:200]}" if exc.text else ""))
        message = exc.msg or message
    return {"type": name, "message": message, "where": where[-6:]}


# --------------------------------------------------------------------------- worker
class Worker:
    def __init__(self, cfg: dict, init: dict, isolation: str):
        self.cfg = cfg
        self.init = init
        self.isolation = isolation
        self.main_pid = _getpid()
        self.limits = codec.Limits(**cfg.get("codec", {}))
        self.channel = Channel(cfg["fds"]["req"], cfg["fds"]["resp"], self.limits)
        self.handles = Handles()
        self.blockers = Blockers(cfg.get("workdir", os.getcwd()))
        ours = [__file__, cfg.get("jail_file", ""), cfg.get("zygote_file", ""), framing.__file__, codec.__file__] + [
            getattr(sys.modules.get(cls.__module__), "__file__", "") for cls in (Blockers, Encoder, CappedWriter, Shell, OpWatch)
        ]
        self.blockers.trusted.update(p for f in ours if f for p in (f, os.path.abspath(f)))
        self.watch = OpWatch((), self.blockers, _torch, ReferenceUsedError)
        self.namespace = None
        self.current_file = "<cell ?>"
        self.stdout = CappedWriter(1)
        self.stderr = CappedWriter(2)

    # -- setup
    def _in_child(self):
        """Forked copies of the worker (``os.fork`` in a cell) must never talk to the grader."""
        for fd in (self.channel.req, self.channel.resp):
            try:
                os.close(fd)
            except OSError:
                pass

    def run(self):
        for fd in (self.channel.req, self.channel.resp):
            os.set_inheritable(fd, False)
        os.register_at_fork(after_in_child=self._in_child)
        CappedWriter.budget[0] = int(self.cfg["limits"].get("max_output_kb", 256)) << 10
        sys.stdout, sys.stderr = self.stdout, self.stderr
        init = self.init
        warnings = self.blockers.install(init.get("blocked", []))
        self.watch = OpWatch(init.get("blocked_ops", []), self.blockers, _torch, ReferenceUsedError)
        self.namespace = self._make_namespace()
        sys.path.insert(0, "")  # like a Jupyter kernel: modules in the working folder import
        seed = int(init.get("seed", 0))
        cells = self._run_cells(init.get("cells", []), seed)
        self._guard()
        self.channel.send({"kind": "ready", "cells": cells, "isolation": self.isolation, "warnings": warnings})
        self.serve()

    def _guard(self):
        if _getpid() != self.main_pid:
            _os_exit(0)
        sys.stdout, sys.stderr = self.stdout, self.stderr

    def _make_namespace(self):
        module = types.ModuleType("__main__")
        module.__dict__["__builtins__"] = __builtins__
        module.__dict__["display"] = _display
        shell = Shell(module.__dict__, lambda: self.current_file)
        module.__dict__["get_ipython"] = lambda: shell
        sys.modules["__main__"] = module
        return module.__dict__

    def _run_cells(self, cells, seed):
        import random

        random.seed(seed)
        _torch.manual_seed(seed)
        if _numpy is not None:
            _numpy.random.seed(seed)
        report = []
        for cell in cells:
            index = int(cell["index"])
            filename = f"<cell {index}>"
            source = cell["source"]   # as the student wrote it: what error lines quote
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            self.current_file = filename
            self.channel.send({"kind": "progress", "cell": index})
            start = time.monotonic()
            error = None
            try:
                run_cell(cell.get("python", source), filename, self.namespace)
            except BaseException as exc:
                info = describe_exception(exc, self.blockers)
                error = info["type"] + (f": {info['message']}" if info["message"] else "")
                if info["where"]:
                    error += " at " + info["where"][-1]
                try:
                    self.stderr.write(f"[{cell.get('label', filename)} raised {error}]\n")
                except BaseException:
                    pass
            self._guard()
            report.append({"index": index, "error": error, "seconds": round(time.monotonic() - start, 3)})
        return report

    # -- serving
    def serve(self):
        while True:
            self._guard()
            try:
                request = self.channel.read()
            except framing.FrameEOF:
                _os_exit(0)
            try:
                reply = self.handle(request)
            except BaseException as exc:  # never let a request kill the worker
                reply = {"ok": False, "category": "internal", "error": {"type": type(exc).__name__, "message": str(exc)[:500], "where": []}}
            reply["kind"] = "reply"
            reply["seq"] = request.get("seq")
            self._guard()
            try:
                payload = self.channel.encode(reply)
            except BaseException as exc:
                text = str(exc)[:500] if isinstance(exc, codec.CodecError) else f"could not be sent ({type(exc).__name__})"
                fallback = {"kind": "reply", "seq": request.get("seq"), "ok": False, "category": "transfer",
                            "error": {"type": "NotTransferable", "message": "returned a value that " + text, "where": []}}
                payload = self.channel.encode(fallback)
            try:
                self.channel.send_payload(payload)
            except framing.FrameEOF:
                _os_exit(0)

    def handle(self, request):
        for hid in request.get("release", ()):
            self.handles.table.pop(hid, None)
        op = request.get("op")
        if op == "ping":
            return {"ok": True, "value": None}
        if op == "get":
            name = request["name"]
            if name not in self.namespace:
                return {"ok": False, "category": "not_defined", "error": {"type": "NameError", "message": name, "where": []}}
            return self._refuse_blocked(self.namespace[name]) or self._reply_value(self.namespace[name], strict=False)
        if op == "call":
            target = request["target"]
            if isinstance(target, str):
                if target not in self.namespace:
                    return {"ok": False, "category": "not_defined", "error": {"type": "NameError", "message": target, "where": []}}
                fn = self.namespace[target]
            else:
                fn = self.handles.get(target)
            refused = self._refuse_blocked(fn)
            if refused:
                return refused
            args, kwargs = self._args(request)
            return self._student(lambda: fn(*args, **kwargs), strict=False)
        if op == "method":
            obj = self.handles.get(request["handle"])
            name = request["name"]
            args, kwargs = self._args(request)
            return self._student(lambda: getattr(obj, name)(*args, **kwargs), strict=False)
        if op == "getattr":
            obj = self.handles.get(request["handle"])
            name = request["name"]
            return self._student(lambda: getattr(obj, name), strict=False)
        if op == "probe":
            return self._probe(request)
        if op == "release":
            return {"ok": True, "value": None}
        raise ValueError(f"unknown request {op!r}")

    def _args(self, request):
        args = decode_args(request.get("args", ()), self.handles)
        kwargs = decode_args(request.get("kwargs", {}), self.handles)
        return list(args), dict(kwargs)

    def _student(self, thunk, strict):
        hits = len(self.blockers.hits)
        try:
            value = self.watch.around(thunk)
        except ReferenceUsedError:
            return self._reference_reply(hits)
        except NotTransferable as exc:
            return {"ok": False, "category": "transfer", "error": {"type": "NotTransferable", "message": str(exc), "where": []}}
        except BaseException as exc:
            if len(self.blockers.hits) > hits:
                return self._reference_reply(hits)
            return {"ok": False, "category": "raised", "error": describe_exception(exc, self.blockers)}
        finally:
            self._guard()
        if len(self.blockers.hits) > hits:
            return self._reference_reply(hits)
        return self._reply_value(value, strict)

    def _refuse_blocked(self, obj):
        """A name the notebook bound to a blocked reference (``from genlab.x import ref``) is the
        reference itself: the hidden tests get the "write your own" reply, not the object."""
        shown = blocked_name(obj)
        if shown is None:
            return None
        return {"ok": False, "category": "reference", "references": [shown],
                "error": {"type": "ReferenceUsedError", "message": shown, "where": []}}

    def _reference_reply(self, hits):
        used = list(dict.fromkeys(self.blockers.hits[hits:]))
        del self.blockers.hits[hits:]
        return {"ok": False, "category": "reference", "references": used,
                "error": {"type": "ReferenceUsedError", "message": ", ".join(used), "where": []}}

    def _reply_value(self, value, strict):
        try:
            return {"ok": True, "value": Encoder(self.handles, strict, self.limits.items)(value)}
        except NotTransferable as exc:
            return {"ok": False, "category": "transfer", "error": {"type": "NotTransferable", "message": str(exc), "where": []}}
        except BaseException as exc:  # e.g. a generator of the submission raised while consumed
            return {"ok": False, "category": "raised", "error": describe_exception(exc, self.blockers)}

    def _probe(self, request):
        name = request["name"]
        filename = f"<probe {name} {os.urandom(8).hex()}>"
        self.blockers.trusted.add(filename)
        source = request["source"]
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        kwargs = decode_args(request.get("kwargs", {}), self.handles)
        module = {"__name__": f"genlab_probe_{name}", "__builtins__": __builtins__}
        exec(compile(source, filename, "exec", dont_inherit=True), module)
        run = module.get("run")
        if not callable(run):
            raise ValueError(f"probe {name} defines no run(namespace, **kwargs)")
        view = GuardedNamespace(self.namespace, self.blockers)
        return self._student(lambda: run(view, **kwargs), strict=True)


# ---------------------------------------------------------------- notebook helpers
def run_cell(python: str, filename: str, namespace: dict) -> None:
    """Run one cell's Python (IPython syntax already transformed) the way a kernel does:
    in the notebook's namespace, with top-level ``await`` allowed."""
    code = compile(python, filename, "exec", flags=_TOP_LEVEL_AWAIT, dont_inherit=True)
    if code.co_flags & inspect.CO_COROUTINE:
        import asyncio

        asyncio.run(eval(code, namespace))
    else:
        exec(code, namespace)


def _display(*objects, **kwargs):
    for obj in objects:
        print(short_repr(obj, 2000))


# ----------------------------------------------------------------------------- main
_torch = _numpy = None


def main():
    start(json.loads(sys.argv[1]))


def start(cfg: dict) -> None:
    """Read the init file, enter the jail, import torch and run the worker (never returns
    normally: the worker exits when the grader closes the pipe). ``worker_zygote.py`` calls
    this in each child it forks, with torch already imported."""
    global _torch, _numpy
    with open(cfg["init"], encoding="utf-8") as fh:  # read before dropping privileges
        init = json.load(fh)
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    import jail

    sys.path[:] = [p for p in sys.path if p != here]   # the grader's folder vanishes in the jail
    cfg["jail_file"] = jail.__file__
    isolation = jail.enter(cfg)
    sys.path[:0] = [p for p in cfg.get("library", []) if p not in sys.path]   # the grader's own genlab
    import torch

    _torch = torch
    codec.bind(torch)
    try:
        import numpy

        _numpy = numpy
    except ImportError:
        _numpy = None
    bind(_torch, _numpy)
    threads = int(cfg["limits"].get("threads", 1))
    torch.set_num_threads(threads)
    Worker(cfg, init, isolation).run()


if __name__ == "__main__":
    main()
