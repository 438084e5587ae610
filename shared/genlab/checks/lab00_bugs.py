"""Recognise the usual bugs of lab 00's graded parts from what they return.

Each ``name_*_bug`` function compares a result with the right answer and with what the
common mistakes would have produced, and returns a hint naming the likely bug (``None``
when the result is right). The notebook's public checks and the hidden tests both use
them, so a student reads the same words in both places. Nothing here calls student code.

The oracles are independent of the formulas a student writes: ``torch.optim.Adam`` and
``AdamW`` (``torch_adam_trajectory``), real float16 arithmetic (``fp16_truth``) and
``torch.amp.GradScaler`` (``gradscaler_history``). The float64 formulas with a ``variant``
argument reproduce the mistakes, to name them. Every function that returns a right answer
or a bug's output is an ``@oracle`` (``genlab.checks.recorded``): the student build keeps
only its recorded answers, so the namers compare with them through ``close`` and ``same``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from genlab.checks.kit import close, describe, same
from genlab.checks.recorded import oracle

__all__ = [
    "ADAM_DEFAULTS",
    "torch_adam_trajectory",
    "adam_formula",
    "name_adam_bug",
    "name_adam_state_bug",
    "fp16_truth",
    "survival_formula",
    "underflow_formula",
    "name_survival_bug",
    "name_scaled_backward_bug",
    "unscale_formula",
    "nonfinite_formula",
    "name_unscale_bug",
    "gradscaler_history",
    "scale_history_formula",
    "name_scale_bug",
]

ADAM_DEFAULTS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False)


# ---------------------------------------------------------------- 1. Adam

@oracle
def torch_adam_trajectory(param0: Tensor, grads: Sequence[Tensor], lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                          weight_decay=0.0, decoupled=False) -> tuple[list[Tensor], dict]:
    """The parameter after each step of ``torch.optim.Adam`` (``AdamW`` when ``decoupled``).

    Runs in ``param0``'s dtype with ``amsgrad=False``; returns ``([θ_1, ..., θ_T], state)``
    where ``state`` is torch's final ``{"step", "exp_avg", "exp_avg_sq"}``.
    """
    p = torch.nn.Parameter(param0.detach().clone())
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    opt = cls([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=False, foreach=False)
    out = []
    for g in grads:
        p.grad = g.detach().clone().to(p.dtype)
        opt.step()
        out.append(p.detach().clone())
    return out, {key: value.detach().clone() for key, value in opt.state[p].items()}


@oracle
def adam_formula(param0: Tensor, grads: Sequence[Tensor], lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.0, decoupled=False, variant: str = "right") -> list[Tensor]:
    """Adam in float64 from the equations, or one of the usual mistakes (``variant``).

    Variants: "right", "no_bias_correction", "m_correction_only", "v_correction_only",
    "eps_inside_sqrt", "no_sqrt", "t_plus_one" (one step too many in the corrections),
    "coupled_decay" (λθ added to the gradient), "decoupled_decay" (θ(1 - αλ)),
    "decay_without_lr" (θ(1 - λ)), "decay_after_update", "no_decay", "betas_swapped",
    "no_one_minus_beta". Returns ``[θ_1, ..., θ_T]``.
    """
    b1, b2 = betas
    p = param0.detach().double().clone()
    m = torch.zeros_like(p)
    v = torch.zeros_like(p)
    how_decay = {"coupled_decay": "coupled", "decoupled_decay": "decoupled", "decay_without_lr": "no_lr",
                 "decay_after_update": "after", "no_decay": "none"}.get(
        variant, "decoupled" if decoupled else "coupled")
    out = []
    for t, g in enumerate(grads, start=1):
        g = g.detach().double()
        if weight_decay and how_decay == "coupled":
            g = g + weight_decay * p
        if variant == "betas_swapped":
            m, v = b2 * m + (1 - b2) * g, b1 * v + (1 - b1) * g * g
        elif variant == "no_one_minus_beta":
            m, v = b1 * m + g, b2 * v + g * g
        else:
            m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        tc = t + 1 if variant == "t_plus_one" else t
        m_hat = m if variant in ("no_bias_correction", "v_correction_only") else m / (1 - b1 ** tc)
        v_hat = v if variant in ("no_bias_correction", "m_correction_only") else v / (1 - b2 ** tc)
        if variant == "eps_inside_sqrt":
            step = m_hat / torch.sqrt(v_hat + eps)
        elif variant == "no_sqrt":
            step = m_hat / (v_hat + eps)
        else:
            step = m_hat / (torch.sqrt(v_hat) + eps)
        if weight_decay and how_decay == "decoupled":
            p = p * (1 - lr * weight_decay)
        elif weight_decay and how_decay == "no_lr":
            p = p * (1 - weight_decay)
        p = p - lr * step
        if weight_decay and how_decay == "after":
            p = p * (1 - lr * weight_decay)
        out.append(p.clone())
    return out


_ADAM_HINTS = {
    "no_bias_correction": "there is no bias correction: divide m by (1 - β1^t) and v by (1 - β2^t). m and v start at 0, "
                          "so in the first steps they are far below the true averages, and with β2 = 0.999 the update "
                          "m/√v comes out several times too large.",
    "m_correction_only": "only m is bias-corrected: v also starts at 0, so divide it by (1 - β2^t) as well "
                         "(v̂ = v / (1 - β2^t)).",
    "v_correction_only": "only v is bias-corrected: divide m by (1 - β1^t) as well (m̂ = m / (1 - β1^t)).",
    "eps_inside_sqrt": "ε is inside the square root: Adam divides by (√v̂ + ε), not √(v̂ + ε).",
    "no_sqrt": "the update divides by v̂ instead of its square root: use m̂ / (√v̂ + ε).",
    "t_plus_one": "the bias correction uses one step too many (t + 1 at the first step): the first step is t = 1, "
                  "so the first correction is 1 - β1^1.",
    "coupled_decay": "weight decay went into the gradient (λθ added to g, as torch.optim.Adam does), but decoupled=True "
                     "asks for AdamW: shrink the weight directly, θ ← θ(1 − lr·λ), and keep the gradient as it is.",
    "decoupled_decay": "decoupled=False asks for coupled decay (torch.optim.Adam): add weight_decay * param to the "
                       "gradient before the moments; θ(1 − lr·λ) is AdamW's (decoupled=True) rule.",
    "decay_without_lr": "the decoupled decay forgets the learning rate: AdamW shrinks by θ(1 − lr·λ), not θ(1 − λ).",
    "decay_after_update": "the decoupled decay is applied after the Adam update: AdamW shrinks the weight from before "
                          "the step, θ(1 − lr·λ) − lr·m̂/(√v̂ + ε).",
    "no_decay": "weight_decay is ignored: use it (added to the gradient when decoupled=False, θ(1 − lr·λ) when True).",
    "betas_swapped": "β1 and β2 are swapped: m (the mean of g) uses β1 = 0.9, v (the mean of g²) uses β2 = 0.999.",
    "no_one_minus_beta": "the moments add the new gradient without the (1 − β) factor: m = β1 m + (1 − β1) g and "
                         "v = β2 v + (1 − β2) g².",
}


def name_adam_bug(got: Sequence, param0: Tensor, grads: Sequence[Tensor], atol: float, **hyper) -> str | None:
    """None if ``got`` (the parameter after each step) follows Adam; otherwise the likely bug.

    ``hyper``: lr, betas, eps, weight_decay, decoupled (defaults as torch's Adam).
    """
    hp = {**ADAM_DEFAULTS, **hyper}
    for t, p in enumerate(got, start=1):
        if not isinstance(p, Tensor):
            return f"adam_step should return (new_param, state) with new_param a tensor; step {t} gave {describe(p)}."
        if p.shape != param0.shape:
            return f"the new parameter should have the parameter's shape {tuple(param0.shape)}, got {tuple(p.shape)}."
        if p.dtype != param0.dtype:
            return (f"the new parameter should keep the parameter's dtype {param0.dtype}, got {p.dtype}: create m and "
                    "v with torch.zeros_like(param) and do not convert the result.")
        if not bool(torch.isfinite(p).all()):
            if t == 1:
                return ("the first step gave inf/NaN. If the step count starts at t = 0, the bias correction divides by "
                        "1 − β^0 = 0: count steps from 1 (t = state.get('t', 0) + 1, then use t).")
            return (f"step {t} gave inf/NaN: check that v is a mean of g² (never negative) and that you divide by "
                    "(√v̂ + ε).")
    right = adam_formula(param0, grads, variant="right", **hp)
    traj = [p.double() for p in got]

    def follows(ref):
        return all(close(a, b, atol) for a, b in zip(traj, ref, strict=False))

    if follows(right):
        return None
    candidates = ["no_bias_correction", "m_correction_only", "v_correction_only", "eps_inside_sqrt", "no_sqrt",
                  "t_plus_one", "betas_swapped", "no_one_minus_beta"]
    if hp["weight_decay"]:
        candidates += (["coupled_decay", "decay_without_lr", "decay_after_update"] if hp["decoupled"]
                       else ["decoupled_decay"]) + ["no_decay"]
    for variant in candidates:
        if follows(adam_formula(param0, grads, variant=variant, **hp)):
            return _ADAM_HINTS[variant]
    first = next(t for t, (a, b) in enumerate(zip(traj, right, strict=False), start=1) if not close(a, b, atol))
    if first == 1:
        return ("the very first step is already wrong. At t = 1 the corrected moments are m̂ = g and v̂ = g², so Adam "
                "moves every weight by about lr (θ − lr·g/(|g| + ε)); check the order: moments, bias correction, then "
                "θ − lr·m̂/(√v̂ + ε).")
    return (f"the first step is right but step {first} is not: check that m and v carry over between calls (return "
            "them in the state and read them back) and that t counts the steps.")


def name_adam_state_bug(state, t: int, torch_state: dict, param: Tensor, atol: float) -> str | None:
    """None if ``state`` is ``{"t": t, "m": ..., "v": ...}`` matching torch's moments; else a hint."""
    if not isinstance(state, dict):
        return f"the state should be a dict {{'t': int, 'm': tensor, 'v': tensor}}, got {describe(state)}."
    missing = [k for k in ("t", "m", "v") if k not in state]
    if missing:
        return (f"the state has no {', '.join(repr(k) for k in missing)} (it has {sorted(map(str, state))}): keep the "
                "step count as 't' and the moments as 'm' and 'v'.")
    step = state["t"]
    if isinstance(step, Tensor) and step.numel() == 1:
        step = step.item()
    if isinstance(step, bool) or not isinstance(step, (int, float)) or step != t:
        return f"after {t} steps state['t'] should be {t}, got {describe(state['t'])}; t counts the steps from 1."
    if not isinstance(state["t"], int):
        return f"state['t'] should be a Python int, got {describe(state['t'])}."
    for key, want, what in (("m", torch_state["exp_avg"], "the first moment (mean of g)"),
                            ("v", torch_state["exp_avg_sq"], "the second moment (mean of g²)")):
        got = state[key]
        if not isinstance(got, Tensor) or got.shape != param.shape:
            return f"state['{key}'] should be a tensor shaped like the parameter {tuple(param.shape)}, got {describe(got)}."
        if got.dtype != param.dtype:
            return f"state['{key}'] should have the parameter's dtype {param.dtype}, got {got.dtype}: use zeros_like(param)."
        if not close(got, want, atol * 1e-2 + 1e-12, rtol=1e-4):
            return (f"state['{key}'] should hold {what} without bias correction (m_t, v_t, not m̂_t, v̂_t); "
                    "it differs from torch's.")
    return None


# ---------------------------------------------------------------- 2. update survival

@oracle
def fp16_truth(weight: Tensor, lr: float, grad: Tensor) -> Tensor:
    """What real float16 arithmetic does: True where ``weight - lr * grad`` != ``weight``."""
    w, g = weight.to(torch.float16), grad.to(torch.float16)
    return (w - lr * g) != w


@oracle
def survival_formula(weight: Tensor, lr: float, grad: Tensor, variant: str = "right") -> Tensor:
    """The prediction of a rule (``variant``) for whether a float16 weight changes.

    Variants: "right" (the float16 update reaches past half the gap in the direction of the
    move; ties to even), "float64" / "float32" (``weight - lr*grad`` computed in that
    precision), "relative_eps" (|u| > eps·|w|/2), "full_gap" (|u| > the gap), "ties_survive"
    (|u| >= half the gap), "ties_lost" (|u| > half the gap), "gap_away_from_zero" (the gap
    above |w| whatever the direction), "flush_subnormal_updates" (updates below the smallest
    normal count as 0).
    """
    w = weight.to(torch.float16)
    g = grad.to(torch.float16)
    if variant in ("float64", "float32"):
        dt = torch.float64 if variant == "float64" else torch.float32
        return (w.to(dt) - lr * g.to(dt)) != w.to(dt)
    u = (lr * g).to(torch.float16)
    size = u.double().abs()
    if variant == "flush_subnormal_updates":
        u = torch.where(u.abs() < torch.finfo(torch.float16).smallest_normal, torch.zeros_like(u), u)
        size = u.double().abs()
    if variant == "relative_eps":
        return (size > 0) & (size > torch.finfo(torch.float16).eps * w.double().abs() / 2)
    if variant == "gap_away_from_zero":
        target = torch.where(w < 0, -torch.inf, torch.inf).to(torch.float16)
    else:
        target = torch.where(u > 0, -torch.inf, torch.inf).to(torch.float16)
    neighbour = torch.nextafter(w, target)
    gap = (neighbour.double() - w.double()).abs()
    if variant == "full_gap":
        return size > gap
    if variant == "ties_survive":
        return (size > 0) & (size >= gap / 2)
    if variant == "ties_lost":
        return size > gap / 2
    even = (neighbour.view(torch.int16) & 1) == 0
    return (size > gap / 2) | ((size == gap / 2) & even & (size > 0))


@oracle
def underflow_formula(lr: float, grad: Tensor) -> Tensor:
    """True where the update ``lr * grad`` is not 0 but rounds to 0 in float16 (grad's shape, bool)."""
    g = grad.to(torch.float16)
    return ((lr * g).to(torch.float16) == 0) & (lr * g.double() != 0)


_SURVIVAL_HINTS = {
    "float64": "the prediction says the weight changes where float16 rounds weight − lr·grad back to the same number: "
               "you computed in float64. The subtraction happens in float16, where an update smaller than half the "
               "gap between neighbouring numbers is lost (1e-4 on a weight of 1.0 is lost: eps = 9.77e-4).",
    "float32": "the prediction says the weight changes where float16 rounds weight − lr·grad back to the same number: "
               "you computed in float32. The subtraction happens in float16, where an update smaller than half the "
               "gap between neighbouring numbers is lost (1e-4 on a weight of 1.0 is lost: eps = 9.77e-4), and an "
               "update below 2.98e-8 rounds to 0 before it starts.",
    "relative_eps": "the gap next to w is not eps·|w|: float16 numbers in [2^k, 2^(k+1)) are evenly spaced "
                    "eps·2^k apart (the gap jumps at powers of two). Use the distance to the neighbouring float16 "
                    "number, e.g. torch.nextafter.",
    "full_gap": "an update survives as soon as it is more than HALF the gap to the neighbouring float16 number "
                "(round to nearest), not a whole gap.",
    "ties_survive": "wrong where the update is exactly half the gap: such a tie is rounded to the neighbour whose last "
                    "mantissa bit is 0 (round half to even), so it survives only when that neighbour is even.",
    "ties_lost": "wrong where the update is exactly half the gap: such a tie is rounded to the neighbour whose last "
                 "mantissa bit is 0 (round half to even), so it survives when that neighbour is the even one.",
    "gap_away_from_zero": "wrong just below powers of two: moving toward zero from 2^k, float16 numbers are twice as "
                          "dense (the gap below 2^k is half the gap above it). Use the gap in the direction of the "
                          "move: torch.nextafter(w, target) with target = -inf when the weight decreases.",
    "flush_subnormal_updates": "updates below the smallest normal number (6.1e-5) are not 0 in float16: they are "
                               "subnormal, down to 5.96e-8. Only an update below 2.98e-8 rounds to 0.",
}


def name_survival_bug(got, weight: Tensor, lr: float, grad: Tensor) -> str | None:
    """None if ``got`` agrees with real float16 arithmetic; otherwise the likely bug.

    ``weight`` and ``grad``: float16 tensors of one shape; ``got`` should be a bool tensor of that shape.
    """
    shape = tuple(torch.broadcast_shapes(weight.shape, grad.shape))
    if not isinstance(got, Tensor):
        return (f"fp16_update_survives should return a bool tensor shaped like the weight {shape}, got "
                f"{describe(got)}.")
    if tuple(got.shape) != shape:
        return f"the result should have the weight's shape {shape}, got {tuple(got.shape)}."
    if got.dtype != torch.bool:
        return (f"the result should be a bool tensor (True where the weight changes), got {got.dtype}: a comparison "
                "such as `a != b` or `x > y` gives bool.")
    truth = fp16_truth(weight, lr, grad)
    if same(got, truth):
        return None
    for variant, hint in _SURVIVAL_HINTS.items():
        if same(got, survival_formula(weight, lr, grad, variant)):
            return hint
    wrong = got != truth   # no known bug: say where the answers disagree
    w = weight.to(torch.float16)
    n = int(wrong.sum())
    if bool((wrong & underflow_formula(lr, grad)).any()):
        return ("where lr·grad is below 2.98e-8 (half the smallest subnormal, 5.96e-8) the update itself rounds to 0 in "
                "float16 and nothing changes, whatever the weight (the course's 1e-3 × 1e-5 = 1e-8). Round the update "
                "u = lr·grad to float16 first, and answer False where it is 0.")
    if bool((wrong & (w.abs() < torch.finfo(torch.float16).smallest_normal)).any()):
        return ("wrong for weights near 0 (subnormal, |w| < 6.1e-5), where float16 numbers are evenly spaced 2^-24 ≈ "
                "5.96e-8 apart; for w = 0 any nonzero float16 update changes the weight.")
    if bool((wrong & (w < 0)).any()) and not bool((wrong & (w > 0)).any()):
        return ("right for positive weights but wrong for negative ones: the move is −u, so for a negative weight a "
                "positive update increases its magnitude. Work with the direction of the move, not with |w|.")
    return (f"{n} of {got.numel()} answers disagree with float16 arithmetic. The weight changes when the float16 "
            "update u = lr·grad is not 0 and |u| is more than half the gap to the neighbouring float16 number in the "
            "direction of the move (exactly half: round half to even).")


# ---------------------------------------------------------------- 3. loss scaling

def name_scaled_backward_bug(got: Sequence, plain: Sequence[Tensor], scale: float, rtol: float = 1e-4) -> str | None:
    """None if ``got`` (the gradients after ``scaled_backward``) is ``scale`` times ``plain``.

    ``plain``: the gradients of the unscaled loss, computed in float64; ``rtol`` is relative
    to each gradient's largest entry (float32 rounding).
    """
    if not isinstance(got, (list, tuple)) or len(got) != len(plain):
        return f"expected {len(plain)} parameter gradients, got {describe(got)}."
    if any(g is None for g in got):
        return ("a parameter has no gradient after scaled_backward: call .backward() on the scaled loss "
                "(loss * scale).backward().")

    def ratio_is(k):
        return all(close(g.double(), p * k, atol=rtol * float((p * k).abs().max()), rtol=rtol) for g, p in zip(got, plain, strict=False))

    if ratio_is(scale):
        return None
    for k, hint in ((1.0, "the gradients are not scaled: backpropagate loss * scale, not loss."),
                    (1.0 / scale, "the gradients came out divided by the scale: multiply the loss by scale before "
                                  "backward (dividing is unscale_and_check's job, afterwards)."),
                    (scale * scale, "the gradients are scaled twice: multiply the loss by scale once."),
                    (2 * scale, "the gradients are twice too large: backward ran twice, and gradients accumulate. "
                                "Call backward once.")):
        if ratio_is(k):
            return hint
    return "the gradients should be exactly scale × the gradients of the loss: call (loss * scale).backward()."


@oracle
def unscale_formula(grads: Sequence[Tensor | None], scale: float, max_norm: float | None = None,
                    variant: str = "right") -> list[Tensor | None]:
    """The unscaled (and optionally clipped) gradients, or one of the usual mistakes.

    Variants: "right" (float32 g / scale, then clip the total norm), "in_grad_dtype" (divided
    in the gradient's own dtype, float16), "not_unscaled", "multiplied", "clip_first" (clipped
    while still scaled, then unscaled), "per_tensor_clip" (each gradient clipped alone).
    """
    def clip(gs, per_tensor=False):
        if max_norm is None:
            return gs
        present = [g for g in gs if g is not None]
        if per_tensor:
            return [None if g is None else g * torch.clamp(max_norm / (g.double().norm() + 1e-6), max=1.0).float()
                    for g in gs]
        total = torch.stack([g.double().norm() for g in present]).norm() if present else torch.tensor(0.0)
        coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        return [None if g is None else (g.double() * coef).float() for g in gs]

    if variant == "clip_first":
        return [None if g is None else g / scale for g in clip([None if g is None else g.float() for g in grads])]
    if variant == "in_grad_dtype":
        out = [None if g is None else (g / scale).float() for g in grads]
    elif variant == "not_unscaled":
        out = [None if g is None else g.float() for g in grads]
    elif variant == "multiplied":
        out = [None if g is None else g.float() * scale for g in grads]
    elif variant == "no_clip":
        return [None if g is None else g.float() / scale for g in grads]
    else:
        out = [None if g is None else g.float() / scale for g in grads]
    return clip(out, per_tensor=variant == "per_tensor_clip")


@oracle
def nonfinite_formula(grads: Sequence[Tensor | None]) -> list[str]:
    """What each gradient holds: "inf" (±inf, NaN perhaps too), "nan" (NaN but no inf), or ""
    (finite, or no gradient). ``found_inf`` is True when any entry is not ""."""
    def kind(g):
        if g is None or bool(torch.isfinite(g).all()):
            return ""
        return "inf" if bool(torch.isinf(g).any()) else "nan"

    return [kind(g) for g in grads]


def name_unscale_bug(result, grads: Sequence[Tensor | None], scale: float, max_norm: float | None = None,
                     rtol: float = 1e-5) -> str | None:
    """None if ``result`` is ``(unscaled float32 gradients, found_inf: bool)`` as specified."""
    kinds = nonfinite_formula(grads)
    want_inf = any(kinds)
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        return f"unscale_and_check should return (grads, found_inf), got {describe(result)}."
    got, found_inf = result
    if not isinstance(found_inf, bool):
        return (f"found_inf should be a Python bool, got {describe(found_inf)}: wrap a tensor test in bool(...), e.g. "
                "bool(torch.isfinite(g).all()).")
    if not same(found_inf, want_inf):
        if want_inf:
            if "nan" in kinds and "inf" not in kinds:
                return ("found_inf is False although a gradient holds NaN: NaN is not inf (torch.isinf misses it). "
                        "Test with torch.isfinite, which is False for inf and NaN alike.")
            bad = next(i for i, k in enumerate(kinds) if k)
            return (f"found_inf is False although gradient {bad} holds inf/NaN: check every gradient in the list, "
                    "not just one of them.")
        return "found_inf is True although every gradient is finite: it must be True only for inf or NaN."
    if not isinstance(got, (tuple, list)) or len(got) != len(grads):
        return f"the unscaled gradients should be a list of {len(grads)} tensors (one per gradient), got {describe(got)}."
    for g, u in zip(grads, got, strict=False):
        if g is None:
            if u is not None:
                return "a None gradient (a parameter without a gradient) should stay None."
            continue
        if not isinstance(u, Tensor) or u.shape != g.shape:
            return f"each unscaled gradient should be a tensor of its gradient's shape {tuple(g.shape)}, got {describe(u)}."
        if u.dtype != torch.float32:
            return (f"the unscaled gradients should be float32 (the master copy), got {u.dtype}: divide g.float() by the "
                    "scale; in float16 small gradients would underflow again.")
    if want_inf:
        return None  # the step is skipped: the values do not matter

    def matches(variant):
        ref = unscale_formula(grads, scale, max_norm, variant)   # float32 (None where the gradient is None)
        return all(u is None or close(u, r, atol=1e-30, rtol=rtol) for u, r in zip(got, ref, strict=False))

    if matches("right"):
        return None
    hints = {
        "not_unscaled": "the gradients were not divided by the scale: return g.float() / scale.",
        "multiplied": "the gradients were multiplied by the scale instead of divided: return g.float() / scale.",
        "in_grad_dtype": "the division happened in float16, where small gradients underflow or lose digits: convert "
                         "to float32 first, g.float() / scale.",
        "clip_first": "the gradients were clipped before unscaling: while scaled, their norm is scale times too big. "
                      "Unscale first, then clip to max_norm.",
        "per_tensor_clip": "each gradient was clipped on its own: clip_grad_norm_ scales all of them by one factor, "
                           "max_norm / (total norm + 1e-6), where the total norm is taken over all gradients together.",
    }
    if max_norm is not None:
        hints["no_clip"] = ("max_norm was given but the gradients were not clipped: after unscaling, multiply them all "
                            "by min(1, max_norm / (total norm + 1e-6)).")
    for variant, hint in hints.items():
        if matches(variant):
            return hint
    return "the unscaled gradients should be exactly g.float() / scale (then clipped, when max_norm is given)."


# ---------------------------------------------------------------- 4. dynamic scale

@oracle
def gradscaler_history(found_infs: Sequence[bool], init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                       backoff_factor: float = 0.5, growth_interval: int = 2000) -> list[tuple[float, int]]:
    """``(scale, growth_tracker)`` after each step of a real ``torch.amp.GradScaler`` (on the CPU).

    Each step gives a one-element parameter a gradient that is inf when ``found_infs[i]``
    (so the scaler skips that step), then calls ``scaler.step`` and ``scaler.update``.
    """
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale, growth_factor=growth_factor,
                                  backoff_factor=backoff_factor, growth_interval=growth_interval)
    scaler.scale(torch.ones(()))  # creates the scale tensors
    out = []
    for bad in found_infs:
        p.grad = torch.full((1,), math.inf if bad else 1.0)
        scaler.step(opt)
        scaler.update()
        out.append((float(scaler.get_scale()), int(scaler._growth_tracker.item())))
    return out


def _scale_rule_step(scale: float, found_inf: bool, tracker: int, growth_factor: float, backoff_factor: float,
                     growth_interval: int, variant: str) -> tuple[float, int]:
    """One update ``(scale, tracker)`` of the rule of ``scale_history_formula`` (``variant``)."""
    f32_max = float(torch.finfo(torch.float32).max)
    if found_inf:
        if variant == "never_backoff":
            return scale, 0
        return scale * backoff_factor, (tracker if variant == "no_reset_on_overflow" else 0)
    tracker += 1
    due = {"grow_one_step_early": tracker == growth_interval - 1 or growth_interval == 1,
           "grow_one_step_late": tracker == growth_interval + 1}.get(variant, tracker == growth_interval)
    if variant == "no_reset_after_growth_ge":
        due = tracker >= growth_interval
    if due:
        grown = scale * growth_factor
        if grown > f32_max and variant != "grow_past_float32_max":
            grown = scale
        return grown, (tracker if variant.startswith("no_reset_after_growth") else 0)
    return scale, tracker


@oracle
def scale_history_formula(found_infs: Sequence[bool], init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                          backoff_factor: float = 0.5, growth_interval: int = 2000,
                          variant: str = "right") -> list[tuple[float, int]]:
    """``(scale, growth_tracker)`` after each step of the dynamic-scale rule, from ``init_scale``
    and a count of 0, or of one of its usual mistakes (``variant``).

    Variants: "right", "never_backoff", "no_reset_on_overflow" (the clean-step count survives
    an overflow), "no_reset_after_growth" (the count goes on past growth_interval, so the
    scale grows only once), "no_reset_after_growth_ge" (the same with ``>=``: it grows at every
    step after the first growth), "grow_one_step_early", "grow_one_step_late",
    "grow_past_float32_max".
    """
    scale, tracker, out = float(init_scale), 0, []
    for bad in found_infs:
        scale, tracker = _scale_rule_step(scale, bad, tracker, growth_factor, backoff_factor, growth_interval, variant)
        out.append((scale, tracker))
    return out


_SCALE_HINTS = {
    "never_backoff": "the scale is never reduced: when found_inf is True, multiply it by backoff_factor (0.5), or the "
                     "next steps overflow again and are skipped forever.",
    "no_reset_on_overflow": "after an overflow the count of clean steps must restart at 0: growth needs growth_interval "
                            "clean steps in a row.",
    "no_reset_after_growth": "after the scale grows, reset the clean-step counter to 0: otherwise the count runs past "
                             "growth_interval and the scale never grows again.",
    "no_reset_after_growth_ge": "after the scale grows, reset the clean-step counter to 0: otherwise it grows again at "
                                "every following step.",
    "grow_one_step_early": "the scale grows one step early: count this clean step first (tracker + 1), and grow when "
                           "the count reaches growth_interval.",
    "grow_one_step_late": "the scale grows one step late: grow as soon as the count of clean steps (including this one) "
                          "reaches growth_interval.",
    "grow_past_float32_max": "the scale grew past the largest float32 (3.4e38): GradScaler keeps the scale when growing "
                             "would overflow float32, and only resets the counter.",
}


def name_scale_bug(got: Sequence, found_infs: Sequence[bool], init_scale: float = 2.0 ** 16,
                   **rule) -> str | None:
    """None if ``got`` (``(scale, tracker)`` after each step) follows GradScaler's rule.

    ``rule``: growth_factor, backoff_factor, growth_interval (GradScaler's defaults otherwise).
    """
    def history(variant):
        return scale_history_formula(found_infs, init_scale, variant=variant, **rule)

    for pair in got:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            return f"dynamic_scale_update should return (new_scale, new_growth_tracker), got {describe(pair)}."
        scale, tracker = pair
        if isinstance(scale, bool) or not isinstance(scale, float):
            return f"new_scale should be a Python float, got {describe(scale)}: return float(...)."
        if isinstance(tracker, bool) or not isinstance(tracker, int):
            return (f"new_growth_tracker should be a Python int (the count of clean steps), got {describe(tracker)}.")
    got = [(float(s), int(k)) for s, k in got]
    right = history("right")
    if same(got, right):
        return None
    for variant, hint in _SCALE_HINTS.items():
        if same(got, history(variant)):
            return hint
    first = next(i for i, (a, b) in enumerate(zip(got, right, strict=False)) if not same(a, b))
    what = "an overflow" if found_infs[first] else "a clean step"
    return (f"the scale or the counter is wrong after {what} (step {first + 1} of the sequence). The rule: on inf/NaN "
            "multiply the scale by backoff_factor and reset the counter to 0; otherwise add 1 to the counter, and when "
            "it reaches growth_interval multiply the scale by growth_factor and reset the counter to 0.")
