"""Probes: small scripts that run beside a submission, in its worker, and return plain data.

Shared probes live here, one file ``<name>.py`` each: ``autocast`` (dtypes and ops under
``torch.autocast``), ``gradients`` (gradient flow and detach), ``contract`` (inputs kept,
no state, gradients: ``genlab.checks.contract``), ``load_state`` (load only the weights a
test gives, buffers aside), ``lightning_fit`` (a few Lightning steps, e.g. 16-mixed on a GPU,
of a genlab model built with the student's parts), and those the labs add for every lab's
use. A lab may add its own in ``autograder/<lab>/probes/``; one named like a shared probe is
a ``LabError`` when the lab is loaded (extend the shared probe instead of copying it).
Files whose name starts with ``_`` are not probes.

The grader sends the file's text to the worker, which executes it and calls
``run(namespace, **kwargs)``: ``namespace`` is the notebook's global namespace and the
keyword arguments come from ``submission.probe(name, **kwargs)`` (tensors, plain values,
or objects from the notebook that the test holds as ``Remote`` handles). ``run`` must
return plain data: numbers, strings, tensors, and lists/tuples/dicts of them. The verdict
is reached in the hidden test, never in the probe. Probes use only the standard library,
torch, numpy and genlab (``autograder`` is not importable in the worker); their calls of
blocked references pass, like library code's.
"""
