"""Probe: load the weights a test needs into a submission's module, and nothing else.

``run(namespace, module, state, exact=False)``

* ``module``: a ``Remote`` handle to an ``nn.Module`` (or the name of one in the notebook);
* ``state``: ``{name: tensor}``, the entries to load (``module.load_state_dict(state,
  strict=False)``: whatever else the module holds, such as a buffer it registers, keeps
  its own value and is no reason to fail);
* ``exact``: the module's *parameters* must be exactly the keys of ``state`` (buffers are
  not parameters: a correct module that registers one still passes).

Raises ``ValueError`` with a sentence for the student when a key is not in the module, a
shape differs, or (``exact``) parameters are missing or extra. Returns
``{"loaded": [names], "parameters": [names], "buffers": [names]}``.
"""
import torch


def _names(items, limit=8):
    items = sorted(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def run(namespace, module, state, exact=False):
    mod = namespace[module] if isinstance(module, str) else module
    if not isinstance(mod, torch.nn.Module):
        raise ValueError(f"expected an nn.Module, got a {type(mod).__name__}")
    params = dict(mod.named_parameters())
    buffers = dict(mod.named_buffers())
    unknown = [k for k in state if k not in params and k not in buffers]
    if unknown:
        raise ValueError(f"the module has no parameter or buffer named {_names(unknown)} "
                         f"(its parameters: {_names(params) or 'none'})")
    wrong = [f"{k} is {tuple((params.get(k) if k in params else buffers[k]).shape)}, expected "
             f"{tuple(v.shape)}" for k, v in state.items()
             if tuple((params.get(k) if k in params else buffers[k]).shape) != tuple(v.shape)]
    if wrong:
        raise ValueError("wrong shapes: " + "; ".join(wrong[:6]))
    if exact:
        missing = [k for k in params if k not in state]
        if missing:
            raise ValueError(f"the module has parameters the test did not expect: {_names(missing)}")
    mod.load_state_dict(dict(state), strict=False)
    return {"loaded": sorted(state), "parameters": sorted(params), "buffers": sorted(buffers)}
