"""Value encoding for the grading worker (see ``worker.py``; torch and numpy only).

``Encoder`` turns a worker value into plain data that the grader can load with
``torch.load(..., weights_only=True)``: exact ``torch.Tensor`` (detached, on the CPU,
cloned), numbers, strings, bytes, dtypes, and lists/tuples/dicts/sets of them. Anything
else stays in the worker's ``Handles`` table and crosses as
``{"__remote__": id, "type": ..., "repr": ..., "callable": ...}``.
"""
import types

REMOTE_KEY = "__remote__"
MAX_ITEMS = 200_000      # as codec.Limits.items: the grader refuses more
_VIEWS = (type({}.keys()), type({}.values()), type({}.items()), types.GeneratorType)
_torch = _numpy = None


def bind(torch_module, numpy_module) -> None:
    """Give the encoder torch and numpy (bound once, before any submission code runs)."""
    global _torch, _numpy
    _torch, _numpy = torch_module, numpy_module


class NotTransferable(Exception):
    pass


class Handles:
    def __init__(self):
        self.table: dict[int, object] = {}
        self.next_id = 1

    def add(self, obj) -> int:
        hid = self.next_id
        self.next_id += 1
        self.table[hid] = obj
        return hid

    def get(self, hid):
        try:
            return self.table[hid]
        except (KeyError, TypeError):
            raise NotTransferable("refers to an object that no longer exists in the worker") from None


def short_repr(obj, limit=200) -> str:
    try:
        text = repr(obj)
        if not isinstance(text, str):
            raise TypeError
    except BaseException:
        text = f"<{type(obj).__name__} object>"
    return text if len(text) <= limit else text[: limit - 15] + "...(truncated)"


def _type_name(obj) -> str:
    t = type(obj)
    try:
        module = type.__getattribute__(t, "__module__")
        module = module if type(module) is str else ""
    except BaseException:
        module = ""
    name = type.__getattribute__(t, "__qualname__")
    return name if module in ("", "builtins", "__main__") else f"{module}.{name}"


class Encoder:
    """Turn a worker value into something the parent can load with ``weights_only=True``."""

    def __init__(self, handles: Handles, strict: bool, max_items: int = MAX_ITEMS):
        self.handles, self.strict, self.items, self.max_items = handles, strict, 0, max_items

    def remote(self, obj):
        if self.strict:
            raise NotTransferable(f"returned a {_type_name(obj)[:200]}, which is not plain data")
        return {REMOTE_KEY: self.handles.add(obj), "type": _type_name(obj)[:200], "repr": short_repr(obj),
                "callable": callable(obj)}

    def __call__(self, x, depth=0):
        self.items += 1
        if self.items > self.max_items:
            raise NotTransferable(f"returned more than {self.max_items} values; return a tensor for large data")
        if depth > 100:
            raise NotTransferable("returned a value nested too deeply (a list that contains itself?)")
        t = type(x)  # type(), not isinstance(): an object can fake its __class__
        if x is None or t in (bool, int, float, complex, str, bytes):
            return x
        torch = _torch
        if issubclass(t, torch.Tensor):
            if t is not torch.Tensor and t is not torch.nn.Parameter:
                raise NotTransferable(
                    f"returned a tensor subclass ({str(t.__name__)[:100]}); return a plain torch.Tensor"
                )
            return self.tensor(x)
        if t in (torch.dtype, torch.device, torch.Size):
            return x
        if issubclass(t, int) and not issubclass(t, bool):
            return int.__int__(x)
        if issubclass(t, float):
            return float.__float__(x)
        if issubclass(t, str):
            return str.__str__(x)
        if issubclass(t, bytes):
            return b"".join([x])
        np = _numpy
        if np is not None:
            if issubclass(t, np.generic) and not issubclass(t, np.object_) and t.__module__ == "numpy":
                return self(x.item(), depth + 1)
            if t is np.ndarray and x.dtype.kind in "biufc":
                try:
                    return self.tensor(torch.from_numpy(np.ascontiguousarray(x)))
                except (TypeError, RuntimeError):
                    return self.remote(x)
        if issubclass(t, list):
            return [self(v, depth + 1) for v in list.__iter__(x)]
        if issubclass(t, tuple):
            return tuple(self(v, depth + 1) for v in tuple.__iter__(x))
        if t in (set, frozenset):
            return {self(v, depth + 1) for v in x}
        if t in _VIEWS:  # dict views and generators (e.g. module.parameters()) become lists
            return [self(v, depth + 1) for v in x]
        if issubclass(t, dict):
            if REMOTE_KEY in dict.keys(x):
                return self.remote(x)
            out = {}
            for k, v in dict.items(x):
                key = self(k, depth + 1)
                if not _hashable(key):
                    return self.remote(x)
                out[key] = self(v, depth + 1)
            return out
        return self.remote(x)

    def tensor(self, x):
        torch = _torch
        if x.layout != torch.strided:
            try:
                x = x.to_dense()
            except BaseException:
                raise NotTransferable(f"returned a {x.layout} tensor; return a dense tensor") from None
        if x.device.type == "meta":
            raise NotTransferable("returned a tensor on the meta device (it holds no values)")
        if x.is_quantized:
            raise NotTransferable("returned a quantized tensor; return x.dequantize()")
        with torch.no_grad():
            return x.detach().to("cpu").resolve_conj().resolve_neg().clone().as_subclass(torch.Tensor)


def _hashable(value) -> bool:
    try:
        hash(value)
        return True
    except TypeError:
        return False


def decode_args(value, handles: Handles, depth=0):
    if depth > 100:
        raise NotTransferable("arguments nested too deeply")
    if isinstance(value, dict):
        if REMOTE_KEY in value:
            return handles.get(value[REMOTE_KEY])
        return {k: decode_args(v, handles, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_args(v, handles, depth + 1) for v in value]
    if type(value) is tuple:
        return tuple(decode_args(v, handles, depth + 1) for v in value)
    return value
