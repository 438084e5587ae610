"""Part 2: fp16_update_survives(weight, lr, grad) against real float16 arithmetic.

The oracle is float16 itself: ``(w - lr * g) != w`` on float16 tensors. Points where torch's
float16 product ``lr * g`` (computed through float32) differs from the correctly rounded
product are left out, so that a rule computed from the exact product is never penalised for
torch's double rounding.
"""
import math

import pytest
import torch

from autograder import kit
from genlab.checks import lab00_bugs as bugs

NAME = "fp16_update_survives"
F16 = torch.float16


def _fair(w, lr, g):
    """Drop the rare points where torch's float16 lr*g is not the correctly rounded product."""
    keep = (lr * g) == (lr * g.double()).to(F16)
    keep &= torch.isfinite(w - lr * g) & torch.isfinite(w) & torch.isfinite(g)
    return w[keep], g[keep]


def _check(fn, w, lr, g, what):
    w, g = _fair(w, lr, g)
    got = kit.call(fn, w.clone(), lr, g.clone(), context=f"{NAME} on {what}")
    kit.fail_if(bugs.name_survival_bug(got, w, lr, g), what)


def _around(weights, fractions, lrs):
    """Updates that are the given fractions of the gaps below and above each weight, for each lr."""
    out = []
    for lr in lrs:
        ws, gs = [], []
        for w in weights:
            w16 = torch.tensor(w, dtype=F16)
            up = float(torch.nextafter(w16, torch.tensor(math.inf, dtype=F16)).double() - w16.double())
            down = float(w16.double() - torch.nextafter(w16, torch.tensor(-math.inf, dtype=F16)).double())
            for gap, sign in ((up, -1.0), (down, 1.0)):
                for k in fractions:
                    g16 = torch.tensor(sign * gap * k / lr, dtype=torch.float64).to(F16)
                    if torch.isfinite(g16):
                        ws.append(float(w16))
                        gs.append(float(g16))
        out.append((torch.tensor(ws, dtype=F16), lr, torch.tensor(gs, dtype=F16)))
    return out


@pytest.mark.points(2)
def test_course_examples(submission):
    """1e-3 × 1e-5 underflows; 1e-4 on 1.0 is lost; lr 1e-3 × grad 1e-3 lives on small weights only."""
    fn = submission.function(NAME)
    cases = [(1.0, 1e-3, 1e-5, False, "lr 1e-3 × grad 1e-5 = 1e-8 rounds to 0 in float16 (below 2.98e-8)"),
             (0.5, 1e-3, -1e-5, False, "lr 1e-3 × grad 1e-5 = 1e-8 rounds to 0 in float16 (below 2.98e-8)"),
             (1.0, 1.0, 1e-4, False, "1e-4 on a weight of 1.0 is below half the gap (eps = 9.77e-4)"),
             (1.0, 1e-3, 1e-3, False, "an update of 1e-6 is far below half the gap next to 1.0"),
             (1e-4, 1e-3, 1e-3, True, "an update of 1e-6 changes a weight of 1e-4 (gap 6e-8 there)")]
    for w, lr, g, want, why in cases:
        weight, grad = torch.tensor([w], dtype=F16), torch.tensor([g], dtype=F16)
        got = kit.call(fn, weight, lr, grad, context=f"{NAME}(weight={w}, lr={lr}, grad={g})")
        hint = bugs.name_survival_bug(got, weight, lr, grad)
        if hint is not None:
            if isinstance(got, torch.Tensor) and got.dtype == torch.bool and got.shape == (1,):
                hint = f"expected {want}: {why}."
            raise AssertionError(f"weight {w}, lr {lr}, grad {g}: {hint}")


@pytest.mark.points(2)
def test_returns_a_bool_tensor_of_the_weight_shape(submission):
    """A (5, 7) weight gives a (5, 7) bool tensor."""
    fn = submission.function(NAME)
    g = torch.Generator().manual_seed(1)
    w = torch.randn(5, 7, generator=g).to(F16)
    grad = (torch.randn(5, 7, generator=g) * 10.0 ** torch.randint(-6, 1, (5, 7), generator=g)).to(F16)
    got = kit.call(fn, w, 1e-2, grad, context=f"{NAME} on a (5, 7) weight")
    kit.expect_tensor(got, f"{NAME}'s result", shape=(5, 7), dtype=torch.bool,
                      hint="return a comparison (bool), one entry per weight.")
    kit.fail_if(bugs.name_survival_bug(got, w, 1e-2, grad), "a (5, 7) weight")


@pytest.mark.points(3)
def test_subnormals(submission):
    """Weights and updates in float16's subnormal range (below 6.1e-5), and weights of exactly 0."""
    fn = submission.function(NAME)
    weights = [0.0, 2 ** -24, 2 ** -23, 7 * 2 ** -24, 2 ** -15 + 2 ** -24, 2 ** -14 - 2 ** -24, 2 ** -14,
               3 * 2 ** -14]
    for w, lr, g in _around(weights, (0.0, 0.25, 0.5, 0.75, 1.0, 2.0, 3.0), (1.0, 0.25, 2.0 ** -12)):
        _check(fn, w, lr, g, f"subnormal weights (lr={lr})")
    tiny = torch.tensor([2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -26, 5e-8, 1e-8], dtype=torch.float64)
    for lr in (1.0, 1e-3):
        w = torch.zeros(len(tiny), dtype=F16)
        _check(fn, w, lr, (tiny / lr).to(F16), f"weights of 0 with updates around 2^-25 (lr={lr})")


@pytest.mark.points(3)
def test_exact_halfway_cases(submission):
    """Updates of exactly half the gap (ties), on odd and even mantissas: round half to even."""
    fn = submission.function(NAME)
    weights = [1.0 + k * 2 ** -10 for k in range(1, 9)] + [3.0 + 2 ** -9, 100.0 + 1 / 16, 4097 * 2 ** -12,
                                                           1000.5, 20001.0]
    for w, lr, g in _around(weights, (0.5,), (1.0, 2.0 ** -5)):
        _check(fn, w, lr, g, f"updates of exactly half the gap (lr={lr})")
    for w, lr, g in _around(weights, (0.5 - 2 ** -11, 0.5 + 2 ** -10), (1.0,)):
        _check(fn, w, lr, g, "updates just below and just above half the gap")


@pytest.mark.points(2)
def test_powers_of_two(submission):
    """At 2^k the gap below is half the gap above: moving down needs half as much."""
    fn = submission.function(NAME)
    weights = [2.0 ** k for k in range(-14, 16, 3)]
    for w, lr, g in _around(weights, (0.25, 0.26, 0.5, 0.51, 0.75), (1.0,)):
        _check(fn, w, lr, g, "weights that are powers of two")


@pytest.mark.points(2)
def test_negative_weights(submission):
    """The same grids mirrored: negative weights, updates pushing either way."""
    fn = submission.function(NAME)
    weights = [-2.0 ** k for k in range(-13, 15, 4)] + [-0.3, -1.0 - 2 ** -10, -7.0, -2 ** -24, -3 * 2 ** -24,
                                                        -(2 ** -14) + 2 ** -24, -12345.0]
    for w, lr, g in _around(weights, (0.0, 0.25, 0.5, 0.5 + 2 ** -9, 1.0, 1.5), (1.0, 2.0 ** -8)):
        _check(fn, w, lr, g, f"negative weights (lr={lr})")


@pytest.mark.points(3)
def test_grids_against_float16_arithmetic(submission):
    """Log-spaced weights and gradients with typical learning rates, and random float16 bit patterns."""
    fn = submission.function(NAME)
    for lr in (1e-3, 1e-4, 3e-2):
        w = torch.logspace(-7.8, 4.7, 70, dtype=torch.float64)
        g = torch.logspace(-8, 3, 50, dtype=torch.float64)
        w = torch.cat([w, -w, torch.zeros(1, dtype=torch.float64)]).to(F16)
        g = torch.cat([g, -g]).to(F16)
        ww, gg = torch.meshgrid(w, g, indexing="ij")
        _check(fn, ww.flatten(), lr, gg.flatten(), f"a log-spaced grid (lr={lr})")
    gen = torch.Generator().manual_seed(2)
    bits = torch.randint(-2 ** 15, 2 ** 15, (2, 20000), generator=gen, dtype=torch.int32).to(torch.int16)
    w, g = bits[0].view(F16), bits[1].view(F16)
    g = torch.where(torch.isfinite(g) & (g.abs() < 1e3), g, torch.zeros_like(g))
    for lr in (1.0, 1e-3):
        _check(fn, w, lr, g, f"random float16 weights and gradients (lr={lr})")
