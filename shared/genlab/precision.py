"""Floating-point formats, the dtype-aware mask fill, and loss scaling for float16.

* **Facts.** ``float_format(torch.float16)`` gives the layout (sign, exponent and mantissa
  bits), the machine epsilon, the largest number and the smallest normal and subnormal
  numbers, all derived from ``torch.finfo``.
* **Mask fill.** ``mask_fill_value(dtype)`` is the most negative finite number of
  ``dtype``: masking with it never overflows (``-1e9`` does, in float16).
* **Rounding, shown.** ``stored_value``, ``bit_fields``, ``spacing`` and
  ``explain_update`` show what a format keeps of a number and of an update.
* **Loss scaling.** Reference versions of lab 00's graded parts: ``fp16_update_survives``,
  ``scaled_backward``, ``unscale_and_check`` and ``dynamic_scale_update`` (the rule of
  ``torch.amp.GradScaler``).
* **A demo.** ``mixed_precision_run`` trains a small classifier with float32 master weights
  and float16/bfloat16/float32 arithmetic, with or without loss scaling.

Gradients and updates are discussed in the notation of lab 00: a weight ``w``, a learning
rate ``lr`` and a gradient ``g`` give the update ``u = lr * g`` and the new weight ``w - u``.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = [
    "FloatFormat",
    "float_format",
    "FORMAT_NAMES",
    "mask_fill_value",
    "stored_value",
    "bit_fields",
    "spacing",
    "explain_update",
    "fp16_update_survives",
    "scaled_backward",
    "unscale_and_check",
    "dynamic_scale_update",
    "PrecisionRun",
    "mixed_precision_run",
]

#: The names the course uses for the formats.
FORMAT_NAMES = {torch.float16: "half (float16)", torch.bfloat16: "bfloat16", torch.float32: "single (float32)",
                torch.float64: "double (float64)"}
_INT_VIEW = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32,
             torch.float64: torch.int64}


def _floating(dtype, what: str) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{what} needs a floating-point torch dtype such as torch.float16, got {dtype!r}.")
    return dtype


# ---------------------------------------------------------------- the formats

@dataclass(frozen=True)
class FloatFormat:
    """What a floating-point dtype can hold, from ``torch.finfo``.

    A normal number is ``(-1)^sign × 1.mantissa × 2^(exponent - bias)``; the numbers below
    ``smallest_normal`` are subnormal (``0.mantissa × 2^(1 - bias)``), down to
    ``smallest_subnormal``. ``eps`` is the gap between 1.0 and the next number above it.
    """

    dtype: torch.dtype
    name: str
    bits: int
    exponent_bits: int
    mantissa_bits: int       # stored fraction bits (the leading 1 of a normal number is implicit)
    bias: int
    eps: float
    max: float
    smallest_normal: float
    smallest_subnormal: float

    @property
    def decimal_digits(self) -> float:
        """About how many significant decimal digits the format keeps (-log10 eps)."""
        return -math.log10(self.eps)

    @property
    def underflow_below(self) -> float:
        """Magnitudes below this round to 0 (half the smallest subnormal)."""
        return self.smallest_subnormal / 2


def float_format(dtype: torch.dtype) -> FloatFormat:
    """The :class:`FloatFormat` of a floating dtype (float16, bfloat16, float32, float64)."""
    info = torch.finfo(_floating(dtype, "float_format"))
    mantissa_bits = round(-math.log2(info.eps))
    max_exponent = math.frexp(info.max)[1] - 1                # 15 for float16: max = 1.999 × 2^15
    exponent_bits = round(math.log2(max_exponent + 1)) + 1   # bias = 2^(e-1) - 1 = max_exponent
    return FloatFormat(
        dtype=dtype, name=FORMAT_NAMES.get(dtype, str(dtype).replace("torch.", "")), bits=info.bits,
        exponent_bits=exponent_bits, mantissa_bits=mantissa_bits, bias=max_exponent, eps=float(info.eps),
        max=float(info.max), smallest_normal=float(info.smallest_normal),
        smallest_subnormal=float(info.smallest_normal) * float(info.eps),
    )


def mask_fill_value(dtype: torch.dtype) -> float:
    """The value to put where a mask is False before a softmax: ``torch.finfo(dtype).min``.

    It is the most negative finite number of ``dtype`` (-65504 for float16), so the fill
    never overflows (``-1e9`` does not fit in float16) and ``exp(fill - max)`` is exactly 0.
    Unlike ``-inf``, a row where everything is masked gives a finite (uniform) softmax
    instead of NaN; zero such rows afterwards if they must be all 0.
    """
    if isinstance(dtype, torch.dtype) and not dtype.is_floating_point:
        raise TypeError(f"mask_fill_value needs the dtype of the scores (a float dtype), got {dtype}; "
                        "pass scores.dtype, not the dtype of the bool mask.")
    return float(torch.finfo(_floating(dtype, "mask_fill_value")).min)


# ---------------------------------------------------------------- rounding, shown

def stored_value(value: float, dtype: torch.dtype) -> float:
    """The number a ``dtype`` actually stores for ``value`` (round to nearest, ties to even)."""
    return float(torch.tensor(float(value), dtype=torch.float64).to(_floating(dtype, "stored_value")))


def bit_fields(value: float, dtype: torch.dtype) -> tuple[str, str, str]:
    """The stored bits of ``value`` in ``dtype`` as ``(sign, exponent, mantissa)`` strings.

    >>> bit_fields(1.0, torch.float16)
    ('0', '01111', '0000000000')
    """
    fmt = float_format(dtype)
    raw = torch.tensor(float(value), dtype=torch.float64).to(dtype).view(_INT_VIEW[dtype]).item()
    bits = format(raw & ((1 << fmt.bits) - 1), f"0{fmt.bits}b")
    return bits[0], bits[1:1 + fmt.exponent_bits], bits[1 + fmt.exponent_bits:]


def spacing(values, dtype: torch.dtype) -> Tensor:
    """The gap from each stored value to the next representable number away from zero.

    Args:
        values: a number, a sequence or a tensor (any shape).
        dtype: the format.

    Returns:
        float64 tensor of the same shape: ``2^(exponent - mantissa_bits)`` for normal
        numbers (``eps`` at 1.0), the smallest subnormal in the subnormal range and at 0.
        At the largest finite number it is the gap the next binade would have.
    """
    fmt = float_format(dtype)
    x = torch.as_tensor(values, dtype=torch.float64).to(dtype)
    away = torch.where(x < 0, -torch.inf, torch.inf).to(dtype)
    gap = (torch.nextafter(x, away).double() - x.double()).abs()
    top = x.double().abs() == fmt.max
    top_gap = fmt.max / (2 - fmt.eps) * fmt.eps  # max = (2 - eps) × 2^e_max, whose binade has gaps eps × 2^e_max
    return torch.where(top, torch.full_like(gap, top_gap), gap)


def explain_update(weight: float, update: float, dtype: torch.dtype) -> str:
    """One line saying what ``dtype`` makes of ``weight - update``.

    >>> explain_update(1.0, 1e-4, torch.float16)  # doctest: +ELLIPSIS
    'half (float16): 1 - 0.0001 -> 1: lost (the gaps next to 1 are 0.000488 below and 0.000977 above...)'
    """
    fmt = float_format(dtype)
    w = torch.tensor(float(weight), dtype=torch.float64).to(dtype)
    u = torch.tensor(float(update), dtype=torch.float64).to(dtype)
    new = w - u
    below = float(w.double() - torch.nextafter(w, torch.tensor(-math.inf, dtype=dtype)).double())
    above = float(torch.nextafter(w, torch.tensor(math.inf, dtype=dtype)).double() - w.double())
    head = f"{fmt.name}: {float(w):.6g} - {update:.6g} -> {float(new):.6g}"
    if float(u) == 0.0 and update != 0.0:
        return (f"{head}: lost before it starts (the update itself rounds to 0: it is below "
                f"{fmt.underflow_below:.3g}, half the smallest subnormal {fmt.smallest_subnormal:.3g})")
    if bool(new == w):
        return (f"{head}: lost (the gaps next to {float(w):.6g} are {below:.3g} below and {above:.3g} above; "
                f"an update smaller than half the gap rounds back to the same number)")
    return f"{head}: kept (changed by {float(w.double() - new.double()):.3g})"


# ---------------------------------------------------------------- graded parts, reference versions

def fp16_update_survives(weight: Tensor, lr: float, grad: Tensor) -> Tensor:
    """Whether ``weight - lr * grad`` changes a float16 weight, predicted from the format.

    Pure float16 training stores the weight and the gradient in float16, rounds the update
    ``u = lr * grad`` to float16 (where a tiny update underflows to 0), then rounds
    ``weight - u`` to float16. The weight changes exactly when ``u`` is not 0 and reaches past
    half the gap to the neighbouring float16 number in the direction of the move (at exactly
    half the gap, round-to-nearest-even decides). Below a power of two the gap is half the gap
    above it.

    Args:
        weight: float16 tensor, any shape (the result stays finite; no inf or NaN inputs).
        lr: the learning rate, a Python float.
        grad: float16 tensor of the same shape.

    Returns:
        bool tensor of ``weight``'s shape: True where the stored weight changes.
    """
    w = weight.to(torch.float16)
    u = (lr * grad.to(torch.float16)).to(torch.float16)           # may underflow to 0
    target = torch.where(u > 0, -torch.inf, torch.inf).to(torch.float16)  # w moves by -u
    neighbour = torch.nextafter(w, target)                         # the next float16 that way
    gap = (neighbour.double() - w.double()).abs()
    half = gap / 2
    neighbour_even = (neighbour.view(torch.int16) & 1) == 0        # ties go to the even mantissa
    size = u.double().abs()
    return (size > half) | ((size == half) & neighbour_even & (size > 0))


def scaled_backward(loss: Tensor, scale: float) -> None:
    """Backpropagate ``loss * scale``: every gradient comes out ``scale`` times larger.

    Args:
        loss: a 0-d float tensor (float32, as genlab computes losses) with a graph.
        scale: the loss scale, e.g. 2**16.
    """
    if not isinstance(loss, Tensor) or loss.dim() != 0:
        raise ValueError("scaled_backward needs the scalar loss tensor (0-d); reduce the loss with .mean() first.")
    (loss * scale).backward()


def unscale_and_check(grads: Sequence[Tensor | None], scale: float,
                      max_norm: float | None = None) -> tuple[list[Tensor | None], bool]:
    """Divide scaled gradients by ``scale`` in float32 and report whether any is inf or NaN.

    Args:
        grads: the gradients after ``scaled_backward`` (float16 or float32, any shapes;
            None entries stay None).
        scale: the loss scale they were computed with.
        max_norm: optional; when given and every gradient is finite, the unscaled gradients
            are clipped to a total L2 norm of ``max_norm`` (as
            ``torch.nn.utils.clip_grad_norm_``). Clip after unscaling, never before.

    Returns:
        ``(unscaled, found_inf)``: float32 tensors (new tensors; the inputs are not modified)
        and a Python bool, True when any gradient holds inf or NaN (the step must be skipped).
    """
    unscaled = [None if g is None else g.float() / scale for g in grads]  # float32, or small grads underflow
    found_inf = any(not bool(torch.isfinite(g).all()) for g in unscaled if g is not None)
    if max_norm is not None and not found_inf:
        present = [g for g in unscaled if g is not None]
        total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in present])) if present \
            else torch.tensor(0.0)
        coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        unscaled = [None if g is None else g * coef for g in unscaled]
    return unscaled, found_inf


_FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def dynamic_scale_update(scale: float, found_inf: bool, growth_tracker: int, growth_factor: float = 2.0,
                         backoff_factor: float = 0.5, growth_interval: int = 2000) -> tuple[float, int]:
    """The loss scale for the next step, by ``torch.amp.GradScaler``'s rule.

    * inf/NaN found: the step was skipped; multiply the scale by ``backoff_factor`` and reset
      the count of clean steps to 0;
    * otherwise count one more clean step; after ``growth_interval`` clean steps in a row
      multiply the scale by ``growth_factor`` and reset the count to 0. A scale that would
      pass the largest float32 (``torch.finfo(torch.float32).max``) is not grown.

    Returns:
        ``(new_scale, new_growth_tracker)`` as a Python float and int.
    """
    if found_inf:
        return float(scale) * backoff_factor, 0
    growth_tracker = int(growth_tracker) + 1
    if growth_tracker == growth_interval:
        grown = float(scale) * growth_factor
        return (grown if grown <= _FLOAT32_MAX else float(scale)), 0
    return float(scale), growth_tracker


# ---------------------------------------------------------------- a mixed-precision demo

@dataclass
class PrecisionRun:
    """What ``mixed_precision_run`` recorded, one entry per step."""

    label: str
    losses: list[float] = field(default_factory=list)       # mean cross-entropy of each batch (nats)
    scales: list[float] = field(default_factory=list)       # the loss scale each step used (loss scaling only)
    skipped: list[int] = field(default_factory=list)        # steps skipped for inf/NaN gradients
    zero_grads: list[float] = field(default_factory=list)   # share of gradient entries exactly 0
    val_accuracy: float = float("nan")


@functools.lru_cache(maxsize=4)
def _digits(seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The digits' train and val splits, flattened: x (N, 64) float32 in [0, 1], y (N,) int64 (cached)."""
    from genlab.data import DigitsDataModule

    data = DigitsDataModule(batch_size=64, seed=seed)
    data.setup("fit")

    def flat(split):
        ds = data.dataset(split)
        x = torch.stack([ds[i][0].flatten() for i in range(len(ds))])
        return x, torch.tensor([int(ds[i][1]) for i in range(len(ds))])

    return (*flat("train"), *flat("val"))


def _mlp(x: Tensor, w: dict[str, Tensor]) -> Tensor:
    """A 64 -> hidden -> 10 ReLU network; x (B, 64) -> logits (B, 10) in x's dtype."""
    return torch.relu(x @ w["W1"] + w["b1"]) @ w["W2"] + w["b2"]


def mixed_precision_run(dtype: torch.dtype, steps: int = 300, *, loss_scaling: bool = False,
                        scaled_backward: Callable = scaled_backward, unscale_and_check: Callable = unscale_and_check,
                        dynamic_scale_update: Callable = dynamic_scale_update, init_scale: float = 2.0 ** 16,
                        growth_interval: int = 2000, loss_weight: float = 1e-5, lr: float = 3e-3,
                        hidden: int = 128, batch_size: int = 256, adam_step: Callable | None = None,
                        seed: int = 0, label: str | None = None) -> PrecisionRun:
    """Train a small digit classifier with float32 master weights and ``dtype`` arithmetic.

    Each step copies the float32 master weights to ``dtype``, runs the forward and backward
    passes in ``dtype`` (the loss itself in float32), turns the gradients into float32 and
    updates the master weights with Adam. The loss is the mean cross-entropy times
    ``loss_weight``: with the default 1e-5 the gradient of each logit is about 1e-8, as small
    as the gradients deep inside a large model, and below float16's smallest subnormal.
    Adam does not care about the loss's overall size, so float32 and bfloat16 train as
    without the weight; float16 loses those gradients unless the loss is scaled.

    With ``loss_scaling`` the three functions passed in do the scaling (yours, or the
    library's): ``scaled_backward(loss, scale)``, ``unscale_and_check(grads, scale)`` and
    ``dynamic_scale_update(scale, found_inf, tracker, growth_interval=...)``; a step with
    inf/NaN gradients is skipped.
    """
    from genlab.optim import adam_step as library_adam

    step_fn = adam_step or library_adam
    x_train, y_train, x_val, y_val = _digits(seed)
    g = torch.Generator().manual_seed(seed)
    master = {"W1": torch.randn(64, hidden, generator=g) / 8.0, "b1": torch.zeros(hidden),
              "W2": torch.randn(hidden, 10, generator=g) / math.sqrt(hidden), "b2": torch.zeros(10)}
    states: dict[str, dict] = {name: {} for name in master}
    scale, tracker = float(init_scale), 0
    run = PrecisionRun(label or (FORMAT_NAMES.get(dtype, str(dtype)) + (" + loss scaling" if loss_scaling else "")))
    for step in range(steps):
        idx = torch.randint(0, len(x_train), (batch_size,), generator=g)
        low = {name: w.detach().to(dtype, copy=True).requires_grad_() for name, w in master.items()}
        logits = _mlp(x_train[idx].to(dtype), low)
        mean_loss = torch.nn.functional.cross_entropy(logits.float(), y_train[idx])  # the loss in float32
        loss = mean_loss * loss_weight
        run.losses.append(float(mean_loss.detach()))
        if loss_scaling:
            run.scales.append(scale)
            scaled_backward(loss, scale)
            grads, found_inf = unscale_and_check([low[name].grad for name in master], scale)
            scale, tracker = dynamic_scale_update(scale, bool(found_inf), tracker, growth_interval=growth_interval)
        else:
            loss.backward()
            grads = [low[name].grad.float() for name in master]
            found_inf = not all(bool(torch.isfinite(gr).all()) for gr in grads)
        n_zero = sum(int((low[name].grad == 0).sum()) for name in master)
        run.zero_grads.append(n_zero / sum(w.numel() for w in master.values()))
        if found_inf:
            run.skipped.append(step)
            continue
        for name, grad in zip(master, grads, strict=False):
            master[name], states[name] = step_fn(master[name], grad, states[name], lr=lr)
    with torch.no_grad():
        run.val_accuracy = float((_mlp(x_val, master).argmax(-1) == y_val).float().mean())
    return run
