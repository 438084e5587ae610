"""The grading worker: runs one submission's code cells, then answers the grader's requests.

A self-contained script (standard library, torch and numpy only): the grader copies it, with
its siblings (``sandbox.WORKER_FILES``), into a fresh temporary folder and runs it with the
virtual environment's python:

    python -s -B worker.py CONFIG_JSON

``autograder/`` is hidden from it, so it must never import ``autograder``. Steps:

1. ``jail.enter(config)``: namespaces, mounts, limits, unprivileged uid (see ``sandbox.py``).
   The init file (JSON: the code cells, the blocked references) is read before that.
2. import torch, numpy.
3. Install the reference blockers, then execute the cells in one namespace
   (``__name__ == "__main__"``), each compiled as ``<cell N>``. IPython magics and shell lines
   are commented out. Every exception, ``SystemExit``/``KeyboardInterrupt`` included, is
   recorded and execution goes on. A ``progress`` frame precedes each cell.
4. Send ``ready`` and serve requests: get, call, method, getattr, probe, release.

Protocol: the frames of ``framing.py`` (an 8-byte big-endian length, then a payload whose
first byte says ``J`` (JSON) or ``T`` (``torch.save``)). Replies carry only plain data and
tensors; other objects stay here in a handle table and cross as
``{"__remote__": id, "type", "repr"}``.

Limits of the design: submission code runs in this process, so it could in principle forge
replies (or undo a blocker) through the inherited pipe or ``gc``. That only ever yields
plain data in the grader, which loads it with ``weights_only=True`` and reaches every
verdict itself; it cannot run code in the grader, read the hidden tests or touch results.
"""
import json
import linecache
import os
import re
import sys
import time
import traceback
import types

if __package__:  # imported as autograder.runner.worker (the grader's own tests)
    from . import framing
    from .worker_blockers import Blockers, ReferenceUsedError
    from .worker_output import CappedWriter
    from .worker_values import Encoder, Handles, NotTransferable, bind, decode_args, short_repr
else:  # run as a script from the temporary folder the grader copied it to
    import framing
    from worker_blockers import Blockers, ReferenceUsedError
    from worker_output import CappedWriter
    from worker_values import Encoder, Handles, NotTransferable, bind, decode_args, short_repr

_MAGIC = re.compile(r"^(\s*)((%{1,2}[A-Za-z])|(![^=\s]))")

# Bound early so that a submission replacing os.write & co. cannot derail the protocol.
_getpid, _os_exit = os.getpid, os._exit


# -------------------------------------------------------------------------- the pipe
class Channel:
    """The worker's end of the pipe (``framing.py``): requests in on ``req``, replies out on ``resp``."""

    def __init__(self, req_fd: int, resp_fd: int):
        self.req, self.resp = req_fd, resp_fd

    def read(self):
        """The next request; raises ``framing.FrameEOF`` when the grader is gone."""
        return framing.load_payload(framing.read_frame(self.req), _torch_load)

    def send_payload(self, payload: bytes) -> None:
        framing.write_frame(self.resp, payload)

    def send_json(self, obj) -> None:
        self.send_payload(framing.json_payload(obj))

    def encode_torch(self, obj) -> bytes:
        return framing.torch_payload(obj, _torch_save)


# ----------------------------------------------------------------------- exceptions
def describe_exception(exc: BaseException, blockers: Blockers) -> dict:
    try:
        message = str(exc)
        if not isinstance(message, str):
            raise TypeError
    except BaseException:
        message = "(the exception's message could not be printed)"
    if len(message) > 1500:
        message = message[:1500] + "...(truncated)"
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
    return {"type": type(exc).__name__, "message": message, "where": where[-6:]}


# --------------------------------------------------------------------------- worker
class Worker:
    def __init__(self, cfg: dict, init: dict, isolation: str):
        self.cfg = cfg
        self.init = init
        self.isolation = isolation
        self.main_pid = _getpid()
        self.channel = Channel(cfg["fds"]["req"], cfg["fds"]["resp"])
        self.handles = Handles()
        self.blockers = Blockers(cfg.get("workdir", os.getcwd()))
        ours = [__file__, cfg.get("jail_file", ""), framing.__file__] + [
            getattr(sys.modules.get(cls.__module__), "__file__", "") for cls in (Blockers, Encoder, CappedWriter)
        ]
        self.blockers.trusted.update(p for f in ours if f for p in (f, os.path.abspath(f)))
        self.namespace = None
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
        self.namespace = self._make_namespace()
        sys.path.insert(0, "")  # like a Jupyter kernel: modules in the working folder import
        seed = int(init.get("seed", 0))
        cells = self._run_cells(init.get("cells", []), seed)
        self._guard()
        self.channel.send_json({"kind": "ready", "cells": cells, "isolation": self.isolation, "warnings": warnings})
        self.serve()

    def _guard(self):
        if _getpid() != self.main_pid:
            _os_exit(0)
        sys.stdout, sys.stderr = self.stdout, self.stderr

    def _make_namespace(self):
        module = types.ModuleType("__main__")
        module.__dict__["__builtins__"] = __builtins__
        module.__dict__["display"] = _display
        module.__dict__["get_ipython"] = _get_ipython
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
            source = strip_magics(cell["source"])
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            self.channel.send_json({"kind": "progress", "cell": index})
            start = time.monotonic()
            error = None
            try:
                code = compile(source, filename, "exec", dont_inherit=True)
                exec(code, self.namespace)
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
                payload = self.channel.encode_torch(reply)
                if len(payload) > framing.MAX_FRAME:
                    raise NotTransferable(
                        f"returned {len(payload) >> 20} MiB; the limit is {framing.MAX_FRAME >> 20} MiB")
            except BaseException as exc:
                fallback = {"kind": "reply", "seq": request.get("seq"), "ok": False, "category": "transfer",
                            "error": {"type": type(exc).__name__, "message": str(exc)[:500], "where": []}}
                payload = self.channel.encode_torch(fallback)
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
            return self._reply_value(self.namespace[name], strict=False)
        if op == "call":
            target = request["target"]
            if isinstance(target, str):
                if target not in self.namespace:
                    return {"ok": False, "category": "not_defined", "error": {"type": "NameError", "message": target, "where": []}}
                fn = self.namespace[target]
            else:
                fn = self.handles.get(target)
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
            value = thunk()
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

    def _reference_reply(self, hits):
        used = list(dict.fromkeys(self.blockers.hits[hits:]))
        del self.blockers.hits[hits:]
        return {"ok": False, "category": "reference", "references": used,
                "error": {"type": "ReferenceUsedError", "message": ", ".join(used), "where": []}}

    def _reply_value(self, value, strict):
        try:
            return {"ok": True, "value": Encoder(self.handles, strict)(value)}
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
        return self._student(lambda: run(self.namespace, **kwargs), strict=True)


# ---------------------------------------------------------------- notebook helpers
def strip_magics(source: str) -> str:
    """Comment out IPython magics (``%x``, ``%%x``) and shell lines (``!x``)."""
    lines = source.split("\n")
    for i, line in enumerate(lines):
        m = _MAGIC.match(line)
        if m:
            lines[i] = f"{m.group(1)}pass  # {line.strip()}"
    return "\n".join(lines)


def _display(*objects, **kwargs):
    for obj in objects:
        print(short_repr(obj, 2000))


class _IPythonStub:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _get_ipython():
    return _IPythonStub()


# ----------------------------------------------------------------------------- main
_torch = _numpy = _torch_save = _torch_load = None


def main():
    global _torch, _numpy, _torch_save, _torch_load
    cfg = json.loads(sys.argv[1])
    with open(cfg["init"], encoding="utf-8") as fh:  # read before dropping privileges
        init = json.load(fh)
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    import jail

    sys.path[:] = [p for p in sys.path if p != here]   # the grader's folder vanishes in the jail
    cfg["jail_file"] = jail.__file__
    isolation = jail.enter(cfg)
    import torch

    _torch, _torch_save, _torch_load = torch, torch.save, torch.load
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
