"""Part 1: adam_step(param, grad, state, lr, betas, eps, weight_decay, decoupled) against torch.optim.Adam / AdamW."""
import pytest
import torch

from autograder import kit
from genlab.checks import lab00 as checks
from genlab.checks import lab00_bugs as bugs

NAME = "adam_step"


def _call(what, fn, *args, **kwargs):
    return kit.call(fn, *args, context=what, **kwargs)


def _inputs(seed, shape=(4, 6), steps=100, dtype=torch.float32, zero_steps=(3, 40)):
    """A parameter and gradients whose sizes vary from 1e-6 to 3 (so ε matters), with all-zero steps."""
    g = torch.Generator().manual_seed(1000 + seed)
    param0 = (torch.randn(shape, generator=g, dtype=torch.float64) * 2).to(dtype)
    grads = []
    for t in range(steps):
        size = 10.0 ** float(torch.empty(()).uniform_(-6, 0.5, generator=g))
        grad = torch.randn(shape, generator=g, dtype=torch.float64) * size
        if t in zero_steps:
            grad.zero_()
        grad.view(-1)[0] = 0.0  # one weight never has a gradient
        grads.append(grad.to(dtype))
    return param0, grads


def _compare(fn, seed, dtype, atol, steps=100, pass_defaults=False, **hyper):
    param0, grads = _inputs(seed, steps=steps, dtype=dtype)
    want, torch_state = bugs.torch_adam_trajectory(param0, grads, **hyper)
    got, state = checks.adam_run(fn, param0, grads, call=_call, **({} if pass_defaults else hyper))
    name = "AdamW" if hyper.get("decoupled") else "Adam"
    where = f"{steps} steps of {name} in {dtype} with {hyper or 'the default hyperparameters'}"
    for t, (p, w) in enumerate(zip(got, want, strict=False), start=1):
        kit.expect_tensor(p, f"the parameter after step {t}", shape=tuple(param0.shape), dtype=dtype)
        if not kit.close(p, w, atol):
            hint = bugs.name_adam_bug(got, param0, grads, atol, **hyper)
            raise AssertionError(f"{where}: the parameter differs from torch.optim.{name} from step {t} on. "
                                 + (hint or ""))
    return state, torch_state, param0


@pytest.mark.points(3)
def test_first_step_bias_correction(submission):
    """The first step from state {}: the tuple, the state's keys, t == 1, and a step of about lr per weight."""
    fn = submission.function(NAME)
    param0 = torch.tensor([[0.3, -2.0, 1e-3], [5.0, 0.0, -0.7]])
    grad = torch.tensor([[2e-6, -3.0, 0.0], [1e-2, 7.0, -4e-4]])
    try:
        result = kit.call(fn, param0.clone(), grad.clone(), {}, lr=0.01, context="adam_step with state = {}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}{checks.FIRST_STEP_HINT if 'KeyError' in str(exc) else ''}") from None
    new, state = kit.expect_tuple(result, 2, NAME, ("new_param", "state"))
    kit.expect_tensor(new, "the new parameter", shape=(2, 3), dtype=torch.float32)
    want, torch_state = bugs.torch_adam_trajectory(param0, [grad], lr=0.01)
    if not kit.close(new, want[0], 1e-6):
        raise AssertionError("the first step differs from torch.optim.Adam: "
                             + (bugs.name_adam_bug([new], param0, [grad], 1e-6, lr=0.01) or ""))
    kit.fail_if(bugs.name_adam_state_bug(state, 1, torch_state, param0, 1e-6), "after the first step")


@pytest.mark.points(3)
def test_defaults_match_torch_adam(submission):
    """Called without hyperparameters: torch.optim.Adam's defaults (lr 1e-3, betas (0.9, 0.999), eps 1e-8)."""
    _compare(submission.function(NAME), 0, torch.float32, 1e-5, pass_defaults=True)


@pytest.mark.points(3)
def test_matches_torch_adam(submission):
    """100 steps of coupled Adam for three hyperparameter sets (weight decay included)."""
    fn = submission.function(NAME)
    for seed, hyper in enumerate([dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6),
                                  dict(lr=3e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.2),
                                  dict(lr=1e-3, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.01, decoupled=False)],
                                 start=1):
        _compare(fn, seed, torch.float32, 1e-5, **hyper)


@pytest.mark.points(3)
def test_matches_torch_adamw(submission):
    """100 steps of AdamW (decoupled weight decay) for two hyperparameter sets."""
    fn = submission.function(NAME)
    for seed, hyper in enumerate([dict(lr=3e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, decoupled=True),
                                  dict(lr=2e-2, betas=(0.85, 0.98), eps=1e-7, weight_decay=0.5, decoupled=True)],
                                 start=4):
        _compare(fn, seed, torch.float32, 1e-5, **hyper)


@pytest.mark.points(2)
def test_float64_to_the_last_digits(submission):
    """float64 parameters: m and v in float64 too, and agreement with torch to 1e-11."""
    fn = submission.function(NAME)
    for seed, hyper in ((6, dict(lr=5e-3, weight_decay=0.05)), (7, dict(lr=5e-3, weight_decay=0.05, decoupled=True))):
        state, torch_state, param0 = _compare(fn, seed, torch.float64, 1e-11, steps=60, **hyper)
        kit.fail_if(bugs.name_adam_state_bug(state, 60, torch_state, param0, 1e-11), "after 60 float64 steps")


@pytest.mark.points(2)
def test_zero_gradients(submission):
    """Gradients that are all zero: no move without decay; AdamW still shrinks the weights by (1 - lr·λ) per step."""
    fn = submission.function(NAME)
    param0 = torch.linspace(-2, 2, 9)
    zeros = [torch.zeros(9) for _ in range(20)]
    for hyper in (dict(), dict(weight_decay=0.1, decoupled=True), dict(weight_decay=0.1)):
        got, _ = checks.adam_run(fn, param0, zeros, call=_call, **hyper)
        want, _ = bugs.torch_adam_trajectory(param0, zeros, **hyper)
        for t, (p, w) in enumerate(zip(got, want, strict=False), start=1):
            kit.expect_finite(p, f"the parameter after {t} zero gradients",
                              hint="with g = 0, m̂ = v̂ = 0 and the step is 0 / (0 + ε) = 0: keep ε outside the "
                                   "square root and start counting steps at t = 1.")
            if not kit.close(p, w, 1e-6):
                raise AssertionError(f"with all-zero gradients and {hyper or 'no weight decay'} the parameter "
                                     "should follow torch.optim.Adam/AdamW: "
                                     + (bugs.name_adam_bug(got, param0, zeros, 1e-6, **hyper)
                                        or "without decay it must not move at all."))


@pytest.mark.points(2)
def test_state_holds_t_and_the_moments(submission):
    """After 100 steps: state['t'] == 100 (an int) and m, v equal torch's exp_avg, exp_avg_sq."""
    state, torch_state, param0 = _compare(submission.function(NAME), 8, torch.float32, 1e-5, lr=2e-3)
    kit.fail_if(bugs.name_adam_state_bug(state, 100, torch_state, param0, 1e-5), "after 100 steps")


@pytest.mark.points(2)
def test_no_hidden_state_between_parameters(submission):
    """Two parameters stepped in turn, each with its own state, follow torch exactly as if run alone."""
    fn = submission.function(NAME)
    (pa, ga), (pb, gb) = _inputs(9, steps=40), _inputs(10, shape=(3,), steps=40)
    want_a, _ = bugs.torch_adam_trajectory(pa, ga, lr=1e-2)
    want_b, _ = bugs.torch_adam_trajectory(pb, gb, lr=1e-2)
    sa, sb = {}, {}
    for t in range(40):
        result = kit.call(fn, pa, ga[t], sa, lr=1e-2, context=f"adam_step at step {t + 1} (parameter A)")
        pa, sa = kit.expect_tuple(result, 2, NAME, ("new_param", "state"))
        result = kit.call(fn, pb, gb[t], sb, lr=1e-2, context=f"adam_step at step {t + 1} (parameter B)")
        pb, sb = kit.expect_tuple(result, 2, NAME, ("new_param", "state"))
        if not (kit.close(pa, want_a[t], 1e-5) and kit.close(pb, want_b[t], 1e-5)):
            raise AssertionError(f"two parameters updated in turn go wrong at step {t + 1}: everything a step "
                                 "needs must come from its `state` argument and go back in the returned state "
                                 "(no global variables, no counters kept between calls).")
