"""Part 2: kl_divergence(mu, logvar) -> KL(N(mu, exp(logvar)) || N(0, I)) per example, shape (B,).

Random inputs are drawn per submission (``submission.seed``); the hand-computed points are fixed.
"""
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from autograder import kit
from genlab.checks import lab04_bugs as bugs

NAME = "kl_divergence"




def _inputs(seed, B, L, scale=1.5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, L, generator=g) * scale, torch.randn(B, L, generator=g) * scale


def _torch_kl(mu, logvar):
    """The oracle: torch.distributions' KL between diagonal Gaussians, summed over the latent axis."""
    q = Normal(mu.double(), torch.exp(0.5 * logvar.double()))
    p = Normal(torch.zeros_like(mu, dtype=torch.float64), torch.ones_like(mu, dtype=torch.float64))
    return kl_divergence(q, p).sum(-1)


@pytest.mark.points(3)
def test_matches_torch_distributions(submission):
    """Random means and log-variances against torch.distributions.kl_divergence."""
    fn = submission.function(NAME)
    for seed, (B, L) in ((200, (7, 2)), (201, (3, 10)), (202, (4, 1))):
        mu, logvar = _inputs(kit.input_seed(submission, seed), B, L)
        kl = kit.call(fn, mu, logvar, context=f"{NAME} with B={B}, L={L}")
        kit.fail_if(bugs.name_kl_bug(kl, mu, logvar), f"B={B}, L={L}")
        kit.expect_close(kl, _torch_kl(mu, logvar), f"the KL for B={B}, L={L} (against torch.distributions)",
                         atol=1e-4)


@pytest.mark.points(2)
def test_zero_for_the_standard_normal(submission):
    """KL(N(0, I) || N(0, I)) = 0 for every example (the '1 +' term cancels the rest)."""
    fn = submission.function(NAME)
    for B, L in ((3, 2), (2, 16)):
        mu, logvar = torch.zeros(B, L), torch.zeros(B, L)
        kl = kit.call(fn, mu, logvar, context=f"{NAME} at mu = 0, logvar = 0")
        kit.fail_if(bugs.name_kl_bug(kl, mu, logvar, atol=1e-6), f"N(0, I) with L={L}")


@pytest.mark.points(1)
def test_symmetric_in_the_mean(submission):
    """KL(mu) = KL(-mu): the mean enters squared."""
    fn = submission.function(NAME)
    mu, logvar = _inputs(kit.input_seed(submission, 203), 5, 3)
    a = kit.expect_tensor(kit.call(fn, mu, logvar, context=NAME), "the KL", shape=(5,))
    b = kit.expect_tensor(kit.call(fn, -mu, logvar, context=f"{NAME} with the mean negated"), "the KL", shape=(5,))
    if not torch.allclose(a, b, atol=1e-5):
        raise AssertionError("the KL changed when the mean was negated; it depends on the mean only through mu^2 "
                             "(mu.pow(2)).")
    kit.fail_if(bugs.name_kl_bug(a, mu, logvar), "random inputs")


@pytest.mark.points(2)
def test_hand_computed_values(submission):
    """Three values worked out by hand: 1/2, (3 - ln 4)/2 and 2 + (1/4 + ln 4)/2."""
    fn = submission.function(NAME)
    cases = [
        # mu, logvar, KL computed by hand
        ([[1.0, 0.0]], [[0.0, 0.0]], 0.5),
        ([[0.0]], [[math.log(4.0)]], 0.5 * (4.0 - 1.0 - math.log(4.0))),
        ([[2.0, -1.0]], [[0.0, math.log(0.25)]], 0.5 * 4.0 + 0.5 * (0.25 - math.log(0.25) - 1.0 + 1.0)),
    ]
    for mu, logvar, want in cases:
        mu, logvar = torch.tensor(mu), torch.tensor(logvar)
        kl = kit.call(fn, mu, logvar, context=f"{NAME} at a hand-computed point")
        kit.fail_if(bugs.name_kl_bug(kl, mu, logvar), "a hand-computed point")
        kit.expect_close(kl, torch.tensor([want], dtype=torch.float64), "the KL at a hand-computed point", atol=1e-5)


@pytest.mark.points(2)
def test_one_float32_value_per_example(submission):
    """Shape (B,) with B != L, dtype float32, never negative."""
    fn = submission.function(NAME)
    mu, logvar = _inputs(kit.input_seed(submission, 204), 6, 4, scale=2.5)
    kl = kit.call(fn, mu, logvar, context=NAME)
    kit.fail_if(bugs.name_kl_bug(kl, mu, logvar), "B=6, L=4")
    if (kl < -1e-6).any():
        raise AssertionError("a KL divergence is never negative; check the sign in front of the sum.")


@pytest.mark.points(2)
def test_inputs_state_and_gradients(submission):
    """mu and logvar come back unchanged, no state is kept between calls, and gradients reach mu
    and logvar (the KL term is what pulls the encoder towards the prior)."""
    mu, logvar = _inputs(205, 3, 2)
    kit.expect_contract(submission, NAME, (mu, logvar), NAME, names=("mu", "logvar"))
