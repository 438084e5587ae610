"""Probe: the order of optimizer steps, ``zero_grad`` and backward calls during one call.

``run(namespace, fn, args=(), kwargs=None, optimizers=(), watch=None, watch_args=False, max_events=400)``

* ``fn``: a function name in the notebook, a ``Remote`` handle to a callable, or a library
  function ``"module:attr"`` (e.g. ``"genlab.models.gan:short_run"``) whose arguments carry
  the student's functions as ``Remote`` handles;
* ``optimizers``: optimizers that exist before the call (handles), watched besides every
  ``torch.optim.Optimizer`` constructed during it;
* ``watch``: ``{name: module or tensor}`` (handles) to report by name when a backward reaches them;
* ``watch_args``: make every floating-point tensor in ``args``/``kwargs`` require grad and
  report which backward reached it, by its path (``"args[1][0]"``, ``"kwargs['batches'][2]"``).

Recorded events, in order:

* ``{"kind": "zero_grad", "optimizer": i}``;
* ``{"kind": "backward", "via": "manual_backward" | "tensor.backward" | "autograd.backward",
  "optimizers": [i, ...], "watched": [name, ...], "inputs": [path, ...], "loss_dtype": str}``:
  the optimizers whose parameters, the watched modules/tensors and the inputs whose ``.grad``
  this backward changed;
* ``{"kind": "step", "optimizer": i, "grads_from": [event index, ...], "grad_finite": bool}``:
  ``grads_from`` lists the backward events whose gradients are in that optimizer's ``.grad``
  at the step (those since its gradients were last all ``None`` or zero, however they were
  cleared).

Returns ``{"optimizers": [{"index", "class", "names", "n_params"}], "events": [...],
"truncated": bool, "result": fn's return value when it is plain data (else None),
"error": None or "Type: message (at <cell N> line L)"}``. Standard library and torch only.
"""
import importlib
import sys
import threading
import types

import torch

_PLAIN = (bool, int, float, str, type(None))


def _plain(value, depth=0):
    if depth > 6:
        return False
    if isinstance(value, _PLAIN) or isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _grads(tensors):
    return [None if t.grad is None else t.grad.detach().clone() for t in tensors]


def _changed(tensors, before):
    for t, old in zip(tensors, before, strict=True):
        new = t.grad
        if new is None:
            continue
        if old is None:
            if bool(new.detach().ne(0).any()):
                return True
        elif new.shape != old.shape or bool(new.detach().ne(old).any()):
            return True
    return False


def _clear(tensors):
    return all(t.grad is None or not bool(t.grad.detach().ne(0).any()) for t in tensors)


def _params_of(opt):
    groups = getattr(opt, "param_groups", None)
    if groups is not None:
        return [p for g in groups for p in g["params"] if isinstance(p, torch.Tensor)]
    params = getattr(opt, "params", None) or getattr(opt, "parameters", None)
    if callable(params):
        params = params()
    return [p for p in (params or []) if isinstance(p, torch.Tensor)]


def _where(exc):
    tb, last = exc.__traceback__, None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name.startswith("<cell"):
            last = f"{name} line {tb.tb_lineno}"
        tb = tb.tb_next
    return f" (at {last})" if last else ""


class _Recorder:
    def __init__(self, max_events):
        self.max_events = int(max_events)
        self.events, self.truncated = [], False
        self.optimizers, self.infos = [], []       # objects, plain descriptions
        self.groups = {}                           # key -> tensors ("opt:i", "watch:name", "input:path")
        self.contrib = {}                          # "opt:i" -> backward event indices
        self.local = threading.local()

    # -- registration
    def add_optimizer(self, opt):
        if any(o is opt for o in self.optimizers):
            return
        i = len(self.optimizers)
        self.optimizers.append(opt)
        groups = getattr(opt, "param_groups", None) or []
        names = [g.get("name") for g in groups if isinstance(g, dict) and isinstance(g.get("name"), str)]
        params = _params_of(opt)
        self.infos.append({"index": i, "class": type(opt).__name__, "names": names, "n_params": len(params)})
        self.groups[f"opt:{i}"] = params
        self.contrib[f"opt:{i}"] = []
        self._wrap(opt, i)

    def _wrap(self, opt, i):
        step, zero_grad = getattr(opt, "step", None), getattr(opt, "zero_grad", None)
        recorder = self
        # bound methods, as an LR scheduler expects of ``optimizer.step``
        if callable(step):
            def wrapped_step(_self, *a, **k):
                recorder.on_step(i)
                return step(*a, **k)
            opt.step = types.MethodType(wrapped_step, opt)
        # torch optimizers: Optimizer.zero_grad is patched on the class during the call, which also
        # catches the zero_grad of wrappers that subclass the optimizer's class (LightningOptimizer)
        if callable(zero_grad) and not isinstance(opt, torch.optim.Optimizer):
            def wrapped_zero_grad(_self, *a, **k):
                out = zero_grad(*a, **k)
                recorder.on_zero_grad(i)
                return out
            opt.zero_grad = types.MethodType(wrapped_zero_grad, opt)

    # -- events
    def _add(self, event):
        if len(self.events) >= self.max_events:
            self.truncated = True
            return None
        self.events.append(event)
        return len(self.events) - 1

    def _refresh(self):
        for key, tensors in self.groups.items():
            if key.startswith("opt:") and _clear(tensors):
                self.contrib[key] = []

    def index_of(self, opt):
        target = opt.__dict__.get("_optimizer", opt) if hasattr(opt, "__dict__") else opt
        return next((i for i, o in enumerate(self.optimizers) if o is target or o is opt), None)

    def on_zero_grad(self, i):
        self._refresh()
        self._add({"kind": "zero_grad", "optimizer": i})

    def on_step(self, i):
        self._refresh()
        params = self.groups[f"opt:{i}"]
        finite = all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in params)
        self._add({"kind": "step", "optimizer": i, "grads_from": list(self.contrib[f"opt:{i}"]),
                   "grad_finite": finite})

    def backward(self, original, via, tensor, *a, **k):
        if getattr(self.local, "depth", 0):
            return original(tensor, *a, **k)
        self._refresh()
        keys = list(self.groups)
        before = {key: _grads(self.groups[key]) for key in keys}
        self.local.depth = 1
        try:
            out = original(tensor, *a, **k)
        finally:
            self.local.depth = 0
        manual = getattr(self.local, "manual", 0) > 0
        hit = [key for key in keys if _changed(self.groups[key], before[key])]
        dtype = getattr(tensor, "dtype", None)
        index = self._add({
            "kind": "backward",
            "via": "manual_backward" if manual else via,
            "optimizers": [int(key[4:]) for key in hit if key.startswith("opt:")],
            "watched": [key[6:] for key in hit if key.startswith("watch:")],
            "inputs": [key[6:] for key in hit if key.startswith("input:")],
            "loss_dtype": str(dtype).replace("torch.", "") if dtype is not None else None,
        })
        if index is not None:
            for key in hit:
                if key.startswith("opt:"):
                    self.contrib[key].append(index)
        return out


def _resolve(namespace, fn):
    if not isinstance(fn, str):
        return fn
    if ":" in fn:
        module, _, attr = fn.partition(":")
        return getattr(importlib.import_module(module), attr)
    return namespace[fn]


def _mark_inputs(value, path, out):
    if isinstance(value, torch.Tensor):
        if value.is_floating_point():
            value = value.detach().clone().requires_grad_(True)
            out[path] = value
        return value
    if isinstance(value, list):
        return [_mark_inputs(v, f"{path}[{i}]", out) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(_mark_inputs(v, f"{path}[{i}]", out) for i, v in enumerate(value))
    if isinstance(value, dict):
        return {k: _mark_inputs(v, f"{path}[{k!r}]", out) for k, v in value.items()}
    return value


def run(namespace, fn, args=(), kwargs=None, optimizers=(), watch=None, watch_args=False, max_events=400):
    func = _resolve(namespace, fn)
    args, kwargs = list(args), dict(kwargs or {})
    rec = _Recorder(max_events)
    inputs = {}
    if watch_args:
        args = _mark_inputs(args, "args", inputs)
        kwargs = _mark_inputs(kwargs, "kwargs", inputs)
    for path, tensor in inputs.items():
        rec.groups[f"input:{path}"] = [tensor]
    for name, obj in dict(watch or {}).items():
        tensors = [obj] if isinstance(obj, torch.Tensor) else list(obj.parameters())
        rec.groups[f"watch:{name}"] = tensors
    for opt in optimizers:
        rec.add_optimizer(opt)

    saved = {"init": torch.optim.Optimizer.__init__, "zero_grad": torch.optim.Optimizer.zero_grad,
             "tensor": torch.Tensor.backward, "autograd": torch.autograd.backward}
    original_init, original_zero_grad = saved["init"], saved["zero_grad"]

    def init(self, *a, **k):
        original_init(self, *a, **k)
        rec.add_optimizer(self)

    def zero_grad(self, *a, **k):
        out = original_zero_grad(self, *a, **k)
        i = rec.index_of(self)
        if i is not None:
            rec.on_zero_grad(i)
        return out

    def tensor_backward(self, *a, **k):
        return rec.backward(saved["tensor"], "tensor.backward", self, *a, **k)

    def autograd_backward(tensors, *a, **k):
        return rec.backward(saved["autograd"], "autograd.backward", tensors, *a, **k)

    module_class = None
    if "lightning.pytorch" in sys.modules:
        module_class = sys.modules["lightning.pytorch"].LightningModule
        saved["manual"] = module_class.manual_backward
        original_manual = saved["manual"]

        def manual_backward(self, loss, *a, **k):
            rec.local.manual = getattr(rec.local, "manual", 0) + 1
            try:
                return original_manual(self, loss, *a, **k)
            finally:
                rec.local.manual -= 1

    result, error = None, None
    torch.optim.Optimizer.__init__ = init
    torch.optim.Optimizer.zero_grad = zero_grad
    torch.Tensor.backward = tensor_backward
    torch.autograd.backward = autograd_backward
    if module_class is not None:
        module_class.manual_backward = manual_backward
    try:
        result = func(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - reported as data; BaseExceptions (blocked references) propagate
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        error = f"{type(exc).__name__}: {text[:500]}{_where(exc)}" if text else f"{type(exc).__name__}{_where(exc)}"
    finally:
        torch.optim.Optimizer.__init__ = saved["init"]
        torch.optim.Optimizer.zero_grad = saved["zero_grad"]
        torch.Tensor.backward = saved["tensor"]
        torch.autograd.backward = saved["autograd"]
        if module_class is not None:
            module_class.manual_backward = saved["manual"]
    return {
        "optimizers": rec.infos,
        "events": rec.events,
        "truncated": rec.truncated,
        "result": result if _plain(result) else None,
        "error": error,
    }
