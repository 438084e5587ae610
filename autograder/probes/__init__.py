"""Probes: small scripts that run beside a submission, in its worker, and return plain data.

A probe is a file ``<name>.py`` here (shared) or in a lab's ``probes/`` folder (lab-specific).
The grader sends the file's text to the worker, which executes it and calls
``run(namespace, **kwargs)``: ``namespace`` is the notebook's global namespace and the
keyword arguments come from ``submission.probe(name, **kwargs)`` (tensors, plain values,
or objects from the notebook that the test holds as ``Remote`` handles). ``run`` must
return plain data: numbers, strings, tensors, and lists/tuples/dicts of them. The verdict
is reached in the hidden test, never in the probe. Probes use only the standard library,
torch and numpy (``autograder`` is not importable in the worker).
"""
