"""Probe: what a call does to its inputs, its state and autograd (``genlab.checks.contract``).

``run(namespace, fn, args=(), kwargs=None, output_index=0, check_grads=True)``

* ``fn``: a function name in the notebook, or a ``Remote`` handle to a callable (a module);
* the other arguments are ``genlab.checks.contract.observe``'s.

It runs here, on the very objects the submission gets (a tensor that crossed the pipe is a
fresh copy in every call, so an in-place change or kept state is invisible from the grader's
side). ``observe`` is loaded from the library's file afresh, not taken from the notebook's
``genlab`` modules, which the submission could have changed. The verdict is the hidden test's
(``autograder.kit.expect_contract``: ``contract.judge`` in the grader).

Returns ``observe``'s record: plain data and tensors.
"""
import importlib.util


def _fresh_observe():
    origin = importlib.util.find_spec("genlab.checks.contract").origin
    spec = importlib.util.spec_from_file_location("_genlab_contract_probe", origin)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.observe


def run(namespace, fn, args=(), kwargs=None, output_index=0, check_grads=True):
    func = namespace[fn] if isinstance(fn, str) else fn
    return _fresh_observe()(func, list(args), kwargs=kwargs, output_index=output_index, check_grads=check_grads)
