"""Probe: the inputs a module receives. Call a notebook function and record, as plain tensors,
the arguments (and results) of every call of chosen submodules or methods during that call.

``run(namespace, fn, args=(), kwargs=None, module=None, record=(), outputs=True, max_calls=1000)``

* ``fn``: the name of a function in the notebook, or a ``Remote`` handle to a callable;
* ``module``: the object whose parts are recorded: a ``Remote`` handle to an ``nn.Module`` in
  the worker, or ``{"class": "package.module:Class", "kwargs": {...}, "state_dict": {...}}``
  to build one from the library (built here, by the grader, with ``eval()`` and the weights
  loaded). Wherever an argument of ``fn`` is the string ``"<module>"``, the module is passed;
* ``record``: attribute paths on the module (``"embedding"``, ``"attention"``, ``"cell.forward"``).
  A submodule is recorded with forward hooks; any other callable attribute is wrapped for the
  duration of the call and restored afterwards.

Returns ``{"error": None | "Type: message", "result": <fn's result as plain data>,
"calls": {path: [{"args": [...], "kwargs": {...}, "output": ...}, ...]}, "changed": [i, ...]}``:
``changed`` lists the positional arguments of ``fn`` that are tensors and were modified in
place by the call. Tensors are detached
CPU copies; values that are not plain data are replaced by their type name. Calls beyond
``max_calls`` per path are counted in ``"dropped"`` but not kept.
"""
import importlib

import torch

_MISSING = object()


def _plain(value, depth=0):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if depth < 4 and isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    if depth < 4 and isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    return f"<{type(value).__name__}>"


def _build(spec):
    modname, _, clsname = str(spec["class"]).partition(":")
    cls = getattr(importlib.import_module(modname), clsname)
    obj = cls(**dict(spec.get("kwargs") or {}))
    if spec.get("state_dict") is not None:
        obj.load_state_dict(spec["state_dict"])
    return obj.eval() if isinstance(obj, torch.nn.Module) else obj


def _resolve(root, path):
    owner, parts = root, path.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part)
    return owner, parts[-1]


def run(namespace, fn, args=(), kwargs=None, module=None, record=(), outputs=True, max_calls=1000):
    func = namespace[fn] if isinstance(fn, str) else fn
    target = _build(module) if isinstance(module, dict) else module
    calls = {path: [] for path in record}
    dropped = {path: 0 for path in record}
    undo = []

    def keep(path, entry):
        if len(calls[path]) < int(max_calls):
            calls[path].append(entry)
        else:
            dropped[path] += 1

    for path in record:
        owner, name = _resolve(target, path)
        attr = getattr(owner, name)
        if isinstance(attr, torch.nn.Module):
            pending = []

            def pre(mod, a, kw, path=path, pending=pending):
                pending.append({"args": _plain(list(a)), "kwargs": _plain(dict(kw))})

            def post(mod, a, kw, out, path=path, pending=pending):
                entry = pending.pop() if pending else {"args": _plain(list(a)), "kwargs": _plain(dict(kw))}
                if outputs:
                    entry["output"] = _plain(out)
                keep(path, entry)

            undo.append(attr.register_forward_pre_hook(pre, with_kwargs=True).remove)
            undo.append(attr.register_forward_hook(post, with_kwargs=True).remove)
        elif callable(attr):
            own = owner.__dict__.get(name, _MISSING) if hasattr(owner, "__dict__") else _MISSING

            def wrapper(*a, __attr=attr, __path=path, **kw):
                entry = {"args": _plain(list(a)), "kwargs": _plain(dict(kw))}
                out = __attr(*a, **kw)
                if outputs:
                    entry["output"] = _plain(out)
                keep(__path, entry)
                return out

            setattr(owner, name, wrapper)
            undo.append(lambda owner=owner, name=name, own=own: (
                delattr(owner, name) if own is _MISSING else setattr(owner, name, own)))
        else:
            raise TypeError(f"recorded_inputs: {path!r} is not a module or a callable")
    args = [target if isinstance(a, str) and a == "<module>" else a for a in args]
    kwargs = {k: (target if isinstance(v, str) and v == "<module>" else v) for k, v in dict(kwargs or {}).items()}
    before = {i: a.detach().clone() for i, a in enumerate(args) if isinstance(a, torch.Tensor)}
    try:
        result, error = func(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - reported to the test as data
        text = str(exc).strip()
        result, error = None, (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
    finally:
        for fn_undo in reversed(undo):
            fn_undo()
    changed = [i for i, t in before.items()
               if args[i].shape != t.shape or not torch.equal(args[i].detach(), t)]
    return {"error": error, "result": _plain(result), "calls": calls, "dropped": dropped, "changed": changed}
