"""Public checks for lab 04 (the VAE). Each prints one ✓ line or raises AssertionError with a hint.

They cover everything the hidden tests require (shapes, dtypes, the given noise, gradients,
float16 inputs, and the promises of ``genlab.checks.contract``: inputs left unchanged, no state
kept between calls, autograd left on), on small fixed inputs; the hidden tests use other ones.
The KL is also compared with ``torch.distributions.kl_divergence``, an independent oracle.
Every right answer comes from an ``@oracle`` (``genlab.checks.recorded``) called on the checks'
own fixed inputs, so the student build can answer it from the recording.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from genlab.checks import kit
from genlab.checks import lab04_bugs as bugs
from genlab.checks.recorded import oracle

__all__ = ["check_reparameterize", "check_kl_divergence", "check_elbo_loss", "check_latent_grid", "RecordingDecoder"]


def _gaussian(seed: int, B: int, L: int, logvar_scale: float = 1.5) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, L, generator=g), torch.randn(B, L, generator=g) * logvar_scale


def _grad_or_fail(t: Tensor, name: str, what: str) -> Tensor:
    if t.grad is None:
        raise AssertionError(f"no gradient reached `{name}` through {what}: do not detach, do not use torch.no_grad(), "
                             ".data, .item() or numpy inside it; build the result from the input tensors.")
    return t.grad


# ---------------------------------------------------------------- 1. reparameterize

def check_reparameterize(fn: Callable) -> None:
    """The formula, the given eps, gradients to mu and logvar, untouched inputs, float16 inputs."""
    what = "reparameterize"
    mu, logvar = _gaussian(5, 3, 4)
    eps = torch.randn(3, 4, generator=torch.Generator().manual_seed(15))
    first = kit.call(what, fn, mu.clone(), logvar.clone(), eps.clone())
    again = kit.call(what, fn, mu.clone(), logvar.clone(), eps.clone())
    if isinstance(first, Tensor) and isinstance(again, Tensor) and first.shape == again.shape and \
            not torch.equal(first, again):
        raise AssertionError(f"two calls of {what} with the same mu, logvar and eps gave different z: use the eps you "
                             "are given and draw no noise inside reparameterize (the caller owns the random generator).")
    kit.check_contract(fn, (mu, logvar, eps), what, ("mu", "logvar", "eps"), check_grads=False)
    for seed, (B, L) in ((0, (4, 2)), (1, (3, 5))):
        mu, logvar = _gaussian(seed, B, L)
        eps = torch.randn(B, L, generator=torch.Generator().manual_seed(seed + 10))
        z = kit.call(what, fn, mu, logvar, eps)
        kit.fail_if(bugs.name_reparameterize_bug(z, mu, logvar, eps), f"{what} (B={B}, L={L})")
    z0 = kit.call(what, fn, mu, logvar, torch.zeros_like(mu))
    if not (isinstance(z0, Tensor) and torch.equal(z0, mu)):
        raise AssertionError(f"{what} with eps = 0 should return mu exactly; use the eps you are given "
                             "instead of drawing new noise.")
    mu_g, logvar_g = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
    z = kit.call(f"{what} (with gradients)", fn, mu_g, logvar_g, eps)
    if not isinstance(z, Tensor) or not z.requires_grad:
        raise AssertionError(f"{what}'s result is not connected to mu and logvar (no grad_fn): do not detach or use "
                             "torch.no_grad(); the whole point of the trick is that gradients flow through z.")
    z.sum().backward()
    dz_dmu, dz_dlogvar = bugs.reparameterize_grad_formula(mu, logvar, eps)
    kit.expect_close(_grad_or_fail(mu_g, "mu", what), dz_dmu, "dz/dmu", atol=1e-5,
                     hint="z = mu + sigma * eps, so dz/dmu = 1.")
    kit.expect_close(_grad_or_fail(logvar_g, "logvar", what), dz_dlogvar, "dz/dlogvar",
                     atol=1e-4, hint="with sigma = exp(0.5 * logvar), dz/dlogvar = 0.5 * sigma * eps.")
    big = torch.full_like(logvar, 12.0)
    z16 = kit.call(f"{what} on float16 inputs", fn, mu.half(), big.half(), eps.half())
    kit.expect_finite(kit.expect_tensor(z16, f"{what} on float16 inputs", shape=tuple(mu.shape)),
                      f"{what} on float16 inputs with logvar = 12",
                      hint="use exp(0.5 * logvar): exp(12) = 162755 does not fit in float16 (max 65504), exp(6) does.")
    kit.ok(f"{what}: z = mu + exp(0.5·logvar)·eps with your eps, gradients reach mu and logvar, float16 is finite, "
           "inputs left unchanged")


# ---------------------------------------------------------------- 2. KL divergence

@oracle
def _kl_torch(mu: Tensor, logvar: Tensor) -> Tensor:
    """The oracle: torch.distributions' KL of diagonal Gaussians, ``(B, L) -> (B,)`` summed over the latent
    axis (float64)."""
    from torch.distributions import Normal, kl_divergence

    q = Normal(mu.double(), torch.exp(0.5 * logvar.double()))
    p = Normal(torch.zeros_like(mu, dtype=torch.float64), torch.ones_like(mu, dtype=torch.float64))
    return kl_divergence(q, p).sum(-1)


def check_kl_divergence(fn: Callable) -> None:
    """Against torch.distributions; 0 at N(0, I); one float32 value per example; float16 with a large logvar."""
    what = "kl_divergence"
    kit.check_contract(fn, _gaussian(5, 3, 2), what, ("mu", "logvar"), check_grads=False)
    for seed, (B, L) in ((0, (5, 2)), (1, (3, 7))):
        mu, logvar = _gaussian(seed, B, L)
        kl = kit.call(what, fn, mu, logvar)
        kit.fail_if(bugs.name_kl_bug(kl, mu, logvar), f"{what} (B={B}, L={L})")
        kit.expect_close(kl, _kl_torch(mu, logvar), f"{what} against torch.distributions.kl_divergence", atol=1e-4)
    zero = kit.call(what, fn, torch.zeros(4, 2), torch.zeros(4, 2))
    kit.fail_if(bugs.name_kl_bug(zero, torch.zeros(4, 2), torch.zeros(4, 2)), f"{what} of N(0, I) to itself")
    mu, _ = _gaussian(2, 4, 3)
    logvar = torch.full((4, 3), 12.0)
    kl16 = kit.call(f"{what} on float16 inputs", fn, mu.half(), logvar.half())
    kit.fail_if(bugs.name_kl_bug(kl16, mu.half(), logvar.half(), rtol=2e-3), f"{what} on float16 inputs with logvar = 12")
    kit.check_contract(fn, _gaussian(5, 3, 2), what, ("mu", "logvar"))
    kit.ok(f"{what}: matches torch.distributions, 0 for N(0, I), one float32 value per example, safe in float16, "
           "gradients reach mu and logvar")


# ---------------------------------------------------------------- 3. ELBO

def _call_elbo(what: str, fn: Callable, *args, **kwargs):
    """``kit.call`` that explains torch's error for logits given to ``F.binary_cross_entropy``."""
    try:
        return kit.call(what, fn, *args, **kwargs)
    except AssertionError as exc:
        if "between 0 and 1" in str(exc):
            raise AssertionError(f"{exc}. {bugs.PROBABILITY_HINT}") from None
        raise

def _elbo_inputs(seed: int, B: int, image_shape: tuple[int, ...], L: int = 2, logit_scale: float = 3.0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(B, *image_shape, generator=g) > 0.5).float()
    x_logits = torch.randn(B, *image_shape, generator=g) * logit_scale
    mu, logvar = torch.randn(B, L, generator=g), torch.randn(B, L, generator=g)
    return x, x_logits, mu, logvar


def check_elbo_loss(fn: Callable) -> None:
    """Reductions (sum over pixels, mean over the batch), β, logits not probabilities, float32, gradients, float16."""
    what = "elbo_loss"
    kit.check_contract(fn, _elbo_inputs(6, 3, (1, 8, 8)), what, ("x", "x_logits", "mu", "logvar"), check_grads=False)
    cases = [(0, 5, (1, 8, 8), 1.0), (1, 3, (3, 4, 4), 1.0), (2, 4, (1, 8, 8), 4.0), (3, 4, (1, 8, 8), 0.0)]
    for seed, B, shape, beta in cases:
        x, x_logits, mu, logvar = _elbo_inputs(seed, B, shape)
        loss = _call_elbo(what, fn, x, x_logits, mu, logvar, beta=beta)
        kit.fail_if(bugs.name_elbo_bug(loss, x, x_logits, mu, logvar, beta), f"{what} (B={B}, images {shape}, beta={beta})")
    x, x_logits, mu, logvar = _elbo_inputs(4, 3, (1, 8, 8), logit_scale=40.0)
    loss = _call_elbo(f"{what} with confident logits", fn, x, x_logits, mu, logvar)
    kit.fail_if(bugs.name_elbo_bug(loss, x, x_logits, mu, logvar), f"{what} with logits of size 40")
    x, x_logits, mu, logvar = _elbo_inputs(5, 4, (1, 8, 8))
    leaves = [t.clone().requires_grad_(True) for t in (x_logits, mu, logvar)]
    loss = _call_elbo(f"{what} (with gradients)", fn, x, *leaves)
    if not isinstance(loss, Tensor) or not loss.requires_grad:
        raise AssertionError(f"{what}'s result is not connected to its inputs (no grad_fn): do not detach, do not "
                             "use .item() or torch.no_grad(); backward() must reach the decoder and the encoder.")
    loss.backward()
    for name, leaf in zip(("x_logits", "mu", "logvar"), leaves, strict=True):
        _grad_or_fail(leaf, name, what)
    logvar_big = torch.full_like(logvar, 12.0)
    loss16 = _call_elbo(f"{what} on float16 inputs", fn, x.half(), x_logits.half(), mu.half(), logvar_big.half())
    kit.fail_if(bugs.name_elbo_bug(loss16, x.half(), x_logits.half(), mu.half(), logvar_big.half(), rtol=2e-3),
                f"{what} on float16 inputs with logvar = 12")
    kit.ok(f"{what}: BCE with logits summed over pixels + beta·KL, averaged over the batch, float32 and finite in float16")


# ---------------------------------------------------------------- 4. latent grid

class RecordingDecoder(nn.Module):
    """A linear decoder ``z (M, 2) -> logits (M, *image_shape)`` that records every z it is called on."""

    def __init__(self, weight: Tensor, bias: Tensor, image_shape: tuple[int, ...]):
        super().__init__()
        self.linear = nn.Linear(2, weight.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            self.linear.bias.copy_(bias)
        self.image_shape = tuple(image_shape)
        self.calls: list[Tensor] = []

    def forward(self, z: Tensor) -> Tensor:
        if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[-1] != 2:
            raise ValueError(f"the decoder takes a batch of 2-D latents, shape (M, 2); it got {kit.describe(z)}. "
                             "Stack the grid's points into an (n*n, 2) tensor.")
        if z.dtype != torch.float32:
            raise ValueError(f"the decoder's weights are float32 but z is {z.dtype}; make z float32 (.float()).")
        self.calls.append(z.detach().clone())
        return self.linear(z).view(z.shape[0], *self.image_shape)


def _decoder(seed: int, image_shape: tuple[int, ...]) -> tuple[RecordingDecoder, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    d = 1
    for s in image_shape:
        d *= s
    weight, bias = torch.randn(d, 2, generator=g), torch.randn(d, generator=g) * 0.5
    return RecordingDecoder(weight, bias, image_shape), weight, bias


def check_latent_grid(fn: Callable) -> None:
    """The decoder sees the n x n inverse-normal-CDF grid; cell [i, j] holds sigmoid(decoder((q[j], q[i])))."""
    what = "latent_grid"
    kit.check_contract(fn, (_decoder(2, (1, 2, 2))[0], 4, (0.1, 0.9)), what, ("decoder", "n", "quantile_range"),
              check_grads=False)
    for seed, n, qr, shape in ((0, 5, (0.1, 0.9), (1, 3, 2)), (1, 4, None, (1, 2, 2))):
        decoder, weight, bias = _decoder(seed, shape)
        args = (decoder, n) if qr is None else (decoder, n, qr)
        grid = kit.call(what, fn, *args)
        quantile_range = (0.05, 0.95) if qr is None else qr
        context = f"{what}(decoder, {n}{'' if qr is None else f', {qr}'})"
        if not decoder.calls:
            raise AssertionError(f"{context} never called the decoder; decode the grid's latent points with it.")
        kit.fail_if(bugs.name_grid_points_bug(torch.cat(decoder.calls), n, quantile_range), context)
        kit.fail_if(bugs.name_grid_bug(grid, n, quantile_range, weight, bias, shape), context)
    kit.ok(f"{what}: an n x n grid at equally spaced prior percentiles (inverse normal CDF), decoded to probabilities")
