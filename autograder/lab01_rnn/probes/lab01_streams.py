"""Probe: the windows of the student's ``stream_batches(ids, batch_size, seq_len)`` as a list.

Whatever iterable the function returns (a generator, a list, a zip) is read to the end in
the worker, with a cap on the number of windows. Returns ``{"windows": [(x, y), ...],
"kind": type name of the returned value}``. (Whether the ids are left alone is the contract's
question: the probe ``contract`` with the ``read_windows`` adapter.)
"""


def run(namespace, ids, batch_size, seq_len, max_windows=10_000):
    result = namespace["stream_batches"](ids, batch_size, seq_len)
    kind = type(result).__name__
    windows = []
    for item in result:
        windows.append(tuple(item) if isinstance(item, (tuple, list)) else item)
        if len(windows) > max_windows:
            break
    return {"windows": windows, "kind": kind}
