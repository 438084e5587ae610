"""genlab.nn.gan: the players' shapes and the losses against torch's own BCE and Bernoulli."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli

from genlab.nn.gan import (
    ConvDiscriminator,
    ConvGenerator,
    MLPDiscriminator,
    MLPGenerator,
    discriminator_loss,
    generator_loss,
    instance_noise_std,
    linear_discriminator_loss,
    linear_generator_loss,
    saturating_generator_loss,
)


def _logits(seed, *shape, scale=3.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


# ------------------------------------------------------------------ losses

@pytest.mark.parametrize("s", [0.0, 0.1, 0.3])
def test_discriminator_loss_matches_bce_with_logits_loss(s):
    real, fake = _logits(0, 7), _logits(1, 4)
    bce = nn.BCEWithLogitsLoss()
    want = bce(real.double(), torch.full((7,), 1 - s, dtype=torch.float64)) + bce(fake.double(), torch.zeros(4).double())
    got = discriminator_loss(real, fake, label_smoothing=s)
    assert got.shape == () and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, atol=1e-6, rtol=1e-6)


def test_discriminator_loss_is_minus_the_value_function():
    real, fake = _logits(2, 9, 1), _logits(3, 5, 1)
    value = Bernoulli(logits=real.double()).log_prob(torch.ones_like(real).double()).mean() + \
        Bernoulli(logits=fake.double()).log_prob(torch.zeros_like(fake).double()).mean()
    torch.testing.assert_close(discriminator_loss(real, fake).double(), -value, atol=1e-6, rtol=1e-6)


def test_generator_losses_against_bernoulli_log_probs():
    fake = _logits(4, 11).double()
    ones, zeros = torch.ones_like(fake), torch.zeros_like(fake)
    torch.testing.assert_close(generator_loss(fake.float()).double(), -Bernoulli(logits=fake).log_prob(ones).mean(),
                               atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(saturating_generator_loss(fake.float()).double(),
                               Bernoulli(logits=fake).log_prob(zeros).mean(), atol=1e-6, rtol=1e-6)


def test_gradients_non_saturating_vs_saturating():
    x = torch.tensor([-100.0, -30.0, -5.0, 0.0, 5.0, 100.0], requires_grad=True)
    (g_ns,) = torch.autograd.grad(generator_loss(x), x)
    (g_sat,) = torch.autograd.grad(saturating_generator_loss(x), x)
    p = torch.sigmoid(x.detach().double())
    torch.testing.assert_close(g_ns.double(), -(1 - p) / 6, atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(g_sat.double(), -p / 6, atol=1e-7, rtol=1e-5)
    assert g_ns[0].abs() > 0.16 and g_sat[0].abs() < 1e-30  # D rejects the fake: only one of them still speaks


def test_losses_are_finite_and_exact_for_extreme_logits():
    real = torch.tensor([100.0, -100.0, 30.0])
    fake = torch.tensor([-100.0, 100.0, -30.0])
    want = (0.0 + 100.0 + math.log1p(math.exp(-30))) / 3 + (0.0 + 100.0 + math.log1p(math.exp(-30))) / 3
    assert discriminator_loss(real, fake).item() == pytest.approx(want, rel=1e-6)
    assert generator_loss(torch.tensor([-100.0])).item() == pytest.approx(100.0)
    for loss in (discriminator_loss(real, fake), generator_loss(fake), saturating_generator_loss(fake)):
        assert torch.isfinite(loss)


def test_float16_logits_give_float32_losses():
    real, fake = _logits(5, 8).half(), _logits(6, 8).half()
    for loss, want in ((discriminator_loss(real, fake), discriminator_loss(real.float(), fake.float())),
                       (generator_loss(fake), generator_loss(fake.float()))):
        assert loss.dtype == torch.float32
        torch.testing.assert_close(loss, want)


def test_losses_reject_bad_input():
    with pytest.raises(ValueError, match="label_smoothing"):
        discriminator_loss(torch.zeros(2), torch.zeros(2), label_smoothing=1.0)
    with pytest.raises(TypeError, match="logits"):
        generator_loss(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        generator_loss(torch.zeros(0))


def test_linear_losses():
    real, fake = _logits(7, 5), _logits(8, 3)
    torch.testing.assert_close(linear_discriminator_loss(real, fake), fake.mean() - real.mean())
    torch.testing.assert_close(linear_generator_loss(fake), -fake.mean())


# ------------------------------------------------------------------ players

def test_mlp_players_shapes():
    G, D = MLPGenerator(latent_dim=3, data_dim=2, hidden=16, n_layers=2), MLPDiscriminator(2, 16, 2)
    x = G(torch.randn(10, 3))
    assert x.shape == (10, 2) and D(x).shape == (10,)
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        G(torch.randn(10, 2))
    with pytest.raises(ValueError, match="features"):
        D(torch.randn(4, 3))


def test_mlp_generator_images_in_range():
    G = MLPGenerator(latent_dim=4, hidden=8, n_layers=1, output_shape=(1, 8, 8))
    x = G(torch.randn(5, 4) * 10)
    assert x.shape == (5, 1, 8, 8) and x.abs().max() <= 1


def test_packed_discriminator_judges_concatenated_pairs():
    torch.manual_seed(0)
    D = MLPDiscriminator(data_dim=2, hidden=8, n_layers=1, pack=2)
    x = torch.randn(6, 2)
    pairs = torch.cat([x[0::2], x[1::2]], dim=1)  # sample 2i next to sample 2i+1
    torch.testing.assert_close(D(x), D.net(pairs).squeeze(-1))
    with pytest.raises(ValueError, match="multiple of 2"):
        D(torch.randn(5, 2))


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28)])
def test_conv_players_shapes(shape):
    G, D = ConvGenerator(latent_dim=6, image_shape=shape, width=8), ConvDiscriminator(shape, width=8)
    x = G(torch.randn(3, 6))
    assert x.shape == (3, *shape) and x.abs().max() <= 1
    assert D(x).shape == (3,)
    with pytest.raises(ValueError, match="images of shape"):
        D(torch.randn(3, 1, 4, 4))


def test_conv_image_shape_must_divide_by_four():
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvGenerator(image_shape=(1, 10, 10))


def test_instance_noise_schedule():
    assert instance_noise_std(0, 0.3, 100) == pytest.approx(0.3)
    assert instance_noise_std(50, 0.3, 100) == pytest.approx(0.15)
    assert instance_noise_std(100, 0.3, 100) == 0.0 and instance_noise_std(500, 0.3, 100) == 0.0
    assert instance_noise_std(10, 0.0, 100) == 0.0 and instance_noise_std(10, 0.3, 0) == 0.0
