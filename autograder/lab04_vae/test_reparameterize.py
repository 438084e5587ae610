"""Part 1: reparameterize(mu, logvar, eps) -> z = mu + exp(0.5 * logvar) * eps.

Random inputs are drawn per submission (``submission.seed``) wherever the answer is computed
here from them; the hand-picked ones (mu = 0, eps = 1; the moments) are fixed.
"""
import pytest
import torch

from autograder import kit
from genlab.checks import lab04_bugs as bugs

NAME = "reparameterize"




def _inputs(seed, B, L, logvar_scale=1.5):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(B, L, generator=g) * 2
    logvar = torch.randn(B, L, generator=g) * logvar_scale
    eps = torch.randn(B, L, generator=g)
    return mu, logvar, eps


@pytest.mark.points(3)
def test_formula_shape_and_dtype(submission):
    """mu + exp(0.5 * logvar) * eps for several (B, L), logvar of both signs; float32 in, float32 out."""
    fn = submission.function(NAME)
    for seed, (B, L) in ((100, (6, 2)), (101, (2, 9)), (102, (5, 1))):
        mu, logvar, eps = _inputs(kit.input_seed(submission, seed), B, L)
        z = kit.call(fn, mu, logvar, eps, context=f"{NAME} with B={B}, L={L}")
        kit.fail_if(bugs.name_reparameterize_bug(z, mu, logvar, eps), f"B={B}, L={L}")


@pytest.mark.points(2)
def test_std_is_exp_half_logvar(submission):
    """With eps = 1 and mu = 0 the result is the standard deviation itself: exp(0.5 * logvar), not exp(logvar)."""
    fn = submission.function(NAME)
    logvar = torch.tensor([[-4.0, -1.0, 0.0, 1.0, 2.0, 4.0]])
    mu, eps = torch.zeros_like(logvar), torch.ones_like(logvar)
    z = kit.call(fn, mu, logvar, eps, context=f"{NAME} with mu = 0 and eps = 1")
    kit.fail_if(bugs.name_reparameterize_bug(z, mu, logvar, eps), "mu = 0, eps = 1 (so z is sigma)")


@pytest.mark.points(2)
def test_uses_the_given_eps(submission):
    """Same eps, same z (no hidden noise); eps = 0 gives mu exactly; z moves with eps."""
    fn = submission.function(NAME)
    mu, logvar, eps = _inputs(kit.input_seed(submission, 103), 4, 3)
    first = kit.call(fn, mu, logvar, eps, context=NAME)
    again = kit.call(fn, mu, logvar, eps, context=f"{NAME} called again with the same eps")
    kit.expect_tensor(first, "z", shape=(4, 3))
    if not (isinstance(again, torch.Tensor) and torch.equal(first, again)):
        raise AssertionError("two calls with the same mu, logvar and eps gave different z: use the eps you are given "
                             "and draw no noise inside reparameterize (the caller owns the random generator).")
    zero = kit.call(fn, mu, logvar, torch.zeros_like(eps), context=f"{NAME} with eps = 0")
    if not (isinstance(zero, torch.Tensor) and torch.equal(zero, mu)):
        raise AssertionError("with eps = 0, z should be exactly mu: z = mu + sigma * eps.")
    other = eps.flip(0)
    moved = kit.call(fn, mu, logvar, other, context=f"{NAME} with another eps")
    kit.fail_if(bugs.name_reparameterize_bug(moved, mu, logvar, other), "with another eps")


@pytest.mark.points(3)
def test_gradients_reach_mu_and_logvar(submission):
    """dz/dmu = 1 and dz/dlogvar = 0.5 * exp(0.5 * logvar) * eps (the trick exists for these gradients)."""
    mu, logvar, eps = _inputs(kit.input_seed(submission, 104), 5, 2)
    data = kit.call(submission.probe, "gradients", fn=NAME, args=(mu, logvar, eps), wrt=[0, 1],
                    context="computing gradients through reparameterize")
    g_mu, g_logvar = data["grads"]
    for name, g in (("mu", g_mu), ("logvar", g_logvar)):
        if g is None:
            raise AssertionError(f"no gradient reached `{name}` through reparameterize: do not detach, do not use "
                                 "torch.no_grad(), .data, .item() or numpy; build z from the input tensors.")
    kit.expect_close(g_mu, torch.ones_like(mu), "dz/dmu", atol=1e-5, hint="z = mu + sigma * eps, so dz/dmu = 1.")
    want = 0.5 * torch.exp(0.5 * logvar.double()) * eps.double()
    hint = "with sigma = exp(0.5 * logvar), dz/dlogvar = 0.5 * sigma * eps."
    if kit.close(g_logvar, torch.exp(logvar.double()) * eps.double(), 1e-4):
        hint = "your sigma is exp(logvar), whose gradient is exp(logvar) * eps; " + hint
    kit.expect_close(g_logvar, want, "dz/dlogvar", atol=1e-4, hint=hint)


@pytest.mark.points(1)
def test_moments_over_many_draws(submission):
    """With eps from a fixed generator, 20000 draws have mean mu and standard deviation exp(0.5 * logvar)."""
    fn = submission.function(NAME)
    g = torch.Generator().manual_seed(105)
    mu = torch.tensor([1.5, -2.0, 0.0])
    logvar = torch.tensor([0.0, 1.2, -2.5])
    N = 20000
    eps = torch.randn(N, 3, generator=g)
    z = kit.call(fn, mu.expand(N, 3).clone(), logvar.expand(N, 3).clone(), eps, context=f"{NAME} on {N} draws")
    z = kit.expect_tensor(z, "z", shape=(N, 3))
    mean, std = z.double().mean(0), z.double().std(0)
    sigma = torch.exp(0.5 * logvar.double())
    if (mean - mu.double()).abs().max() > 4 * sigma.max() / N ** 0.5:
        raise AssertionError("the mean of many draws of z is not mu: z = mu + sigma * eps.")
    if ((std - sigma) / sigma).abs().max() > 0.03:
        raise AssertionError("the spread of many draws of z is not exp(0.5 * logvar): the standard deviation is the "
                             "square root of the variance exp(logvar).")


@pytest.mark.points(1)
def test_inputs_state_and_autograd(submission):
    """mu, logvar and eps come back unchanged, no state is kept between calls, autograd is left on.
    (The gradients are checked above, with their values: to mu and logvar, as the docstring says.)"""
    mu, logvar, eps = _inputs(106, 3, 4)
    kit.expect_contract(submission, NAME, (mu, logvar, eps), NAME, names=("mu", "logvar", "eps"), check_grads=False)
