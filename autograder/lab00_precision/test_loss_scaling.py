"""Part 3: scaled_backward(loss, scale) and unscale_and_check(grads, scale, max_norm=None).

Oracles: float64 backpropagation, torch.amp.GradScaler's own unscale_ and its training loop,
and torch.nn.utils.clip_grad_norm_.
"""
import math

import pytest
import torch

from autograder import kit
from genlab.checks import lab00_bugs as bugs

UNSCALE = "unscale_and_check"


def _net(seed, n=24):
    g = torch.Generator().manual_seed(500 + seed)
    w1 = torch.randn(6, 10, generator=g) * 0.6
    w2 = torch.randn(10, 4, generator=g) * 0.6
    x = torch.randn(n, 6, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)
    return w1, w2, x, y


def _plain(w1, w2, x, y, loss_weight=1.0):
    """The float64 gradients of the unscaled loss (what the probe's network computes)."""
    p1, p2 = (w.double().requires_grad_(True) for w in (w1, w2))
    loss = torch.nn.functional.cross_entropy((torch.tanh(x.double() @ p1) @ p2), y) * loss_weight
    loss.backward()
    return [p1.grad, p2.grad]


def _probe_backward(submission, net, **kwargs):
    w1, w2, x, y = net
    data = submission.probe("lab00_scaled_backward", w1=w1, w2=w2, x=x, y=y, **kwargs)
    if data.get("error"):
        raise AssertionError(f"scaled_backward raised {data['error']}")
    return data


@pytest.mark.points(3)
def test_scaled_backward_multiplies_every_gradient(submission):
    """float32: the gradients are exactly scale × the gradients of the loss, for several scales."""
    for seed, scale in ((0, 2.0 ** 8), (1, 2.0 ** 16), (2, 2.0 ** 24), (3, 1000.0)):
        net = _net(seed)
        data = _probe_backward(submission, net, dtype="float32", scale=scale)
        kit.fail_if(bugs.name_scaled_backward_bug(data["grads"], _plain(*net), scale), f"scale {scale:g}")


@pytest.mark.points(2)
def test_scaled_backward_rescues_float16_gradients(submission):
    """A float16 network whose gradients (about 1e-8) underflow without scaling: with 2^16 they survive."""
    net = _net(4)
    plain = _plain(*net, loss_weight=1e-6)
    data = _probe_backward(submission, net, dtype="float16", scale=2.0 ** 16, loss_weight=1e-6)
    grads = data["grads"]
    if any(g is None for g in grads):
        raise AssertionError("a float16 parameter has no gradient after scaled_backward: call backward on the "
                             "scaled loss.")
    zero = sum(int((g == 0).sum()) for g in grads) / sum(g.numel() for g in grads)
    if zero > 0.05:
        raise AssertionError(f"{zero:.0%} of the float16 gradients are still 0: with scale 2^16 they should be "
                             "lifted out of the underflow range. Multiply the loss by the scale before backward.")
    for g, p in zip(grads, plain, strict=False):
        want = p * 2.0 ** 16
        if not kit.close(g, want, atol=2e-2 * float(want.abs().max()), rtol=2e-2):
            raise AssertionError("the float16 gradients are not scale × the true gradients (within float16 "
                                 "rounding): call (loss * scale).backward() once.")


def _fp16_grads(seed, scale):
    g = torch.Generator().manual_seed(600 + seed)
    true = [torch.randn(8, 5, generator=g) * 1e-7, torch.randn(13, generator=g) * 2e-5,
            torch.randn(3, 3, generator=g) * 3e-3, torch.randn(6, generator=g) * 1e-3]
    grads = [(t * scale).to(torch.float16) for t in true]
    assert all(bool(torch.isfinite(t).all()) for t in grads)  # clean steps: the values are what counts
    return grads


@pytest.mark.points(3)
def test_unscales_exactly_in_float32(submission):
    """float16 gradients scaled by a power of two: the result is exactly g.float() / scale, in float32."""
    fn = submission.function(UNSCALE)
    for seed, scale in ((0, 2.0 ** 16), (1, 2.0 ** 10), (2, 2.0 ** 20)):
        grads = _fp16_grads(seed, scale)
        result = kit.call(fn, [g.clone() for g in grads], scale, context=f"{UNSCALE}(float16 grads, {scale:g})")
        kit.fail_if(bugs.name_unscale_bug(result, grads, scale), f"float16 gradients with scale {scale:g}")
        unscaled, _ = result
        for u, g in zip(unscaled, grads, strict=False):
            if not torch.equal(u, g.float() / scale):
                raise AssertionError("the unscaled gradients must equal g.float() / scale exactly (a power-of-two "
                                     "scale divides without rounding in float32).")


@pytest.mark.points(2)
def test_unscale_matches_gradscaler(submission):
    """float32 gradients: the same values and the same found_inf as torch.amp.GradScaler.unscale_."""
    fn = submission.function(UNSCALE)
    g = torch.Generator().manual_seed(7)
    for case in range(3):
        scale = 2.0 ** (12 + 4 * case)
        grads = [torch.randn(4, 4, generator=g) * scale * 10.0 ** -case, torch.randn(9, generator=g) * scale]
        if case == 2:
            grads[1][4] = math.inf
        params = [torch.nn.Parameter(torch.zeros_like(t)) for t in grads]
        for p, t in zip(params, grads, strict=False):
            p.grad = t.clone()
        opt = torch.optim.SGD(params, lr=0.0)
        scaler = torch.amp.GradScaler("cpu", init_scale=scale)
        scaler.scale(torch.ones(()))
        scaler.unscale_(opt)
        want_inf = bool(sum(v.item() for v in scaler._per_optimizer_states[id(opt)]["found_inf_per_device"].values()))
        result = kit.call(fn, [t.clone() for t in grads], scale, context=f"{UNSCALE}(float32 grads, {scale:g})")
        kit.fail_if(bugs.name_unscale_bug(result, grads, scale), f"float32 gradients with scale {scale:g}")
        unscaled, found_inf = result
        if found_inf != want_inf:
            raise AssertionError(f"found_inf is {found_inf} where torch.amp.GradScaler finds {want_inf}.")
        if not want_inf and not all(torch.equal(u, p.grad) for u, p in zip(unscaled, params, strict=False)):
            raise AssertionError("the unscaled gradients differ from torch.amp.GradScaler.unscale_'s.")


@pytest.mark.points(3)
def test_found_inf_skips_exactly_the_bad_steps(submission):
    """Twelve steps' gradients, some with inf, -inf or NaN anywhere, some huge but finite: found_inf is exact."""
    fn = submission.function(UNSCALE)
    g = torch.Generator().manual_seed(8)
    plan = [None, (0, math.inf), None, (2, math.nan), (1, -math.inf), "huge", None, (2, math.inf),
            (0, math.nan), "huge", (1, math.nan), None]
    for step, poison in enumerate(plan, start=1):
        grads = [(torch.randn(5, 3, generator=g) * 100).half(), torch.randn(7, generator=g) * 1e3,
                 (torch.randn(4, generator=g)).half()]
        if poison == "huge":
            grads[0][1, 1] = 65504.0  # the largest float16: finite
            grads[1][0] = 3e38        # near the largest float32: finite
        elif poison is not None:
            where, value = poison
            grads[where].view(-1)[int(torch.randint(0, grads[where].numel(), (), generator=g))] = value
        result = kit.call(fn, [t.clone() for t in grads], 2.0 ** 14, context=f"{UNSCALE} at step {step}")
        kit.fail_if(bugs.name_unscale_bug(result, grads, 2.0 ** 14), f"step {step} of 12")


@pytest.mark.points(2)
def test_clips_after_unscaling(submission):
    """max_norm: the unscaled gradients clipped together, as torch.nn.utils.clip_grad_norm_ does."""
    fn = submission.function(UNSCALE)
    g = torch.Generator().manual_seed(9)
    scale = 2.0 ** 12
    for max_norm in (0.5, 3.0, 1e9):
        true = [torch.randn(6, 6, generator=g), torch.randn(10, generator=g) * 0.3]
        grads = [(t * scale).half() for t in true]
        want = [t.float() / scale for t in grads]
        params = [torch.nn.Parameter(torch.zeros_like(w)) for w in want]
        for p, w in zip(params, want, strict=False):
            p.grad = w.clone()
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        result = kit.call(fn, [t.clone() for t in grads], scale, max_norm=max_norm,
                          context=f"{UNSCALE}(..., max_norm={max_norm:g})")
        kit.fail_if(bugs.name_unscale_bug(result, grads, scale, max_norm), f"max_norm={max_norm:g}")
        unscaled, _ = result
        for u, p in zip(unscaled, params, strict=False):
            kit.expect_close(u, p.grad, f"the clipped gradients (max_norm={max_norm:g})", atol=1e-7, rtol=1e-5,
                             hint="unscale first, then multiply every gradient by min(1, max_norm / (total norm + "
                                  "1e-6)), the total norm taken over all gradients together.")


@pytest.mark.points(1)
def test_none_gradients_stay_none(submission):
    """A parameter without a gradient (None) stays None; the others are unscaled."""
    fn = submission.function(UNSCALE)
    grads = [torch.full((3,), 8.0).half(), None, torch.full((2,), 4.0)]
    result = kit.call(fn, list(grads), 4.0, context=f"{UNSCALE} with a None entry")
    kit.fail_if(bugs.name_unscale_bug(result, grads, 4.0), "a gradient list with None in it")
    result = kit.call(fn, list(grads), 4.0, max_norm=1.0, context=f"{UNSCALE} with a None entry and max_norm")
    kit.fail_if(bugs.name_unscale_bug(result, grads, 4.0, 1.0), "a gradient list with None in it, max_norm=1")


def _training_inputs(steps, seed=11):
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(8, 16, generator=g) * 0.5
    w2 = torch.randn(16, 5, generator=g) * 0.5
    x = torch.randn(steps, 32, 8, generator=g)
    y = torch.randint(0, 5, (steps, 32), generator=g)
    return w1, w2, x, y


def _gradscaler_training(device, w1, w2, x, y, steps, init_scale, growth_interval, lr=0.1):
    """The probe's loop with torch.amp.GradScaler in place of the student's functions."""
    params = [w.detach().to(device).clone().requires_grad_(True) for w in (w1, w2)]
    x, y = x.to(device), y.to(device)
    opt = torch.optim.SGD(params, lr=lr)
    scaler = torch.amp.GradScaler(device, init_scale=init_scale, growth_interval=growth_interval)
    scales, losses = [], []
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.float16):
            logits = torch.tanh(x[step] @ params[0]) @ params[1]
        loss = torch.nn.functional.cross_entropy(logits.float(), y[step])
        scales.append(float(scaler.get_scale()))
        losses.append(float(loss.detach()))
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        scaler.step(opt)
        scaler.update()
    return scales, losses, [p.detach().float().cpu() for p in params]


def _compare_training(submission, device):
    steps, init_scale, interval = 40, 2.0 ** 30, 4
    w1, w2, x, y = _training_inputs(steps)
    data = submission.probe("lab00_train", device=device, w1=w1, w2=w2, x=x, y=y, steps=steps,
                            init_scale=init_scale, growth_interval=interval)
    if data.get("error"):
        where = f" at step {data['step'] + 1}" if data.get("step") is not None else ""
        raise AssertionError(f"training with your scaled_backward, unscale_and_check and dynamic_scale_update "
                             f"raised{where}: {data['error']}")
    scales, losses, params = _gradscaler_training(device, w1, w2, x, y, steps, init_scale, interval)
    if data["scales"] != scales:
        first = next(i for i, (a, b) in enumerate(zip(data["scales"], scales, strict=False)) if a != b)
        raise AssertionError(f"float16 autocast training on {device}: the loss scale differs from "
                             f"torch.amp.GradScaler's from step {first + 1} on (a step with inf/NaN must be skipped "
                             "and back off the scale; growth needs growth_interval clean steps).")
    for got, want in zip(data["params"], params, strict=False):
        kit.expect_close(got, want, f"the weights after {steps} steps on {device}", atol=1e-5, rtol=1e-4,
                         hint="the skipped steps or the unscaled gradients differ from torch.amp.GradScaler's.")


@pytest.mark.points(2)
def test_training_matches_gradscaler_cpu(submission):
    """40 steps of float16 autocast training (CPU) with your three functions = the same loop with GradScaler."""
    _compare_training(submission, "cpu")


@pytest.mark.gpu
@pytest.mark.points(2)
def test_training_matches_gradscaler_cuda(submission):
    """The same loop in real CUDA float16 autocast: same scales, same weights as torch.amp.GradScaler."""
    _compare_training(submission, "cuda")
