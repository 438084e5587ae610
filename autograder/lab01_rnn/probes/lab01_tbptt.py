"""Probe: what the student's ``tbptt_step`` does on a small torch-built language model.

Runs ``genlab.checks.lab01.observe_tbptt`` (the public check's own observer) beside the
submission and returns its plain-data observations; the hidden test compares them with
the reference computed on its side.
"""


def run(namespace, kind, state_dict, windows, loop_windows, sizes):
    from genlab.checks.lab01 import observe_tbptt

    return observe_tbptt(namespace["tbptt_step"], kind, state_dict, [tuple(w) for w in windows],
                         [tuple(w) for w in loop_windows], **sizes)
