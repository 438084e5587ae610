"""Probe: gradients of a submission function's output with respect to its tensor inputs.

``run(namespace, fn, args=(), kwargs=None, wrt=None, grad_output=None, output_index=None)``

* ``fn``: a function name in the notebook, or a ``Remote`` handle to a callable (a module);
* ``wrt``: indices of the positional tensor arguments to differentiate (default: all
  floating-point tensor arguments);
* ``output_index``: when ``fn`` returns a tuple/list, which element to differentiate;
* ``grad_output``: the upstream gradient (default: ones, i.e. the gradient of ``out.sum()``).

Returns ``{"output": tensor, "grads": [tensor or None per index in wrt], "wrt": [int],
"parameter_grads": {name: tensor or None}}`` (parameter grads only when ``fn`` is a module).
"""
import torch


def run(namespace, fn, args=(), kwargs=None, wrt=None, grad_output=None, output_index=None):
    func = namespace[fn] if isinstance(fn, str) else fn
    args = list(args)
    if wrt is None:
        wrt = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.is_floating_point()]
    for i in wrt:
        args[i] = args[i].detach().clone().requires_grad_(True)
    if isinstance(func, torch.nn.Module):
        func.zero_grad(set_to_none=True)
    out = func(*args, **dict(kwargs or {}))
    if output_index is not None:
        out = out[output_index]
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"expected a tensor output to differentiate, got {type(out).__name__}")
    upstream = torch.ones_like(out) if grad_output is None else grad_output.to(out.dtype)
    if out.requires_grad:
        out.backward(upstream)
    grads = [args[i].grad.detach().clone() if args[i].grad is not None else None for i in wrt]
    params = {}
    if isinstance(func, torch.nn.Module):
        params = {n: (p.grad.detach().clone() if p.grad is not None else None)
                  for n, p in func.named_parameters()}
    return {"output": out.detach(), "grads": grads, "wrt": list(wrt), "parameter_grads": params}
