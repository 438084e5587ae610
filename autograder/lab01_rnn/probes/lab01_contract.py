"""Probe: the contract (``genlab.checks.contract``) of a lab 01 part that needs an adapter.

``run(namespace, fn, adapter, args=(), kwargs=None, output_index=0, check_grads=True)``

* ``fn``: a function name in the notebook, or a ``Remote`` handle to a callable (a cell);
* ``adapter``: the name of an adapter in ``genlab.checks.lab01``: ``read_windows``
  (``stream_batches`` returns a generator, which runs only while it is read) or
  ``FlatStateCell`` (``LSTMCell`` takes ``(h, c)`` as one argument; the adapter takes h and c
  as inputs of their own, so that each is checked);
* the other arguments are ``genlab.checks.contract.observe``'s.

The shared probe ``contract`` without the adapter, for the same reasons: it runs here, on the
very objects the submission gets, with ``observe`` and the adapters loaded from the library's
files afresh (not the notebook's ``genlab`` modules, which the submission could have changed).
The hidden test judges the record with ``contract.judge``, the public check's own sentence.
"""
import importlib.util


def _fresh(module_name):
    origin = importlib.util.find_spec(module_name).origin
    spec = importlib.util.spec_from_file_location(f"_genlab_probe_{module_name.replace('.', '_')}", origin)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(namespace, fn, adapter, args=(), kwargs=None, output_index=0, check_grads=True):
    func = namespace[fn] if isinstance(fn, str) else fn
    wrapped = getattr(_fresh("genlab.checks.lab01"), adapter)(func)
    return _fresh("genlab.checks.contract").observe(wrapped, list(args), kwargs=kwargs, output_index=output_index,
                                                     check_grads=check_grads)
