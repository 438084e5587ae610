"""Probe: call a notebook function and report which tensor arguments it changed in place.

``run(ns, fn, args=(), kwargs=None)`` -> ``{"changed": [indices of positional tensor args
whose values changed], "changed_kwargs": [names], "output": the result if it is a tensor}``.
"""
import torch


def run(ns, fn, args=(), kwargs=None):
    func = ns[fn] if isinstance(fn, str) else fn
    args, kwargs = list(args), dict(kwargs or {})
    before = [a.clone() if isinstance(a, torch.Tensor) else None for a in args]
    before_kw = {k: v.clone() for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
    out = func(*args, **kwargs)
    changed = [i for i, (a, b) in enumerate(zip(args, before, strict=True)) if b is not None and not torch.equal(a, b)]
    changed_kw = [k for k, b in before_kw.items() if not torch.equal(kwargs[k], b)]
    return {"changed": changed, "changed_kwargs": changed_kw,
            "output": out.detach() if isinstance(out, torch.Tensor) else None}
