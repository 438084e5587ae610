"""Promises every graded function keeps, which no comparison of values can see.

A value check calls a function once, on fresh tensors, and compares the result. These are the
promises it cannot see, and the model breaks when one is broken:

* **no input changed in place**: ``q /= scale`` or ``x.masked_fill_(...)`` gives the right
  answer and corrupts the caller's tensor (a training loop reuses it);
* **no state kept between calls**: after a call on other inputs, the same inputs give the same
  result (a module-level cache, a counter or a default list argument breaks this);
* **gradients reach every floating-point input** and, for a module, every parameter: a
  ``.detach()``, ``torch.no_grad()`` or ``.item()`` in the computation leaves them ``None``,
  and the model silently stops learning through it;
* **autograd is left on** for the caller (no ``torch.set_grad_enabled(False)`` left behind).

``observe`` calls the function as these promises need and records plain data; ``judge`` reads
that record against the arguments and returns the first broken promise as a sentence for the
student, or ``None``; ``contract_problem`` is both. The public checks call it in the notebook.
The hidden tests run ``observe`` inside the grading worker (probe ``contract``) on the very
objects the submission gets, and ``judge`` in the grader, so the verdict never comes from the
student's process and the two agree. Nothing here computes the function's answer.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

FIX_DETACH = ("remove .detach(), .data, .item() or torch.no_grad() from the computation, so that "
              "backward() can reach it")


def _names(args: Sequence, names: Sequence[str] | None) -> list[str]:
    names = list(names or [])
    return [f"`{names[i]}`" if i < len(names) else f"argument {i + 1}" for i in range(len(args))]


def _copy(args: Sequence) -> list:
    return [a.detach().clone() if isinstance(a, Tensor) else a for a in args]


def _floating(value) -> bool:
    return isinstance(value, Tensor) and value.is_floating_point()



def tensors(value) -> list[Tensor]:
    """The tensors in ``value`` (a tensor, or tuples/lists of them, nested: an LSTM's ``(h, c)``), in order."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in tensors(v)]
    return []


def _pick(result, output_index: int | None) -> Tensor | None:
    if output_index is not None and isinstance(result, (tuple, list)) and len(result) > output_index:
        result = result[output_index]
    found = tensors(result)
    return found[0] if found else None


def _same(a: list[Tensor], b: list[Tensor]) -> bool:
    return len(a) == len(b) and all(
        x.shape == y.shape and x.dtype == y.dtype
        and bool(torch.allclose(x.detach().double(), y.detach().double(), rtol=1e-6, atol=1e-7, equal_nan=True))
        for x, y in zip(a, b, strict=True))


def _other_inputs(args: Sequence) -> list:
    """The same arguments with every floating-point tensor moved a little (a second input)."""
    g = torch.Generator().manual_seed(20261202)
    return [a.detach() + 0.5 * torch.randn(a.shape, generator=g).to(a.dtype) if _floating(a) else a for a in args]


def observe(fn: Callable, args: Sequence, kwargs: dict | None = None, output_index: int | None = 0,
            check_grads: bool = True) -> dict:
    """Call ``fn`` on copies of ``args`` as the promises need, and record what happened.

    Returns plain data (what the grading worker sends back): ``inputs_after`` (the argument
    tensors after a first call, on the objects it got), ``written`` (per argument: did the call
    write into it, even values it already held, as ``x.clamp_(...)`` in range does: torch's
    version counter moved), ``grad_enabled`` (after that call),
    ``first`` and ``again`` (the result's tensors, before and after a call on other inputs),
    and with ``check_grads`` ``requires_grad`` (of the chosen output), ``grads`` (per
    argument: did a nonzero gradient reach it; ``None`` for non-float arguments) and
    ``param_grads`` (a module's parameters: did one reach it).
    What ``fn`` raises propagates, as it would from a plain call. Autograd is left as it was.
    """
    kwargs = dict(kwargs or {})
    grad_mode = torch.is_grad_enabled()
    try:
        inputs, before = _copy(args), _copy(args)
        versions = [a._version if isinstance(a, Tensor) else None for a in inputs]
        first = tensors(fn(*inputs, **kwargs))
        seen = {"inputs_after": [a if isinstance(a, Tensor) else None for a in inputs],
                "written": [isinstance(a, Tensor) and a._version != v for a, v in zip(inputs, versions, strict=True)],
                "grad_enabled": torch.is_grad_enabled()}
        if any(seen["written"]) or any(isinstance(a, Tensor) and not (a.shape == b.shape and torch.equal(a, b))
                                       for a, b in zip(inputs, before, strict=True)):
            return seen   # an input changed in place: that is the finding (autograd would refuse it on a leaf)
        torch.set_grad_enabled(True)
        fn(*_other_inputs(args), **kwargs)
        seen["first"] = [t.detach() for t in first]
        seen["again"] = [t.detach() for t in tensors(fn(*_copy(args), **kwargs))]
        if check_grads:
            seen.update(_observe_gradients(fn, args, kwargs, output_index))
        return seen
    finally:
        torch.set_grad_enabled(grad_mode)   # whatever the function left behind, the caller's mode


def _observe_gradients(fn, args, kwargs, output_index) -> dict:
    leaves = [a.detach().clone().requires_grad_(True) if _floating(a) else a for a in args]
    params = [(n, p) for n, p in fn.named_parameters() if p.requires_grad] if isinstance(fn, nn.Module) else []
    for _, p in params:
        p.grad = None
    out = _pick(fn(*leaves, **kwargs), output_index)
    if out is None or not out.is_floating_point():
        return {}
    seen = {"requires_grad": bool(out.requires_grad), "grads": [None] * len(leaves), "param_grads": {}}
    if out.requires_grad:
        # a random upstream gradient: ones would give exact zeros through a softmax (rows sum to 1)
        upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(7)).to(out.dtype)
        out.backward(upstream)
        seen["grads"] = [bool(a.grad is not None and a.grad.any()) if _floating(a) else None for a in leaves]
        seen["param_grads"] = {n: p.grad is not None for n, p in params}
    for _, p in params:
        p.grad = None
    return seen


def judge(seen: dict, args: Sequence, what: str, names: Sequence[str] | None = None) -> str | None:
    """The first broken promise in ``observe``'s record of a call on ``args``, or ``None``."""
    shown = _names(args, names)
    after = list(seen.get("inputs_after") or [])
    written = list(seen.get("written") or [])
    changed = [shown[i] for i, a in enumerate(args) if isinstance(a, Tensor) and (
        (i < len(written) and written[i] is True)
        or not (i < len(after) and isinstance(after[i], Tensor) and after[i].shape == a.shape
                and torch.equal(after[i], a)))]
    if changed:
        return (f"{what} changed its input {', '.join(changed)} in place (an operation ending in _, or "
                "x[...] = ..., or /= on an argument); compute new tensors instead, because the caller may "
                "still need its inputs.")
    if seen.get("grad_enabled") is not True:
        return (f"{what} left gradients switched off for its caller (torch.set_grad_enabled(False) or "
                "torch.no_grad().__enter__() without a matching exit); use `with torch.no_grad():` blocks, "
                "if any.")
    if not _same(list(seen.get("first") or []), list(seen.get("again") or [])):
        return (f"{what} gave a different result for the same inputs after one call on other inputs: it keeps "
                "state between calls (a global variable, a cache, a default list argument or an attribute it "
                "changes). Compute the result from the arguments alone.")
    if "requires_grad" not in seen:
        return None
    if not seen["requires_grad"]:
        return f"{what}'s result is not connected to its inputs for autograd: {FIX_DETACH}."
    grads = list(seen.get("grads") or [])
    missing = [shown[i] for i, a in enumerate(args) if _floating(a) and not (i < len(grads) and grads[i] is True)]
    missing += [f"the parameter `{n}`" for n, ok in dict(seen.get("param_grads") or {}).items() if ok is not True]
    if missing:
        return f"no gradient reaches {', '.join(missing)} through {what}'s result: {FIX_DETACH}."
    return None


def contract_problem(fn: Callable, args: Sequence, what: str, names: Sequence[str] | None = None,
                     kwargs: dict | None = None, output_index: int | None = 0,
                     check_grads: bool = True) -> str | None:
    """The first promise ``fn(*args, **kwargs)`` breaks (see the module docstring), or ``None``.

    ``names`` are the arguments' names for the message; ``output_index`` picks the tensor of a
    tuple result whose gradients are checked (``0``: the output of ``(output, weights)``);
    ``check_grads=False`` for functions whose result is not differentiable (indices, bools).
    """
    return judge(observe(fn, args, kwargs, output_index, check_grads), args, what, names)
