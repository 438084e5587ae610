"""Probe: train a small network in float16 autocast with the student's three loss-scaling functions.

``run(ns, device, w1, w2, x, y, steps, init_scale, growth_interval, lr)``: fp32 master weights
``w1``, ``w2`` (moved to ``device``), forward under ``torch.autocast(device, torch.float16)``,
the float32 cross-entropy of batch ``x[t], y[t]`` at step t, then
``scaled_backward(loss, scale)``, ``unscale_and_check(grads, scale)``, an SGD step unless
inf/NaN was found, and ``dynamic_scale_update(scale, found_inf, tracker,
growth_interval=growth_interval)``. Returns the scale and loss of every step, the steps
skipped and the final weights (CPU float32), or the error and the step it happened at.
"""
import torch


def _get(ns, name):
    return ns[name] if isinstance(ns, dict) else getattr(ns, name)


def _error(exc):
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run(ns, device, w1, w2, x, y, steps, init_scale, growth_interval, lr=0.1):
    if device == "cuda" and not torch.cuda.is_available():
        return {"error": "CUDA is not available in the worker", "step": None}
    scaled_backward = _get(ns, "scaled_backward")
    unscale_and_check = _get(ns, "unscale_and_check")
    dynamic_scale_update = _get(ns, "dynamic_scale_update")
    params = [w.detach().to(device).clone().requires_grad_(True) for w in (w1, w2)]
    x, y = x.to(device), y.to(device)
    opt = torch.optim.SGD(params, lr=lr)
    scale, tracker = float(init_scale), 0
    record = {"scales": [], "losses": [], "skipped": []}
    for step in range(int(steps)):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.float16):
            logits = torch.tanh(x[step] @ params[0]) @ params[1]
        loss = torch.nn.functional.cross_entropy(logits.float(), y[step])
        record["scales"].append(float(scale))
        record["losses"].append(float(loss.detach()))
        try:
            scaled_backward(loss, scale)
            grads, found_inf = unscale_and_check([p.grad for p in params], scale)
            if not found_inf:
                for p, g in zip(params, grads, strict=False):
                    p.grad = g.to(p.dtype)
                opt.step()
            else:
                record["skipped"].append(step)
            scale, tracker = dynamic_scale_update(scale, bool(found_inf), tracker, growth_interval=growth_interval)
        except Exception as exc:  # noqa: BLE001 - reported to the test as data
            return {**record, "error": _error(exc), "step": step}
    return {**record, "error": None, "step": None, "params": [p.detach().float().cpu() for p in params]}
