"""The isolated grading runner: runs a submission in a sandboxed worker and the hidden
tests in the grader's own process. One job per module:

* one notebook: ``grade`` (``grade_notebook``), ``grade_one`` (the same in a fresh process),
  ``plugin`` (pytest), ``notebook`` (read and restore), ``lab`` (``lab.toml``, probes);
* what hidden tests use: ``submission`` (the ``submission`` fixture, ``Remote``), ``errors``;
* the grader's side of the worker: ``worker_client`` (start, requests), ``wire`` (values),
  ``sandbox`` (how the worker is started and isolated);
* the worker, copied into its sandbox: ``worker``, ``framing`` (the one framing, shared
  with the grader), ``worker_blockers``, ``worker_values``, ``worker_output``, ``jail``;
* many notebooks: ``batch`` (the loop), ``store`` (the output folder and its lock),
  ``launcher`` (grader processes), ``fork_client`` and ``fork_server``, ``discover``;
* outputs: ``results``, ``reports``, ``gradescope``, ``gradebook``; ``cli`` (``genlab grade``).
"""
