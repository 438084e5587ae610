"""The grader's side of the values that cross the pipe to the worker.

Frames are ``framing.py``'s and payloads ``codec.py``'s (one of each, shared with the
worker): JSON for structure and raw bytes for tensors, never pickle. Here: the payloads the
grader writes (``dumps``) and reads (``load``, under ``codec.Limits`` that the grader
enforces: header bytes, items, depth, string lengths, tensor bytes), and the values.

Values that cross are nested dict/list/tuple/set of ``None``, ``bool``, ``int``, ``float``,
``complex``, ``str``, ``bytes``, ``torch.dtype``, ``torch.device``, ``torch.Size`` and plain
``torch.Tensor``. A worker object that cannot cross (a module, a function, an object of a
student class) stays in the worker's handle table and crosses as
``{"__remote__": id, "type": "...", "repr": "..."}`` (``worker_values.py`` writes it);
``decode`` turns that into whatever ``make_remote`` returns (the ``Remote`` of
``submission.py``).
"""
from __future__ import annotations

import torch

from . import codec
from .worker_values import REMOTE_KEY

codec.bind(torch)
LIMITS = codec.DEFAULT


def max_frame(limits: codec.Limits = LIMITS) -> int:
    """The largest frame the grader reads from the worker."""
    return 1 + 8 + limits.header_bytes + limits.tensor_bytes


def dumps(obj) -> bytes:
    """A request payload for the worker (tensors keep their device)."""
    return codec.dumps(obj, codec.Limits(header_bytes=1 << 40, items=1 << 40, tensor_bytes=1 << 40))


def load(payload: bytes, limits: codec.Limits = LIMITS):
    """Decode a payload from the worker under ``limits``; tensors land on the CPU.

    Raises ``codec.CodecError`` for a payload that breaks the limits or the format."""
    return codec.loads(payload, limits)


# ------------------------------------------------------------------ value encoding
_ATOMS = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device)


def encode(value, remote_id=None, _depth: int = 0):
    """Encode a parent-side value for the worker.

    ``remote_id(obj)`` returns the handle id of a ``submission.Remote`` (or ``None`` if ``obj`` is
    not one). Tensors are detached; anything else unsupported raises ``TypeError``.
    """
    if _depth > 100:
        raise TypeError("value nested too deeply to send to the worker")
    if isinstance(value, _ATOMS):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().as_subclass(torch.Tensor) if type(value) is not torch.Tensor else value.detach()
    if remote_id is not None:
        handle = remote_id(value)
        if handle is not None:
            return {REMOTE_KEY: handle}
    if isinstance(value, torch.Size):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [encode(v, remote_id, _depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items) if isinstance(value, tuple) else set(items)
    if isinstance(value, dict):
        if REMOTE_KEY in value:
            raise TypeError(f"dict keys named {REMOTE_KEY!r} are reserved")
        return {encode(k, remote_id, _depth + 1): encode(v, remote_id, _depth + 1) for k, v in value.items()}
    raise TypeError(
        f"cannot send a {type(value).__name__} to the worker; send tensors, numbers, "
        "strings and lists/tuples/dicts of them"
    )


def decode(value, make_remote, _depth: int = 0):
    """Turn a value loaded from the worker into parent objects (remote markers -> ``make_remote``)."""
    if _depth > 200:
        raise ValueError("value from the worker nested too deeply")
    if isinstance(value, dict):
        if REMOTE_KEY in value:
            return make_remote(value)
        return {k: decode(v, make_remote, _depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, make_remote, _depth + 1) for v in value]
    if isinstance(value, tuple) and not isinstance(value, torch.Size):
        return tuple(decode(v, make_remote, _depth + 1) for v in value)
    return value
