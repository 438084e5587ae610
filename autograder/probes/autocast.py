"""Probe: call a submission function under ``torch.autocast`` and report what happened.

``run(namespace, fn, args=(), kwargs=None, device="cpu", dtype="bfloat16", max_ops=200)``

* ``fn``: the name of a function in the notebook, or a ``Remote`` handle to a callable;
* ``device``/``dtype``: the autocast device type and lower-precision dtype ("float16" is
  emulated on CPU); tensors in ``args`` are moved to ``device``.

Returns ``{"outputs": [float32 cpu tensors], "output_dtypes": [str], "finite": bool,
"ops": [(name, [input dtypes], output dtype)]}`` where ``ops`` lists the torch functions and
tensor methods the call used (first ``max_ops``), with the dtypes of their tensor inputs as
passed and of their result after autocast (``matmul`` under bfloat16 autocast gives
``("matmul", ["float32", "float32"], "bfloat16")``). A function mode is used rather than a
dispatch mode, which would import torch._dynamo (seconds).
"""
import torch
from torch.overrides import TorchFunctionMode


def _dtype(t):
    return str(t.dtype).replace("torch.", "")


class _Recorder(TorchFunctionMode):
    def __init__(self, limit):
        super().__init__()
        self.ops, self.limit = [], limit

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", str(func))
        if len(self.ops) < self.limit and name != "__get__":
            ins = [_dtype(a) for a in args if isinstance(a, torch.Tensor)]
            self.ops.append((name, ins, _dtype(out) if isinstance(out, torch.Tensor) else None))
        return out


def _flatten(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _flatten(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _flatten(v)


def _move(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(_move(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _move(v, device) for k, v in value.items()}
    return value


def run(namespace, fn, args=(), kwargs=None, device="cpu", dtype="bfloat16", max_ops=200):
    func = namespace[fn] if isinstance(fn, str) else fn
    low = getattr(torch, dtype)
    args = _move(list(args), device)
    kwargs = _move(dict(kwargs or {}), device)
    recorder = _Recorder(int(max_ops))
    with torch.autocast(device_type=device, dtype=low):
        with recorder:
            result = func(*args, **kwargs)
    outputs = [t.detach() for t in _flatten(result)]
    return {
        "outputs": [t.float().cpu() for t in outputs],
        "output_dtypes": [str(t.dtype).replace("torch.", "") for t in outputs],
        "finite": all(bool(torch.isfinite(t).all()) for t in outputs if t.is_floating_point()),
        "ops": recorder.ops,
    }
