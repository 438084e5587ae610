"""Public checks for lab 00 (optimisation and precision). Each prints one ✓ line or raises AssertionError.

The oracles are independent of your formulas: ``torch.optim.Adam`` and ``AdamW``, real
float16 arithmetic, and ``torch.amp.GradScaler``. The hidden tests use other inputs and more
cases, but check the same things: what these checks accept, they accept.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from genlab.checks import kit
from genlab.checks import lab00_bugs as bugs
from genlab.checks.recorded import oracle

__all__ = [
    "check_adam_step",
    "check_fp16_update_survives",
    "check_loss_scaling",
    "check_dynamic_scale_update",
    "plain_grads_formula",
]


# ---------------------------------------------------------------- 1. Adam

FIRST_STEP_HINT = (" The state is {} before the first step: read it with defaults, e.g. "
                   "state.get('m', torch.zeros_like(param)), and state.get('t', 0) + 1 for the step count.")

def adam_run(fn: Callable, param0: Tensor, grads, call=kit.call, **hyper) -> tuple[list, dict]:
    """Call ``fn`` (an ``adam_step``) once per gradient, feeding its state back; the params and last state."""
    param, state, out = param0.clone(), {}, []
    for t, grad in enumerate(grads, start=1):
        result = call(f"adam_step at step {t}", fn, param, grad.clone(), state, **hyper)
        param, state = kit.expect_tuple(result, 2, f"adam_step (step {t})", ("new_param", "state"))
        if not isinstance(state, dict):
            raise AssertionError(f"adam_step should return (new_param, state) with state a dict "
                                 f"{{'t', 'm', 'v'}}, got {kit.describe(state)} at step {t}.")
        if not isinstance(param, Tensor):
            raise AssertionError(f"adam_step should return the new parameter as a tensor, got {kit.describe(param)}.")
        out.append(param)
    return out, state


def _grads(seed: int, shape, steps: int, dtype=torch.float32, zero_at=(7,)) -> list[Tensor]:
    """Gradients of very different sizes (1e-5 to 1), a few steps all zero, one column always zero."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for t in range(steps):
        size = 10.0 ** float(torch.empty(()).uniform_(-5, 0, generator=g))
        grad = torch.randn(shape, generator=g, dtype=torch.float64) * size
        if t in zero_at:
            grad.zero_()
        grad[..., 0] = 0.0  # a weight that never gets a gradient must not move (without decay)
        out.append(grad.to(dtype))
    return out


def _adam_case(fn, seed, dtype, atol, steps=100, **hyper):
    g = torch.Generator().manual_seed(seed)
    param0 = torch.randn(3, 5, generator=g, dtype=torch.float64).to(dtype)
    grads = _grads(seed, (3, 5), steps, dtype)
    want, torch_state = bugs.torch_adam_trajectory(param0, grads, **hyper)
    got, state = adam_run(fn, param0, grads, **hyper)
    name = "AdamW" if hyper.get("decoupled") else "Adam"
    where = f"{steps} steps against torch.optim.{name}({', '.join(f'{k}={v}' for k, v in hyper.items())}) in {dtype}"
    first = next((t for t, (p, w) in enumerate(zip(got, want, strict=False), start=1)
                  if not kit.close(p, w, atol) or p.dtype != dtype), None)
    if first is not None:   # named once: the recorder, exploring, goes on past a failure
        p, w = got[first - 1], want[first - 1]
        kit.fail_if(bugs.name_adam_bug(got, param0, grads, atol, **hyper) or
                    f"step {first} differs from torch (largest error {(p.double() - w.double()).abs().max():.3g}).",
                    where)
    kit.fail_if(bugs.name_adam_state_bug(state, steps, torch_state, param0, atol), where)


def _interleaved(fn: Callable) -> None:
    """Two parameters stepped in turn, each with its own state: each must follow torch as if alone."""
    g = torch.Generator().manual_seed(5)
    starts = [torch.randn(4, generator=g), torch.randn(2, 3, generator=g)]
    grads = [_grads(6, (4,), 20), _grads(7, (2, 3), 20)]
    want = [bugs.torch_adam_trajectory(p, gs, lr=1e-2)[0] for p, gs in zip(starts, grads, strict=False)]
    params, states = [p.clone() for p in starts], [{}, {}]
    for t in range(20):
        for i in range(2):
            result = kit.call(f"adam_step at step {t + 1}", fn, params[i], grads[i][t].clone(), states[i], lr=1e-2)
            params[i], states[i] = kit.expect_tuple(result, 2, "adam_step", ("new_param", "state"))
            if not kit.close(params[i], want[i][t], 1e-5):
                raise AssertionError(f"two parameters updated in turn (each with its own state) go wrong at step "
                                     f"{t + 1}: everything a step needs must come from its `state` argument and go "
                                     "back in the returned state (no global variables or counters between calls).")


def check_adam_step(fn: Callable) -> None:
    """The first step, then 100 steps against torch.optim.Adam / AdamW, in float32 and float64."""
    param0, grad = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([1e-3, -2.0, 0.0])
    try:
        first = kit.call("adam_step on the first step (state = {})", fn, param0.clone(), grad.clone(), {})
    except AssertionError as exc:
        raise AssertionError(f"{exc}{FIRST_STEP_HINT if 'KeyError' in str(exc) else ''}") from None
    new, state = kit.expect_tuple(first, 2, "adam_step", ("new_param", "state"))
    kit.expect_tensor(new, "the new parameter", shape=(3,), dtype=torch.float32)
    if not isinstance(state, dict) or not {"t", "m", "v"} <= set(state):
        raise AssertionError(f"the state should be a dict with the keys 't', 'm' and 'v', got {kit.describe(state)}"
                             + (f" with keys {sorted(map(str, state))}" if isinstance(state, dict) else "") + ".")
    if isinstance(state["t"], bool) or not isinstance(state["t"], int) or state["t"] != 1:
        raise AssertionError(f"after the first step state['t'] should be the int 1, got {kit.describe(state['t'])}: "
                             "t counts the steps from 1, so the first bias correction is 1 - β^1.")
    kit.fail_if(bugs.name_adam_bug([new], param0, [grad], 1e-6), "adam_step(param, grad, {})")
    kit.ok("first step: bias correction makes it move each weight by about lr, m̂ = g and v̂ = g²")
    _adam_case(fn, 0, torch.float32, 1e-5)
    _adam_case(fn, 1, torch.float32, 1e-5, lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    _adam_case(fn, 2, torch.float32, 1e-5, lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1, decoupled=True)
    _adam_case(fn, 3, torch.float64, 1e-11, lr=2e-3, eps=1e-4, weight_decay=0.05, decoupled=True)
    _interleaved(fn)
    kit.ok("adam_step matches torch.optim.Adam and AdamW over 100 steps (float32 and float64, zero gradients, "
           "coupled and decoupled weight decay)")


# ---------------------------------------------------------------- 2. update survival

def _neighbour_grid(weights, lrs=(1.0, 0.5, 2.0 ** -10)):
    """Updates at 0, ¼, ½ (ties), just above ½, ¾, 1 and 1½ of the gaps on both sides of each weight."""
    f16 = torch.float16
    rows = {lr: ([], []) for lr in lrs}
    for w in weights:
        w16 = torch.tensor(w, dtype=f16)
        up = float(torch.nextafter(w16, torch.tensor(math.inf, dtype=f16)).double() - w16.double())
        down = float(w16.double() - torch.nextafter(w16, torch.tensor(-math.inf, dtype=f16)).double())
        for gap, sign in ((up, -1.0), (down, 1.0)):
            for k in (0.0, 0.25, 0.5, 0.5 + 2 ** -10, 0.75, 1.0, 1.5):
                for lr in lrs:
                    g16 = torch.tensor(sign * gap * k / lr, dtype=torch.float64).to(f16)
                    if torch.isfinite(g16):
                        rows[lr][0].append(float(w16))
                        rows[lr][1].append(float(g16))
    return [(torch.tensor(ws, dtype=f16), lr, torch.tensor(gs, dtype=f16)) for lr, (ws, gs) in rows.items()]


def _log_grid(lr, w_range=(-7.5, 4.6), g_range=(-7.5, 2.5), n=(48, 36)):
    w = torch.logspace(*w_range, n[0], dtype=torch.float64)
    g = torch.logspace(*g_range, n[1], dtype=torch.float64)
    w = torch.cat([w, -w, torch.zeros(1, dtype=torch.float64)]).to(torch.float16)
    g = torch.cat([g, -g]).to(torch.float16)
    ww, gg = torch.meshgrid(w, g, indexing="ij")
    return ww.flatten(), lr, gg.flatten()


def check_fp16_update_survives(fn: Callable) -> None:
    """The course's examples, then grids with subnormals, ties and negative weights against float16 arithmetic."""
    examples = [
        (1.0, 1e-3, 1e-5, False, "lr 1e-3 × grad 1e-5 = 1e-8 is below half the smallest subnormal (2.98e-8): the "
                                 "update itself rounds to 0"),
        (1.0, 1.0, 1e-4, False, "an update of 1e-4 on a weight of 1.0 is lost: it is below half the gap to the "
                                "next float16 number below 1.0 (the gap is 4.88e-4 below 1.0 and eps = 9.77e-4 above)"),
        (1.0, 1e-3, 1e-3, False, "the update 1e-6 exists in float16 (a subnormal) but is far below half the gap "
                                 "next to 1.0"),
        (1e-3, 1e-3, 1e-3, True, "next to 1e-3 the gap is about 9.5e-7, so an update of 1e-6 changes the weight"),
        (0.0, 1e-3, 1e-4, True, "at 0 any update that is not itself 0 changes the weight"),
        (1.0, 1e-3, 1.0, True, "an update of 1e-3 is more than half the gap below 1.0 (2.44e-4)"),
    ]
    for w, lr, g, want, why in examples:
        got = kit.call("fp16_update_survives", fn, torch.tensor([w], dtype=torch.float16), lr,
                       torch.tensor([g], dtype=torch.float16))
        hint = bugs.name_survival_bug(got, torch.tensor([w], dtype=torch.float16), lr,
                                      torch.tensor([g], dtype=torch.float16))
        if hint is not None and isinstance(got, Tensor) and got.dtype == torch.bool and got.shape == (1,):
            hint = f"expected {want}: {why}."
        kit.fail_if(hint, f"weight {w}, lr {lr}, grad {g}")
    kit.ok("the course's examples: 1e-3 × 1e-5 underflows, 1e-4 on 1.0 is lost, 1e-6 survives only on small weights")
    g = torch.Generator().manual_seed(1)
    w2d = torch.randn(3, 4, generator=g).to(torch.float16)
    g2d = (torch.randn(3, 4, generator=g) * 1e-3).to(torch.float16)
    got = kit.call("fp16_update_survives on a (3, 4) weight", fn, w2d.clone(), 0.1, g2d.clone())
    kit.expect_tensor(got, "the result for a (3, 4) weight", shape=(3, 4), dtype=torch.bool,
                      hint="return one bool per weight, in the weight's shape.")
    kit.fail_if(bugs.name_survival_bug(got, w2d, 0.1, g2d), "a (3, 4) weight")
    weights = [0.0, 2 ** -24, 5 * 2 ** -24, 2 ** -14 - 2 ** -24, 2 ** -14, 0.3, 1.0, 1.0 + 2 ** -9, 1.75, 4.0, 6.0,
               512.0, 2000.0, 40000.0]
    weights += [-w for w in weights if w]
    for w, lr, g in _neighbour_grid(weights) + [_log_grid(1e-3), _log_grid(3e-4)]:
        got = kit.call("fp16_update_survives", fn, w.clone(), lr, g.clone())
        kit.fail_if(bugs.name_survival_bug(got, w, lr, g), f"a grid of {w.numel()} weights and updates (lr={lr})")
    kit.ok("fp16_update_survives agrees with float16 arithmetic, subnormals, ties and negative weights included")


# ---------------------------------------------------------------- 3. loss scaling

def _tiny_model(dtype, seed=0, loss_weight=1.0):
    """Weights (leaf tensors of ``dtype``), and a float32 loss of a 2-layer network on fixed data."""
    g = torch.Generator().manual_seed(seed)
    w1 = (torch.randn(6, 8, generator=g) * 0.5).to(dtype).requires_grad_()
    w2 = (torch.randn(8, 3, generator=g) * 0.5).to(dtype).requires_grad_()
    x = torch.randn(16, 6, generator=g).to(dtype)
    y = torch.randint(0, 3, (16,), generator=g)
    logits = torch.tanh(x @ w1) @ w2
    loss = torch.nn.functional.cross_entropy(logits.float(), y) * loss_weight
    return [w1, w2], loss


@oracle
def plain_grads_formula(seed: int = 0, loss_weight: float = 1.0) -> list[Tensor]:
    """The float64 gradients ``[(6, 8), (8, 3)]`` of ``_tiny_model(seed, loss_weight)``'s unscaled loss."""
    params, loss = _tiny_model(torch.float64, seed, loss_weight)
    loss.backward()
    return [p.grad for p in params]


def check_loss_scaling(scaled_backward: Callable, unscale_and_check: Callable) -> None:
    """scaled_backward in float32 and float16; unscale_and_check: float32, inf and NaN anywhere, clipping after."""
    for scale in (2.0 ** 10, 2.0 ** 16, 3.0):
        params, loss = _tiny_model(torch.float32)
        kit.call(f"scaled_backward(loss, scale={scale})", scaled_backward, loss, scale)
        grads = [p.grad for p in params]
        kit.fail_if(bugs.name_scaled_backward_bug(grads, plain_grads_formula(), scale), f"scaled_backward with scale {scale}")
    # float16: a tiny loss whose gradients underflow without scaling
    params, loss = _tiny_model(torch.float16, loss_weight=1e-6)
    kit.call("scaled_backward on a float16 model", scaled_backward, loss, 2.0 ** 16)
    grads = [p.grad for p in params]
    if any(g is None for g in grads):
        raise AssertionError("scaled_backward left a float16 parameter without gradient: call backward on the scaled loss.")
    want = [g * 2.0 ** 16 for g in plain_grads_formula(loss_weight=1e-6)]
    if not all(bool((g != 0).all()) and kit.close(g, w, atol=2e-2 * float(w.abs().max()), rtol=2e-2)
               for g, w in zip(grads, want, strict=False)):
        raise AssertionError("on a float16 model with gradients around 1e-8, scale 2^16 should bring them into "
                             "float16's range (nonzero and within float16 rounding of 2^16 × the true gradients): "
                             "multiply the loss by the scale BEFORE backward.")
    kit.ok("scaled_backward: gradients exactly scale × larger, and small float16 gradients survive")

    g = torch.Generator().manual_seed(4)
    scale = 2.0 ** 16
    true = [torch.randn(4, 5, generator=g) * 1e-7, torch.randn(7, generator=g) * 3e-4, torch.randn(2, 3, generator=g) * 1e-2]
    scaled16 = [(t * scale).half() for t in true]
    what = "unscale_and_check(float16 gradients scaled by 2^16)"
    result = kit.call(what, unscale_and_check, [t.clone() for t in scaled16], scale)
    kit.fail_if(bugs.name_unscale_bug(result, scaled16, scale), what)
    exact = all(kit.same(u, w) for u, w in zip(result[0], bugs.unscale_formula(scaled16, scale), strict=False))
    kit.fail_if(None if exact else "with a power-of-two scale the result must be exactly g.float() / scale.", what)
    huge = [t.clone() for t in scaled16]
    huge[0].view(-1)[0] = 65504.0  # the largest float16: finite, the step must not be skipped
    result = kit.call("unscale_and_check", unscale_and_check, huge, scale)
    kit.fail_if(bugs.name_unscale_bug(result, huge, scale), "a gradient of 65504 (the largest float16, finite)")
    for poison, where in ((math.inf, 1), (-math.inf, 2), (math.nan, 2), (math.nan, 0)):
        grads = [t.clone() for t in scaled16]
        grads[where].view(-1)[3] = poison
        result = kit.call("unscale_and_check", unscale_and_check, grads, scale)
        kit.fail_if(bugs.name_unscale_bug(result, grads, scale), f"a gradient list with {poison} in gradient {where}")
    grads32 = [torch.randn(5, 5, generator=g) * 2.0 ** 10, None, torch.randn(3, generator=g) * 2.0 ** 10]
    for max_norm in (1.0, 1e6):
        what = f"unscale_and_check(..., max_norm={max_norm})"
        result = kit.call(what, unscale_and_check, [None if t is None else t.clone() for t in grads32], 2.0 ** 10,
                          max_norm=max_norm)
        kit.fail_if(bugs.name_unscale_bug(result, grads32, 2.0 ** 10, max_norm), what)
    kit.ok("unscale_and_check: exact float32 unscaling, inf and NaN found anywhere, clipping after unscaling")


# ---------------------------------------------------------------- 4. dynamic scale

def scale_run(fn: Callable, found_infs, init_scale=2.0 ** 16, call=kit.call, **rule) -> list:
    """Call ``fn`` (a ``dynamic_scale_update``) once per step; the ``(scale, tracker)`` after each step."""
    scale, tracker, out = init_scale, 0, []
    for t, bad in enumerate(found_infs, start=1):
        result = call(f"dynamic_scale_update at step {t}", fn, scale, bad, tracker, **rule)
        pair = kit.expect_tuple(result, 2, "dynamic_scale_update", ("new_scale", "new_growth_tracker"))
        out.append(pair)
        scale, tracker = pair
    return out


def _compare_scales(got, found_infs, where, **rule):
    kit.fail_if(bugs.name_scale_bug(got, found_infs, **rule), where)
    matches = kit.same([(float(s), int(k)) for s, k in got], bugs.gradscaler_history(found_infs, **rule))
    kit.fail_if(None if matches else "the scales differ from torch.amp.GradScaler's.", where)


def check_dynamic_scale_update(fn: Callable) -> None:
    """Short sequences with growth_interval=3, then GradScaler's defaults over 2100 steps, and the float32 cap."""
    short = [False] * 3 + [True] + [False] * 7 + [True, True] + [False] * 4
    for rule in (dict(growth_interval=3), dict(growth_interval=2, growth_factor=4.0, backoff_factor=0.25)):
        _compare_scales(scale_run(fn, short, **rule), short, f"a short sequence of overflows with {rule}", **rule)
    kit.ok("short sequences with growth_interval=2 and 3 match torch.amp.GradScaler")
    long = [False] * 2000 + [True] + [False] * 99
    _compare_scales(scale_run(fn, long), long, "GradScaler's defaults (2^16, grow ×2 after 2000 clean steps, "
                                               "back off ×0.5)")
    top = 2.0 ** 127
    got = kit.call("dynamic_scale_update", fn, top, False, 0, growth_interval=1)
    pair = kit.expect_tuple(got, 2, "dynamic_scale_update", ("new_scale", "new_growth_tracker"))
    if not kit.same(tuple(pair), bugs.gradscaler_history([False], init_scale=top, growth_interval=1)[0]):
        raise AssertionError(f"from scale 2^127 a growth would pass the largest float32 (3.4e38): GradScaler keeps the "
                             f"scale at 2^127 and resets the counter, so expected (2^127, 0), got {pair!r}.")
    kit.ok("dynamic_scale_update matches torch.amp.GradScaler with its defaults, and never grows past float32")
