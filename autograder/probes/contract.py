"""Probe: what a call does to its inputs, its state and autograd (``genlab.checks.contract``).

``run(namespace, fn, args=(), kwargs=None, output_index=0, check_grads=True, adapter=None)``

* ``fn``: a function name in the notebook, or a ``Remote`` handle to a callable (a module);
* ``adapter``: ``"genlab.module:attr"``, a wrapper the callable is passed through first, when
  its arguments or result do not fit ``observe`` as they are (lab 01: ``read_windows`` reads a
  generator to its end; ``FlatStateCell`` takes an LSTM state ``(h, c)`` as two inputs). It is
  loaded from the library's file afresh, as ``observe`` is;
* the other arguments are ``genlab.checks.contract.observe``'s. An argument (or keyword
  argument) written ``{"__build__": "package.module:attr", "kwargs": {...}, "state_dict": {...}}``
  is the object ``attr(**kwargs)`` built here from the library (weights loaded, ``eval()`` for
  a module), once: every call of ``observe`` gets that same object. This gives a function the
  module or callable it takes (a decoder, a search's ``step``) without the notebook's help; the
  spec is ``recorded_inputs``'s ``module``.

It runs here, on the very objects the submission gets (a tensor that crossed the pipe is a
fresh copy in every call, so an in-place change or kept state is invisible from the grader's
side). ``observe`` is loaded from the library's file afresh, not taken from the notebook's
``genlab`` modules, which the submission could have changed. The verdict is the hidden test's
(``autograder.kit.expect_contract``: ``contract.judge`` in the grader, which reads a built
argument as what it is, not a tensor).

Returns ``observe``'s record: plain data and tensors.
"""
import importlib
import importlib.util

import torch

BUILD = "__build__"


def _fresh(modname: str):
    """``modname`` executed afresh from its file: not the notebook's copy, which it could have changed."""
    origin = importlib.util.find_spec(modname).origin
    spec = importlib.util.spec_from_file_location(f"_genlab_probe_{modname.replace('.', '_')}", origin)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _built(value):
    if not (isinstance(value, dict) and BUILD in value):
        return value
    modname, _, attr = str(value[BUILD]).partition(":")
    obj = getattr(importlib.import_module(modname), attr)(**dict(value.get("kwargs") or {}))
    if value.get("state_dict") is not None:
        obj.load_state_dict(value["state_dict"])
    return obj.eval() if isinstance(obj, torch.nn.Module) else obj


def run(namespace, fn, args=(), kwargs=None, output_index=0, check_grads=True, adapter=None):
    func = namespace[fn] if isinstance(fn, str) else fn
    if adapter is not None:   # "genlab.checks.lab01:read_windows": wraps the submission's callable
        modname, _, attr = str(adapter).partition(":")
        func = getattr(_fresh(modname), attr)(func)
    args = [_built(a) for a in args]
    kwargs = {k: _built(v) for k, v in dict(kwargs or {}).items()}
    observe = _fresh("genlab.checks.contract").observe
    return observe(func, args, kwargs=kwargs, output_index=output_index, check_grads=check_grads)
