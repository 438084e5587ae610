"""The isolated grading runner: runs a submission in a sandboxed worker and the hidden
tests in the grader's own process. One job per module:

* one notebook: ``grade`` (``grade_notebook``), ``grade_one`` (the same in a fresh process),
  ``plugin`` (pytest), ``notebook`` (read and restore), ``cell_match`` (cells whose nbgrader
  metadata was stripped), ``ipython_cells`` (IPython syntax to Python, IPython's own
  transformer), ``lab`` (``lab.toml``, probes);
* what hidden tests use: ``submission`` (the ``submission`` fixture, ``Remote``), ``errors``;
* the grader's side of the worker: ``worker_client`` (start, requests, the total deadline),
  ``wire`` (values), ``sandbox`` (how the worker is started and isolated), ``output_pipe``
  (the worker's output stream, of which only the tail is kept);
* the worker, copied into its sandbox: ``worker``, ``framing`` (the one framing) and
  ``codec`` (the one encoding: JSON and raw tensor bytes, decoded under limits; both shared
  with the grader), ``worker_blockers``, ``worker_values``, ``worker_output``,
  ``worker_ipython`` (``get_ipython()``: the magics), ``jail``;
* many notebooks: ``batch`` (the loop), ``store`` (the output folder and its lock),
  ``launcher`` (grader processes), ``fork_client`` and ``fork_server``, ``discover``;
* outputs: ``results``, ``reports``, ``gradescope``, ``gradebook``, ``similarity`` (the
  instructor's report); ``text`` (student text cleaned, capped and escaped per format) and
  ``redact`` (no line of the grader's code in a student-facing output); ``cli`` (``genlab grade``).
"""
