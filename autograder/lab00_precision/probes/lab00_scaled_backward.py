"""Probe: the gradients a two-layer network gets from the student's ``scaled_backward``.

``run(ns, w1, w2, x, y, dtype="float32", scale=1.0, loss_weight=1.0)`` builds
``tanh(x @ w1) @ w2`` with leaf parameters of ``dtype``, computes the float32 cross-entropy
times ``loss_weight``, calls ``scaled_backward(loss, scale)`` and returns the parameters'
gradients as float32 tensors (None where a parameter got none), or the error it raised.
"""
import torch


def _get(ns, name):
    return ns[name] if isinstance(ns, dict) else getattr(ns, name)


def _error(exc):
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run(ns, w1, w2, x, y, dtype="float32", scale=1.0, loss_weight=1.0):
    dt = getattr(torch, dtype)
    params = [w.detach().to(dt).clone().requires_grad_(True) for w in (w1, w2)]
    logits = torch.tanh(x.to(dt) @ params[0]) @ params[1]
    loss = torch.nn.functional.cross_entropy(logits.float(), y) * loss_weight
    try:
        _get(ns, "scaled_backward")(loss, scale)
    except Exception as exc:  # noqa: BLE001 - reported to the test as data
        return {"error": _error(exc)}
    return {"error": None,
            "grads": [None if p.grad is None else p.grad.detach().float().clone() for p in params],
            "grad_dtypes": [None if p.grad is None else str(p.grad.dtype) for p in params]}
