"""The one encoding of values on the pipe between the grader and its worker: no pickle at all.

A payload is ``b"V"``, an 8-byte big-endian header length, a UTF-8 JSON header, then the
raw bytes of every tensor, one after the other. The header is
``{"v": VALUE, "t": [[dtype, shape, nbytes, device], ...]}`` where VALUE is JSON in which
``None``, ``bool``, ``int``, ``float`` and ``str`` are themselves and everything else is a
JSON array whose first item is a tag: ``["L", ...]`` list, ``["T", ...]`` tuple, ``["S", ...]``
set, ``["D", k1, v1, k2, v2, ...]`` dict, ``["B", base64]`` bytes, ``["C", re, im]`` complex,
``["X", i]`` the i-th tensor, ``["d", "float32"]`` a dtype, ``["v", "cuda:0"]`` a device,
``["Z", 2, 3]`` a ``torch.Size``.

JSON is a tree: a reply cannot share one object under many parents, so its size on the wire
is its size in memory. ``loads`` (the grader's side, ``Limits``) refuses before building
anything large: the header's bytes, the number of items, the depth, each string's length,
each tensor's dtype and shape against its bytes, and the total bytes of the tensors.
``dumps`` enforces the same limits on the worker's side, so an honest value that is too
large gets a clear message there. Standard library only (torch is passed in by ``bind``):
the grader copies this file beside ``worker.py``.
"""
import base64
import ctypes
import json
import struct
from dataclasses import dataclass

VALUE = b"V"
_HEADER = struct.Struct(">Q")
DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64",
          "float16", "bfloat16", "float32", "float64", "complex64", "complex128")
MAX_DIMS = 32

_dumps, _loads, _string_at = json.dumps, json.loads, ctypes.string_at
_b64e, _b64d = base64.b64encode, base64.b64decode
_torch = None


def bind(torch_module) -> None:
    """Give the codec torch (bound once, before any submission code runs)."""
    global _torch
    _torch = torch_module


class CodecError(Exception):
    """A value that cannot be encoded, or a payload that breaks the limits or the format."""


@dataclass(frozen=True)
class Limits:
    """What one payload may hold (enforced by both ends; the grader's side is the one that counts)."""

    header_bytes: int = 8 << 20       # the JSON part: numbers, strings, structure
    items: int = 200_000              # values of every kind, containers included
    depth: int = 100
    string_chars: int = 1_000_000     # one string
    tensor_bytes: int = 512 << 20     # all tensors together

    def as_dict(self) -> dict:
        return {"header_bytes": self.header_bytes, "items": self.items, "depth": self.depth,
                "string_chars": self.string_chars, "tensor_bytes": self.tensor_bytes}


DEFAULT = Limits()


# ------------------------------------------------------------------------ encoding
def dumps(value, limits: Limits = DEFAULT) -> bytes:
    """``value`` as a payload; raises ``CodecError`` for what cannot cross or is too large."""
    enc = _Encoder(limits)
    tree = enc.value(value, 0)
    header = _dumps({"v": tree, "t": enc.specs}, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    if len(header) > limits.header_bytes:
        raise CodecError(f"holds {len(header) >> 10} KiB of numbers and strings outside tensors (the limit is "
                         f"{limits.header_bytes >> 10} KiB); return tensors for large data")
    return b"".join([VALUE, _HEADER.pack(len(header)), header, *enc.buffers])


class _Encoder:
    def __init__(self, limits: Limits):
        self.limits, self.items, self.nbytes = limits, 0, 0
        self.specs, self.buffers = [], []

    def value(self, x, depth):
        self.items += 1
        if self.items > self.limits.items:
            raise CodecError(f"holds more than {self.limits.items} values; return a tensor for large data")
        if depth > self.limits.depth:
            raise CodecError(f"is nested more than {self.limits.depth} levels deep")
        torch = _torch
        if x is None or isinstance(x, (bool, int, float)):
            return x
        if isinstance(x, str):
            if len(x) > self.limits.string_chars:
                raise CodecError(f"holds a string of {len(x)} characters (the limit is {self.limits.string_chars})")
            return x
        if isinstance(x, torch.Tensor):
            return ["X", self.tensor(x)]
        if isinstance(x, torch.Size):
            return ["Z", *(int(d) for d in x)]
        if isinstance(x, (list, tuple, set, frozenset)):
            tag = "L" if isinstance(x, list) else "T" if isinstance(x, tuple) else "S"
            return [tag, *(self.value(v, depth + 1) for v in x)]
        if isinstance(x, dict):
            out = ["D"]
            for k, v in x.items():
                out.append(self.value(k, depth + 1))
                out.append(self.value(v, depth + 1))
            return out
        if isinstance(x, (bytes, bytearray)):
            if len(x) > self.limits.string_chars:
                raise CodecError(f"holds {len(x)} bytes in one bytes object (the limit is {self.limits.string_chars})")
            return ["B", _b64e(bytes(x)).decode("ascii")]
        if isinstance(x, complex):
            return ["C", x.real, x.imag]
        if isinstance(x, torch.dtype):
            return ["d", str(x).replace("torch.", "")]
        if isinstance(x, torch.device):
            return ["v", str(x)]
        raise CodecError(f"holds a {type(x).__name__}, which cannot cross the pipe")

    def tensor(self, t) -> int:
        name = str(t.dtype).replace("torch.", "")
        if name not in DTYPES:
            raise CodecError(f"holds a tensor of dtype {name}; use a standard dtype (float32, int64, bool...)")
        device = str(t.device)
        t = t.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        t = t.resolve_conj().resolve_neg().contiguous()
        n = t.numel() * t.element_size()
        self.nbytes += n
        if self.nbytes > self.limits.tensor_bytes:
            raise CodecError(f"holds more than {self.limits.tensor_bytes >> 20} MiB of tensors")
        self.buffers.append(_string_at(t.data_ptr(), n) if n else b"")
        self.specs.append([name, [int(d) for d in t.shape], n, device])
        return len(self.specs) - 1


# ------------------------------------------------------------------------ decoding
def loads(payload, limits: Limits | None = DEFAULT, keep_devices: bool = False):
    """Decode a payload. ``limits=None`` trusts it (the worker reading the grader's requests);
    ``keep_devices`` puts tensors back on the device they came from (else the CPU)."""
    view = memoryview(payload)
    if bytes(view[:1]) != VALUE or len(view) < 1 + _HEADER.size:
        raise CodecError(f"unknown payload kind {bytes(view[:1])!r}")
    (size,) = _HEADER.unpack(view[1:1 + _HEADER.size])
    lim = limits or Limits(header_bytes=1 << 62, items=1 << 62, depth=10**4, string_chars=1 << 62,
                           tensor_bytes=1 << 62)
    start = 1 + _HEADER.size
    if size > lim.header_bytes or start + size > len(view):
        raise CodecError(f"announces a header of {size} bytes (limit {lim.header_bytes}, payload {len(view)})")
    try:
        header = _loads(bytes(view[start:start + size]).decode("ascii"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CodecError(f"has an unreadable header ({type(exc).__name__})") from None
    if not isinstance(header, dict) or not isinstance(header.get("t"), list) or "v" not in header:
        raise CodecError("has a header of the wrong shape")
    tensors = _tensors(header["t"], view[start + size:], lim, keep_devices)
    return _Decoder(lim, tensors).value(header["v"], 0)


def _tensors(specs: list, data: memoryview, lim: Limits, keep_devices: bool) -> list:
    torch = _torch
    if len(specs) > lim.items:
        raise CodecError(f"holds more than {lim.items} tensors")
    out, offset = [], 0
    for spec in specs:
        if not (isinstance(spec, list) and len(spec) == 4 and spec[0] in DTYPES and isinstance(spec[1], list)
                and len(spec[1]) <= MAX_DIMS and isinstance(spec[2], int) and isinstance(spec[3], str)):
            raise CodecError("describes a tensor badly")
        name, shape, nbytes, device = spec
        if not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d for d in shape):
            raise CodecError("describes a tensor with a bad shape")
        dtype = getattr(torch, name)
        numel = 1
        for d in shape:
            numel *= d
        itemsize = torch.empty((), dtype=dtype).element_size()
        if numel * itemsize != nbytes or offset + nbytes > len(data) or offset + nbytes > lim.tensor_bytes:
            raise CodecError("holds a tensor whose shape does not match its bytes")
        if nbytes:
            raw = torch.frombuffer(bytearray(data[offset:offset + nbytes]), dtype=torch.uint8)
            t = raw.view(dtype).reshape(shape)
            if dtype is torch.bool:
                t = t.view(torch.uint8).ne(0)
        else:
            t = torch.empty(shape, dtype=dtype)
        offset += nbytes
        if keep_devices and device != "cpu":
            t = t.to(device)
        out.append(t)
    if offset != len(data):
        raise CodecError("holds bytes that belong to no tensor")
    return out


class _Decoder:
    def __init__(self, limits: Limits, tensors: list):
        self.limits, self.tensors, self.items = limits, tensors, 0

    def value(self, x, depth):
        self.items += 1
        if self.items > self.limits.items:
            raise CodecError(f"holds more than {self.limits.items} values")
        if depth > self.limits.depth:
            raise CodecError(f"is nested more than {self.limits.depth} levels deep")
        if x is None or isinstance(x, (bool, int, float)):
            return x
        if isinstance(x, str):
            if len(x) > self.limits.string_chars:
                raise CodecError(f"holds a string of {len(x)} characters")
            return x
        if not isinstance(x, list) or not x or not isinstance(x[0], str):
            raise CodecError("holds a value of an unknown form")
        tag, rest = x[0], x[1:]
        if tag in ("L", "T", "S"):
            items = [self.value(v, depth + 1) for v in rest]
            if tag == "L":
                return items
            if tag == "T":
                return tuple(items)
            try:
                return set(items)
            except TypeError:
                raise CodecError("holds a set of unhashable values") from None
        if tag == "D":
            if len(rest) % 2:
                raise CodecError("holds a dict with a key but no value")
            out = {}
            for i in range(0, len(rest), 2):
                key = self.value(rest[i], depth + 1)
                try:
                    out[key] = self.value(rest[i + 1], depth + 1)
                except TypeError:
                    raise CodecError("holds a dict with an unhashable key") from None
            return out
        return self.atom(tag, rest)

    def atom(self, tag, rest):
        torch = _torch
        try:
            if tag == "X":
                (i,) = rest
                if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(self.tensors):
                    raise ValueError
                return self.tensors[i]
            if tag == "Z":
                if len(rest) > MAX_DIMS or not all(isinstance(d, int) and not isinstance(d, bool) for d in rest):
                    raise ValueError
                return torch.Size(rest)
            if tag == "B":
                (text,) = rest
                if not isinstance(text, str) or len(text) > self.limits.string_chars * 4 // 3 + 4:
                    raise ValueError
                return _b64d(text.encode("ascii"), validate=True)
            if tag == "C":
                re_, im = rest
                if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (re_, im)):
                    raise ValueError
                return complex(re_, im)
            if tag == "d":
                (name,) = rest
                if name not in DTYPES:
                    raise ValueError
                return getattr(torch, name)
            if tag == "v":
                (name,) = rest
                if not isinstance(name, str) or len(name) > 32:
                    raise ValueError
                return torch.device(name)
        except (ValueError, TypeError, RuntimeError, UnicodeError):
            raise CodecError(f"holds a malformed {tag!r} value") from None
        raise CodecError(f"holds a value with the unknown tag {tag[:20]!r}")
