"""The vocabulary of every check: public checks in the notebooks and hidden autograder tests.

Each ``expect_*`` helper returns the value it checked or raises ``AssertionError`` with a
sentence written for a student: what was expected, what came back, and (when given) a hint
that names the likely bug. Nothing here computes a lab's answer.

    from genlab.checks import kit
    out, w = kit.expect_tuple(kit.call("attention", fn, q, k, v), 2, "attention", ("output", "weights"))
    kit.expect_tensor(out, "the output", shape=(2, 5, 8), dtype=torch.float32)
    kit.ok("attention looks right")
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

# contract.py imports nothing of genlab (the grading worker loads it afresh from its file), so
# the flattener both need lives there
from genlab.checks.contract import contract_problem, tensors
from genlab.checks.recorded import exploring, is_oracle_answer

__all__ = [
    "ok",
    "call",
    "known_error",
    "describe",
    "close",
    "same",
    "tensors",
    "fail_if",
    "check_contract",
    "expect_tuple",
    "expect_tensor",
    "expect_int",
    "expect_float",
    "expect_finite",
    "expect_close",
]

#: torch errors a student's code commonly causes, with the sentence that explains them.
KNOWN_ERRORS: tuple[tuple[str, str], ...] = (
    ("value cannot be converted to type c10::Half without overflow",
     "a literal such as -1e9 does not fit in float16 (largest magnitude 65504): fill with "
     "torch.finfo(x.dtype).min instead"),
    ("must match the size of tensor",
     "two tensors have incompatible shapes; print the shapes of the operands (x.T reverses every "
     "axis, x.transpose(-2, -1) swaps only the last two)"),
    ("mat1 and mat2 shapes cannot be multiplied",
     "a matrix product got operands of incompatible shapes; check which axis holds the features"),
    ("expected scalar type", "two tensors of different dtypes met in one operation; cast one of them"),
    ("does not require grad and does not have a grad_fn",
     "backward() was called on a tensor that is not connected to any parameter (detached or computed "
     "under torch.no_grad())"),
)


def ok(message: str) -> None:
    """Print the check's success line."""
    print(f"✓ {message}")


def known_error(text: str) -> str | None:
    """The sentence that explains a torch error message (``KNOWN_ERRORS``), or ``None``."""
    return next((sentence for needle, sentence in KNOWN_ERRORS if needle in text), None)


def _explain(exc: BaseException) -> str:
    text = str(exc)
    sentence = known_error(text)
    if sentence:
        return f"{sentence} ({type(exc).__name__}: {text.splitlines()[0] if text else ''})"
    return f"{type(exc).__name__}: {text}"


def call(what: str, fn: Callable, /, *args, **kwargs):
    """Call student code from a public check; a missing or crashing part becomes a hint."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise AssertionError(
            f"{what} is not written yet: replace `raise NotImplementedError()` in the cell above with your code."
        ) from None
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001 - shown to the student with the likely cause
        raise AssertionError(f"{what} raised an error: {_explain(exc)}") from exc


def describe(x) -> str:
    """A short description of a value: shape and dtype for tensors, else the type (never the data)."""
    if isinstance(x, Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)} items"
    if isinstance(x, (bool, int, float)):
        return f"{type(x).__name__} {x!r}"
    return "None" if x is None else type(x).__name__


def close(a, b: Tensor, atol: float, rtol: float = 1e-4) -> bool:
    """True if ``a`` is a tensor of ``b``'s shape and close to it, compared in float64.

    False against an answer that was not recorded (``genlab.checks.recorded``).
    """
    if is_oracle_answer(b) or is_oracle_answer(a):
        return False
    return isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape and bool(
        torch.allclose(a.detach().double(), b.detach().double(), atol=atol, rtol=rtol, equal_nan=False)
    )


def same(a, b) -> bool:
    """True if ``a`` equals ``b`` exactly: tensors of one shape, dtype and values (``torch.equal``),
    or plain values (``==``). False against an answer that was not recorded."""
    if is_oracle_answer(b) or is_oracle_answer(a):
        return False
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return (isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape and a.dtype == b.dtype
                and torch.equal(a, b))
    return type(a) is type(b) and a == b


def fail_if(hint: str | None, context: str | None = None) -> None:
    """Raise the hint (prefixed by ``context``) when a bug-namer returned one (while the
    recorder explores every known bug, it only goes on)."""
    if hint is not None and not exploring():
        raise AssertionError(f"{context}: {hint}" if context else hint)


def check_contract(fn: Callable, args: Sequence, what: str, names: Sequence[str] | None = None, *,
                   report_crash: bool = False, **options) -> None:
    """Fail with the first promise ``fn(*args)`` breaks (``genlab.checks.contract``): the sentence
    the hidden tests give. ``options`` are ``contract_problem``'s (``kwargs``, ``check_grads``,
    ``output_index``). A crash is left to the value checks that follow, which explain it with the
    call that caused it; with ``report_crash`` (a contract run after them) it is reported here."""
    if report_crash:
        problem = call(what, contract_problem, fn, args, what, names=names, **options)
    else:
        try:
            problem = contract_problem(fn, args, what, names=names, **options)
        except Exception:  # noqa: BLE001
            problem = None
    fail_if(problem)


def expect_tuple(value, n: int, what: str, names: Sequence[str] | None = None) -> tuple:
    """``value`` as a tuple of ``n`` items (a list is accepted)."""
    if isinstance(value, (tuple, list)) and len(value) == n:
        return tuple(value)
    shape = f"({', '.join(names)})" if names else f"{n} values"
    raise AssertionError(f"{what} should return {shape}, got {describe(value)}.")


def expect_tensor(value, what: str, shape: Sequence[int] | None = None, dtype: torch.dtype | None = None,
                  hint: str = "") -> Tensor:
    """``value`` as a tensor, of ``shape`` and ``dtype`` when given."""
    tail = f" {hint}" if hint else ""
    if not isinstance(value, Tensor):
        raise AssertionError(f"{what} should be a tensor, got {describe(value)}.{tail}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise AssertionError(f"{what} should have shape {tuple(shape)}, got {tuple(value.shape)}.{tail}")
    if dtype is not None and value.dtype != dtype:
        raise AssertionError(f"{what} should have dtype {dtype}, got {value.dtype}.{tail}")
    return value


def expect_int(value, what: str) -> int:
    """``value`` as a Python int (not a float, a bool or a tensor)."""
    if isinstance(value, bool) or not isinstance(value, int):
        fix = " Use // for integer division and int(...) around a tensor's .item()." if isinstance(
            value, (float, Tensor)) else ""
        raise AssertionError(f"{what} should be an int, got {describe(value)}.{fix}")
    return value


def expect_float(value, what: str) -> float:
    """``value`` as a Python number (a 0-d tensor is accepted and converted)."""
    if isinstance(value, Tensor) and value.numel() == 1:
        return float(value.detach())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AssertionError(f"{what} should be a number, got {describe(value)}.")
    return float(value)


def expect_finite(value: Tensor, what: str, hint: str = "") -> Tensor:
    """``value`` with no inf or NaN."""
    expect_tensor(value, what)
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        bad = "NaN" if bool(torch.isnan(value).any()) else "inf"
        raise AssertionError(f"{what} contains {bad}.{' ' + hint if hint else ''}")
    return value


def expect_close(got, want: Tensor, what: str, atol: float, rtol: float = 1e-4,
                 hint: str | None = None) -> Tensor:
    """``got`` close to ``want``; the message gives the largest error, never the expected values.
    (While the recorder explores, a miss against an oracle's answer only goes on, as ``fail_if``.)"""
    if exploring() and is_oracle_answer(want):
        return got
    expect_tensor(got, what, shape=tuple(want.shape))
    if close(got, want, atol, rtol):
        return got
    if not bool(torch.isfinite(got).all()):
        raise AssertionError(f"{what} contains inf or NaN.{' ' + hint if hint else ''}")
    err = (got.detach().double() - want.detach().double()).abs().max().item()
    raise AssertionError(f"{what} is wrong (largest error {err:.3g}).{' ' + hint if hint else ''}")
