"""genlab.precision: format facts, mask fill, rounding helpers and the reference loss scaling.

Oracles: NumPy's own float16/float32/float64 (finfo, bit views, spacing), the IEEE 754
constants, real float16 arithmetic, torch.amp.GradScaler and torch.nn.utils.clip_grad_norm_.
"""
from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import torch

from genlab import precision as P
from genlab.checks import lab00_bugs as bugs

NUMPY = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


@pytest.mark.parametrize("dtype", list(NUMPY))
def test_format_facts_match_numpy(dtype):
    fmt, ref = P.float_format(dtype), np.finfo(NUMPY[dtype])
    assert (fmt.bits, fmt.exponent_bits, fmt.mantissa_bits) == (ref.bits, ref.nexp, ref.nmant)
    assert fmt.eps == float(ref.eps) and fmt.max == float(ref.max)
    assert fmt.smallest_normal == float(ref.smallest_normal)
    assert fmt.smallest_subnormal == float(ref.smallest_subnormal)
    assert fmt.bias == 2 ** (ref.nexp - 1) - 1


def test_the_course_numbers():
    f16, bf16 = P.float_format(torch.float16), P.float_format(torch.bfloat16)
    assert f16.eps == 2 ** -10 and f16.max == 65504 and f16.smallest_subnormal == 2 ** -24
    assert math.isclose(f16.smallest_subnormal, 5.96e-8, rel_tol=1e-3) and f16.underflow_below == 2 ** -25
    assert (bf16.exponent_bits, bf16.mantissa_bits, bf16.bias) == (8, 7, 127)
    assert bf16.smallest_normal == P.float_format(torch.float32).smallest_normal
    assert P.FORMAT_NAMES[torch.float16].startswith("half") and P.FORMAT_NAMES[torch.float64].startswith("double")


def test_format_of_a_non_float_dtype_is_refused():
    with pytest.raises(TypeError, match="floating-point"):
        P.float_format(torch.int32)


def test_mask_fill_value_fits_every_float_dtype():
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        fill = P.mask_fill_value(dtype)
        assert fill == torch.finfo(dtype).min
        scores = torch.tensor([3.0, -2.0, 1.0], dtype=dtype)
        masked = scores.masked_fill(torch.tensor([True, False, True]), fill)
        weights = torch.softmax(masked, -1)
        assert torch.isfinite(weights).all() and weights[0] == 0 and weights[2] == 0
        assert torch.isfinite(torch.softmax(torch.full((3,), fill, dtype=dtype), -1)).all()
    with pytest.raises(RuntimeError, match="overflow"):
        torch.zeros(2, dtype=torch.float16).masked_fill(torch.tensor([True, False]), -1e9)
    with pytest.raises(TypeError, match="scores.dtype"):
        P.mask_fill_value(torch.bool)


@pytest.mark.parametrize("value", [1.0, -2.5, 0.1, 65504.0, 2 ** -24, 1e-8, 0.0, -0.0, 3.14159, 1e5])
def test_bit_fields_match_numpy_and_struct(value):
    for dtype, fmt_char in ((torch.float16, "e"), (torch.float32, "f"), (torch.float64, "d")):
        fmt = P.float_format(dtype)
        try:
            raw = struct.pack(">" + fmt_char, value)
        except OverflowError:  # 1e5 does not fit in float16: numpy rounds it to inf
            with np.errstate(over="ignore"):
                raw = np.array([value], dtype=NUMPY[dtype]).astype(">" + fmt_char).tobytes()
        want = "".join(format(b, "08b") for b in raw)
        sign, exponent, mantissa = P.bit_fields(value, dtype)
        assert (len(sign), len(exponent), len(mantissa)) == (1, fmt.exponent_bits, fmt.mantissa_bits)
        assert sign + exponent + mantissa == want, (value, dtype)
    # bfloat16 is the top half of float32 (after rounding to nearest even)
    top = np.array([value], dtype=np.float32).view(np.uint32)[0]
    rounded = (int(top) + 0x7FFF + ((int(top) >> 16) & 1)) >> 16
    if not math.isinf(P.stored_value(value, torch.bfloat16)):
        assert "".join(P.bit_fields(value, torch.bfloat16)) == format(rounded & 0xFFFF, "016b")


def test_stored_value_rounds_to_nearest_even():
    assert P.stored_value(0.1, torch.float16) == float(np.float16(0.1)) == 0.0999755859375
    assert P.stored_value(1 + 2 ** -11, torch.float16) == 1.0          # a tie: 1.0 is even
    assert P.stored_value(1 + 3 * 2 ** -11, torch.float16) == 1 + 2 ** -9  # a tie: rounds up to the even one
    assert P.stored_value(1e-8, torch.float16) == 0.0
    assert P.stored_value(1e-8, torch.bfloat16) != 0.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_spacing_matches_numpy(dtype):
    values = np.array([1.0, -1.0, 0.0, 0.5, 3.0, 1000.0, 2 ** -24, 2 ** -14, 6e-5, -7.5, 60000.0], dtype=NUMPY[dtype])
    got = P.spacing(values.astype(np.float64), dtype)
    want = np.spacing(np.abs(values)).astype(np.float64)  # numpy: toward +inf; ours: away from zero
    np.testing.assert_array_equal(got.numpy(), want)
    assert float(P.spacing([65504.0], torch.float16)[0]) == 32.0  # the top binade's gap


def test_explain_update_tells_the_two_failures_apart():
    assert "rounds to 0" in P.explain_update(1.0, 1e-3 * 1e-5, torch.float16)
    lost = P.explain_update(1.0, 1e-4, torch.float16)
    assert ": lost (" in lost and "0.000488" in lost and "0.000977" in lost
    assert ": kept" in P.explain_update(1.0, 1e-4, torch.float32)
    assert ": kept" in P.explain_update(1e-3, 1e-6, torch.float16)


# ---------------------------------------------------------------- graded parts, reference versions

def _grid():
    g = torch.Generator().manual_seed(0)
    bits = torch.randint(-2 ** 15, 2 ** 15, (2, 100_000), generator=g, dtype=torch.int32).to(torch.int16)
    w, grad = bits[0].view(torch.float16), bits[1].view(torch.float16)
    ok = torch.isfinite(w) & torch.isfinite(grad) & (grad.abs() < 1e3)
    return w[ok], grad[ok]


@pytest.mark.parametrize("lr", [1.0, 0.5, 1e-3, 3e-4, 2.0 ** -12])
def test_fp16_update_survives_agrees_with_float16_arithmetic(lr):
    w, grad = _grid()
    truth = (w - lr * grad) != w
    finite = torch.isfinite(w - lr * grad)
    got = P.fp16_update_survives(w, lr, grad)
    assert got.dtype == torch.bool and got.shape == w.shape
    assert torch.equal(got[finite], truth[finite])


def test_fp16_update_survives_on_ties_and_course_numbers():
    f16 = torch.float16
    w = torch.tensor([1.0, 1.0, 1 + 2 ** -10, 1 + 2 ** -10, 1.0, 0.0, 0.0, -2.0], dtype=f16)
    u = torch.tensor([-2 ** -11, 2 ** -12, -2 ** -11, 2 ** -11, 1e-4, 2 ** -25, 2 ** -24, -2 ** -10], dtype=torch.float64)
    # 1 + half a gap -> 1 (even); 1 - half the lower gap -> 1; odd mantissa + half gap -> rounds to even
    got = P.fp16_update_survives(w, 1.0, u.to(f16))
    assert got.tolist() == ((w - u.to(f16)) != w).tolist() == [False, False, True, True, False, False, True, True]
    assert not P.fp16_update_survives(torch.ones(1, dtype=f16), 1e-3, torch.full((1,), 1e-5, dtype=f16))


def test_scaled_backward_scales_gradients_exactly():
    w = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), requires_grad=True)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(2))
    (x @ w).tanh().sum().backward()
    plain = w.grad.clone()
    w.grad = None
    P.scaled_backward((x @ w).tanh().sum(), 2.0 ** 16)
    assert torch.equal(w.grad, plain * 2.0 ** 16)
    with pytest.raises(ValueError, match="scalar"):
        P.scaled_backward((x @ w).tanh(), 2.0)


def test_scaled_backward_saves_float16_gradients_from_underflow():
    w = torch.full((8, 1), 0.5, dtype=torch.float16, requires_grad=True)
    x = torch.rand(64, 8, generator=torch.Generator().manual_seed(3)).half()
    loss = (x @ w).float().mean() * 1e-7  # gradients about 6e-8: float16's smallest subnormal
    loss.backward(retain_graph=True)
    assert (w.grad == 0).float().mean() > 0.5
    w.grad = None
    P.scaled_backward(loss, 2.0 ** 16)
    assert (w.grad != 0).all()


def test_unscale_and_check_against_gradscaler():
    g = torch.Generator().manual_seed(4)
    for poison in (None, math.inf, math.nan, -math.inf):
        grads = [torch.randn(3, 4, generator=g) * 2 ** 12, torch.randn(5, generator=g) * 2 ** 12]
        if poison is not None:
            grads[1][2] = poison
        params = [torch.nn.Parameter(torch.zeros_like(t)) for t in grads]
        for p, t in zip(params, grads, strict=False):
            p.grad = t.clone()
        opt = torch.optim.SGD(params, lr=0.0)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12)
        scaler.scale(torch.ones(()))
        scaler.unscale_(opt)
        want_inf = bool(sum(v.item() for v in scaler._per_optimizer_states[id(opt)]["found_inf_per_device"].values()))
        got, found_inf = P.unscale_and_check(grads, 2.0 ** 12)
        assert found_inf is want_inf is (poison is not None)
        if not found_inf:
            assert all(torch.equal(a, p.grad) for a, p in zip(got, params, strict=False))


def test_unscale_and_check_float16_none_and_clipping():
    g16 = [(torch.randn(6, generator=torch.Generator().manual_seed(5)) * 1e-6 * 2 ** 16).half(), None]
    got, found = P.unscale_and_check(g16, 2.0 ** 16)
    assert got[1] is None and found is False and got[0].dtype == torch.float32
    assert torch.equal(got[0], g16[0].float() / 2 ** 16)
    grads = [torch.randn(4, 4) * 64, torch.randn(3) * 64]
    clipped, _ = P.unscale_and_check(grads, 64.0, max_norm=0.5)
    params = [torch.nn.Parameter(torch.zeros_like(t)) for t in grads]
    for p, t in zip(params, grads, strict=False):
        p.grad = t / 64.0
    torch.nn.utils.clip_grad_norm_(params, 0.5)
    for a, p in zip(clipped, params, strict=False):
        torch.testing.assert_close(a, p.grad, atol=1e-7, rtol=1e-6)
    assert torch.equal(grads[0], grads[0].clone())  # inputs untouched (new tensors returned)


def test_dynamic_scale_update_matches_gradscaler_on_a_recorded_sequence():
    g = torch.Generator().manual_seed(6)
    seq = (torch.rand(2600, generator=g) < 0.002).tolist()
    seq[50:2100] = [False] * 2050
    want = bugs.gradscaler_history(seq)
    scale, tracker, got = 2.0 ** 16, 0, []
    for bad in seq:
        scale, tracker = P.dynamic_scale_update(scale, bad, tracker)
        got.append((scale, tracker))
    assert got == want
    assert any(s == 2.0 ** 17 for s, _ in got)  # it grew at least once
    short = [False, False, True, False, False, False, False, False, False, True, True]
    for rule in (dict(growth_interval=2), dict(growth_interval=3, growth_factor=4.0, backoff_factor=0.25)):
        scale, tracker, got = 2.0 ** 16, 0, []
        for bad in short:
            scale, tracker = P.dynamic_scale_update(scale, bad, tracker, **rule)
            got.append((scale, tracker))
        assert got == bugs.gradscaler_history(short, **rule)
    assert P.dynamic_scale_update(2.0 ** 127, False, 0, growth_interval=1) == (2.0 ** 127, 0)


def test_mixed_precision_run_shows_the_stall_and_the_recovery():
    torch.set_num_threads(1)
    runs = {name: P.mixed_precision_run(dtype, 40, loss_scaling=scaling, init_scale=2.0 ** 40, growth_interval=10)
            for name, dtype, scaling in (("fp32", torch.float32, False), ("fp16", torch.float16, False),
                                         ("scaled", torch.float16, True))}
    assert len(runs["fp32"].losses) == 40 and not runs["fp32"].scales
    assert runs["fp16"].zero_grads[0] > 0.8           # float16 loses almost every gradient
    assert runs["scaled"].zero_grads[-1] < 0.4
    assert runs["scaled"].skipped and runs["scaled"].skipped[0] == 0  # 2^40 overflows at once
    assert runs["scaled"].scales[-1] < 2.0 ** 40
    fp32_drop = runs["fp32"].losses[0] - min(runs["fp32"].losses[-5:])
    assert fp32_drop > 0.5
    assert runs["fp16"].losses[0] - min(runs["fp16"].losses[-5:]) < 0.3 * fp32_drop
    assert runs["scaled"].losses[0] - min(runs["scaled"].losses[-5:]) > 0.7 * fp32_drop


def test_figures_have_labels_and_titles():
    from genlab.plots import precision as figures

    run = P.PrecisionRun("float16 + loss scaling", losses=[2.3, 1.0, 0.5], scales=[8.0, 4.0, 4.0], skipped=[0],
                         zero_grads=[0.9, 0.2, 0.1], val_accuracy=0.9)
    built = [figures.bit_layout([1.0, 1e-8]), figures.spacing_figure(), figures.number_line(),
             figures.bias_correction_figure(steps=50), figures.survival_map(P.fp16_update_survives, n=24),
             figures.precision_runs([run, P.PrecisionRun("float32", losses=[2.3, 1.1, 0.4], zero_grads=[0.1] * 3)])]
    for fig in built:
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_title(), (fig, ax)
    # the number line counts exactly the float16 numbers in [0.985, 1.025]
    line = built[2].axes[0]
    text = [t.get_text() for t in line.texts if "float16" in t.get_text()][0]
    below, above = (1.0 - 0.985) / 2 ** -11, (1.025 - 1.0) / 2 ** -10
    assert f"{int(below) + int(above) + 1} numbers" in text
