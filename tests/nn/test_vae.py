"""genlab.nn.vae against independent oracles (torch.distributions, torch.special, autograd) and properties."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from genlab.nn.vae import (
    ConvDecoder,
    ConvEncoder,
    MLPDecoder,
    MLPEncoder,
    bits_per_dim,
    elbo_loss,
    kl_divergence,
    latent_grid,
    latent_quantiles,
    make_encoder_decoder,
    reconstruction_nll,
    reparameterize,
)


def _gaussian(seed, B=6, L=3, scale=1.5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, L, generator=g) * scale, torch.randn(B, L, generator=g) * scale


# ---------------------------------------------------------------- reparameterize

def test_reparameterize_is_mu_plus_sigma_eps():
    mu, logvar = _gaussian(0)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(1))
    z = reparameterize(mu, logvar, eps)
    assert z.dtype == torch.float32 and z.shape == mu.shape
    torch.testing.assert_close(z, mu + torch.sqrt(torch.exp(logvar)) * eps)
    assert torch.equal(reparameterize(mu, logvar, torch.zeros_like(mu)), mu)


def test_reparameterize_draws_from_the_generator_when_eps_is_omitted():
    mu, logvar = _gaussian(2)
    a = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(5))
    b = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(5))
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    torch.testing.assert_close(a, reparameterize(mu, logvar, eps))


def test_reparameterize_gradients_flow_to_mu_and_logvar():
    mu, logvar = (t.requires_grad_(True) for t in _gaussian(3))
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(4))
    reparameterize(mu, logvar, eps).sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones_like(mu))
    torch.testing.assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)


def test_reparameterize_moments_with_a_fixed_generator():
    mu, logvar = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.5, -1.0]])
    g = torch.Generator().manual_seed(7)
    z = reparameterize(mu.expand(50000, 2), logvar.expand(50000, 2), generator=g)
    torch.testing.assert_close(z.mean(0), mu[0], atol=0.02, rtol=0)
    torch.testing.assert_close(z.std(0), torch.exp(0.5 * logvar[0]), atol=0.02, rtol=0)


def test_reparameterize_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        reparameterize(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="eps"):
        reparameterize(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3, 2))


# ---------------------------------------------------------------- KL

@pytest.mark.parametrize("seed, B, L", [(0, 5, 2), (1, 3, 8), (2, 1, 1)])
def test_kl_matches_torch_distributions(seed, B, L):
    mu, logvar = _gaussian(seed, B, L)
    want = torch_kl(Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)
    got = kl_divergence(mu, logvar)
    assert got.shape == (B,) and got.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_kl_properties_zero_at_prior_symmetric_nonnegative():
    assert torch.equal(kl_divergence(torch.zeros(3, 2), torch.zeros(3, 2)), torch.zeros(3))
    mu, logvar = _gaussian(3)
    torch.testing.assert_close(kl_divergence(mu, logvar), kl_divergence(-mu, logvar))
    assert (kl_divergence(mu, logvar) >= 0).all()
    # exact: mu = 1, sigma^2 = 4 -> 0.5 * (4 + 1 - 1 - ln 4)
    got = kl_divergence(torch.tensor([[1.0]]), torch.tensor([[math.log(4.0)]]))
    torch.testing.assert_close(got, torch.tensor([0.5 * (4.0 - math.log(4.0))]))


def test_kl_float16_inputs_with_large_logvar_stay_finite():
    mu = torch.randn(4, 3).half()
    logvar = torch.full((4, 3), 13.0).half()
    assert not torch.isfinite(torch.exp(logvar)).all()  # the trap: exp overflows float16
    got = kl_divergence(mu, logvar)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    torch.testing.assert_close(got, kl_divergence(mu.float(), logvar.float()))


# ---------------------------------------------------------------- ELBO

def _batch(seed, B=4, shape=(1, 8, 8), L=2):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(B, *shape, generator=g) > 0.5).float()
    return x, torch.randn(B, *shape, generator=g) * 3, torch.randn(B, L, generator=g), torch.randn(B, L, generator=g)


def test_reconstruction_is_bernoulli_log_prob_summed_over_pixels():
    x, logits, _, _ = _batch(0)
    want = -torch.distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(reconstruction_nll(x, logits), want)


def test_elbo_is_batch_mean_of_recon_plus_beta_kl():
    x, logits, mu, logvar = _batch(1)
    per_example = reconstruction_nll(x, logits) + 3.0 * kl_divergence(mu, logvar)
    loss = elbo_loss(x, logits, mu, logvar, beta=3.0)
    assert loss.dim() == 0 and loss.dtype == torch.float32
    torch.testing.assert_close(loss, per_example.mean())
    twice = elbo_loss(*(torch.cat([t, t]) for t in (x, logits, mu, logvar)), beta=3.0)
    torch.testing.assert_close(twice, loss)  # a mean over the batch


def test_elbo_is_exact_for_saturated_logits_where_sigmoid_bce_is_not():
    x = torch.tensor([[0.0, 1.0]])
    logits = torch.tensor([[40.0, -40.0]])
    mu = logvar = torch.zeros(1, 2)
    torch.testing.assert_close(elbo_loss(x, logits, mu, logvar), torch.tensor(80.0))
    naive = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum")
    # sigmoid(40) rounds to exactly 1.0, so log(1 - p) = log(0) is clamped at -100: the trap the lab warns about
    assert naive.item() == pytest.approx(140.0)


def test_elbo_gradients_of_the_mean():
    x, logits, mu, logvar = _batch(2, B=3, shape=(1, 4, 4))
    leaves = [t.clone().requires_grad_(True) for t in (logits, mu, logvar)]
    elbo_loss(x, *leaves, beta=2.0).backward()
    torch.testing.assert_close(leaves[0].grad, (torch.sigmoid(logits) - x) / 3)
    torch.testing.assert_close(leaves[1].grad, 2.0 * mu / 3)
    torch.testing.assert_close(leaves[2].grad, 2.0 * 0.5 * (logvar.exp() - 1) / 3)


def test_elbo_float16_and_autocast_are_finite_float32():
    x, logits, mu, logvar = _batch(3)
    big = torch.full_like(logvar, 12.0)
    loss = elbo_loss(x.half(), logits.half(), mu.half(), big.half())
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    with torch.autocast("cpu", dtype=torch.float16):
        loss = elbo_loss(x, logits.half(), mu.half(), big.half())
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_bits_per_dim():
    assert bits_per_dim(64 * math.log(2.0), 64) == pytest.approx(1.0)


# ---------------------------------------------------------------- latent grid

def test_latent_quantiles_use_the_inverse_normal_cdf():
    q = latent_quantiles(9, (0.05, 0.95))
    from statistics import NormalDist

    want = [NormalDist().inv_cdf(0.05 + k * 0.9 / 8) for k in range(9)]
    torch.testing.assert_close(q, torch.tensor(want), atol=1e-6, rtol=0)
    mass = torch.special.ndtr(q.double()).diff()
    torch.testing.assert_close(mass, torch.full_like(mass, 0.9 / 8), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="0 < lo < hi < 1"):
        latent_quantiles(5, (0.0, 1.0))


class _Recorder(torch.nn.Module):
    def __init__(self, shape=(1, 3, 2)):
        super().__init__()
        self.linear = torch.nn.Linear(2, math.prod(shape))
        self.shape, self.seen = shape, []

    def forward(self, z):
        self.seen.append(z)
        return self.linear(z).view(z.shape[0], *self.shape)


def test_latent_grid_layout_and_points():
    torch.manual_seed(0)
    dec = _Recorder()
    grid = latent_grid(dec, 4, (0.1, 0.9))
    assert grid.shape == (4, 4, 1, 3, 2) and grid.dtype == torch.float32
    assert len(dec.seen) == 1 and dec.seen[0].shape == (16, 2)
    q = latent_quantiles(4, (0.1, 0.9))
    for i in range(4):
        for j in range(4):
            z = torch.tensor([[q[j], q[i]]])
            torch.testing.assert_close(grid[i, j], torch.sigmoid(dec.linear(z)).view(1, 3, 2))
    assert not grid.requires_grad


# ---------------------------------------------------------------- encoders and decoders

@pytest.mark.parametrize("arch, shape", [("mlp", (1, 8, 8)), ("mlp", (1, 5, 7)), ("conv", (1, 28, 28)), ("conv", (1, 8, 8))])
def test_encoder_decoder_shapes(arch, shape):
    enc, dec = make_encoder_decoder(arch, shape, 2)
    x = torch.rand(3, *shape)
    mu, logvar = enc(x)
    assert mu.shape == logvar.shape == (3, 2)
    assert dec(mu).shape == (3, *shape)


def test_encoder_and_decoder_errors_name_the_fix():
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvEncoder((1, 10, 10))
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvDecoder((1, 6, 6))
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        MLPEncoder((1, 8, 8))(torch.rand(2, 64))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        MLPDecoder((1, 8, 8))(torch.rand(2, 3))
    with pytest.raises(ValueError, match="architecture"):
        make_encoder_decoder("rnn", (1, 8, 8), 2)
