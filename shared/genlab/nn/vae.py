"""Variational autoencoder parts in plain PyTorch (no Lightning).

Shapes: ``B`` batch, ``L`` latent size (2 in lab 04), images ``(B, C, H, W)`` with pixel
values in [0, 1], ``D = C*H*W`` pixels per image. The decoders return **logits** of a
Bernoulli likelihood per pixel (the probability is ``sigmoid(logit)``), so the
reconstruction term is ``binary_cross_entropy_with_logits``: CUDA autocast refuses
``F.binary_cross_entropy`` on probabilities because ``log(sigmoid(x))`` in float16 rounds
to ``log(0) = -inf`` for moderately negative logits.

- ``reparameterize(mu, logvar, eps)``: ``z = mu + exp(logvar / 2) * eps``;
- ``kl_divergence(mu, logvar)``: ``KL(N(mu, diag(exp(logvar))) || N(0, I))`` per example;
- ``elbo_loss(x, x_logits, mu, logvar, beta)``: the negative ELBO, summed over pixels and
  latent dimensions, averaged over the batch (nats per image);
- ``bits_per_dim(nats, num_dims)``: nats per image to bits per pixel;
- ``latent_grid(decoder, n, quantile_range)``: decoded images on an ``n x n`` grid of the
  2-D latent, spaced by the inverse normal CDF (equal prior mass between neighbours);
- ``MLPEncoder``/``MLPDecoder`` and ``ConvEncoder``/``ConvDecoder``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "reparameterize",
    "kl_divergence",
    "reconstruction_nll",
    "elbo_loss",
    "bits_per_dim",
    "latent_quantiles",
    "latent_grid",
    "MLPEncoder",
    "MLPDecoder",
    "ConvEncoder",
    "ConvDecoder",
    "make_encoder_decoder",
]


def _check_gaussian(mu: Tensor, logvar: Tensor, fn: str) -> None:
    for name, t in (("mu", mu), ("logvar", logvar)):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            got = t.dtype if isinstance(t, Tensor) else type(t).__name__
            raise TypeError(f"{fn}: {name} must be a floating-point tensor (B, L), got {got}.")
    if mu.shape != logvar.shape:
        raise ValueError(
            f"{fn}: mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must have the same shape (B, L): "
            "the encoder gives one mean and one log-variance per latent dimension."
        )
    if mu.dim() < 1:
        raise ValueError(f"{fn}: mu and logvar need a latent axis, shape (B, L) or (L,), got a scalar.")


# ----------------------------------------------------------------- graded parts (references)

def reparameterize(mu: Tensor, logvar: Tensor, eps: Tensor | None = None,
                   generator: torch.Generator | None = None) -> Tensor:
    """A sample ``z ~ N(mu, diag(exp(logvar)))`` written as ``mu + sigma * eps``.

    mu, logvar: ``(B, L)`` (or any equal shapes); eps: standard-normal noise of the same
    shape, drawn with ``generator`` when omitted. ``sigma = exp(logvar / 2)``. The result
    ``(B, L)`` has mu's dtype and is differentiable in ``mu`` and ``logvar``; the noise is
    the only random part, so gradients flow around it.
    """
    _check_gaussian(mu, logvar, "reparameterize")
    if eps is None:
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    elif eps.shape != mu.shape:
        raise ValueError(f"reparameterize: eps {tuple(eps.shape)} must have mu's shape {tuple(mu.shape)}.")
    return mu + torch.exp(0.5 * logvar) * eps


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, diag(exp(logvar))) || N(0, I))`` in closed form, one value per example.

    ``KL = -1/2 * sum_j (1 + logvar_j - mu_j**2 - exp(logvar_j))`` over the last axis.
    mu, logvar: ``(B, L)`` -> ``(B,)`` float32 (computed in float32, so float16 inputs
    with a large ``logvar`` do not overflow in ``exp``). ``(L,)`` inputs give a 0-d tensor.
    """
    _check_gaussian(mu, logvar, "kl_divergence")
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp(), dim=-1)


def reconstruction_nll(x: Tensor, x_logits: Tensor) -> Tensor:
    """``-log p(x | z)`` of a per-pixel Bernoulli, summed over the pixels of each image.

    x: targets in [0, 1], ``(B, C, H, W)`` or ``(B, D)``; x_logits: the decoder's logits of
    the same shape. Returns ``(B,)`` float32 nats per image.
    """
    if x.shape != x_logits.shape:
        raise ValueError(
            f"x {tuple(x.shape)} and x_logits {tuple(x_logits.shape)} must have the same shape: the decoder "
            "gives one logit per pixel."
        )
    bce = F.binary_cross_entropy_with_logits(x_logits.float(), x.float(), reduction="none")
    return bce.reshape(bce.shape[0], -1).sum(dim=1)


def elbo_loss(x: Tensor, x_logits: Tensor, mu: Tensor, logvar: Tensor, beta: float = 1.0) -> Tensor:
    """The (β-weighted) negative ELBO, averaged over the batch: a float32 scalar.

    ``loss = mean_b [ sum_pixels BCE_with_logits(x_logits_b, x_b) + beta * KL_b ]``.
    x, x_logits: ``(B, C, H, W)`` (or ``(B, D)``); mu, logvar: ``(B, L)``. With ``beta=1``
    the value is the negative ELBO in nats per image, an upper bound on ``-log p(x)``.
    """
    _check_gaussian(mu, logvar, "elbo_loss")
    if x.shape[0] != mu.shape[0]:
        raise ValueError(f"elbo_loss: x has {x.shape[0]} images but mu has {mu.shape[0]} rows.")
    return (reconstruction_nll(x, x_logits) + beta * kl_divergence(mu, logvar)).mean()


def bits_per_dim(nats_per_image: Tensor | float, num_dims: int) -> Tensor | float:
    """Nats per image -> bits per pixel: ``nats / (num_dims * ln 2)``."""
    return nats_per_image / (num_dims * math.log(2.0))


def latent_quantiles(n: int, quantile_range: tuple[float, float] = (0.05, 0.95),
                     dtype: torch.dtype = torch.float32) -> Tensor:
    """``n`` latent coordinates at equally spaced prior percentiles: ``ndtri(linspace(lo, hi, n))``.

    Neighbouring values enclose equal standard-normal mass, so a grid built from them has
    equal prior mass per cell. ``0 < lo < hi < 1`` (the ends 0 and 1 map to -inf, +inf).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"latent_grid: n must be a positive int (cells per side), got {n!r}.")
    lo, hi = (float(q) for q in quantile_range)
    if not 0.0 < lo < hi < 1.0:
        raise ValueError(
            f"latent_grid: quantile_range must satisfy 0 < lo < hi < 1, got {quantile_range!r}; "
            "percentiles 0 and 1 are at minus and plus infinity."
        )
    p = torch.linspace(lo, hi, n, dtype=torch.float64) if n > 1 else torch.tensor([(lo + hi) / 2], dtype=torch.float64)
    return torch.special.ndtri(p).to(dtype)


@torch.no_grad()
def latent_grid(decoder: Callable[[Tensor], Tensor], n: int = 15,
                quantile_range: tuple[float, float] = (0.05, 0.95)) -> Tensor:
    """Decode an ``n x n`` grid of the 2-D latent space into images.

    The coordinates are ``q = latent_quantiles(n, quantile_range)``; cell ``[i, j]`` decodes
    ``z = (q[j], q[i])``: the column gives ``z_1``, the row ``z_2``. ``decoder`` maps
    ``(n*n, 2)`` float32 latents (on its parameters' device) to logits ``(n*n, C, H, W)``;
    it is called once. Returns pixel probabilities ``sigmoid(logits)`` as ``(n, n, C, H, W)``
    float32 on the CPU.
    """
    q = latent_quantiles(n, quantile_range)
    z2, z1 = torch.meshgrid(q, q, indexing="ij")  # row i -> z_2 = q[i], column j -> z_1 = q[j]
    z = torch.stack([z1, z2], dim=-1).reshape(n * n, 2)
    params = list(decoder.parameters()) if isinstance(decoder, nn.Module) else []
    if params:
        z = z.to(params[0].device)
    logits = decoder(z)
    return torch.sigmoid(logits.float()).reshape(n, n, *logits.shape[1:]).cpu()


# ----------------------------------------------------------------- encoders and decoders

def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _image_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"image_shape must be (C, H, W) with positive sizes, got {tuple(image_shape)}.")
    return shape  # type: ignore[return-value]


class _GaussianHead(nn.Module):
    """features ``(B, F)`` -> ``mu, logvar`` each ``(B, L)``: one linear layer per statistic."""

    def __init__(self, in_features: int, latent_dim: int):
        super().__init__()
        self.mu = nn.Linear(in_features, latent_dim)
        self.logvar = nn.Linear(in_features, latent_dim)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.mu(h), self.logvar(h)


class MLPEncoder(nn.Module):
    """Images ``(B, C, H, W)`` -> ``mu, logvar`` ``(B, latent_dim)``: flatten, MLP with ReLU, two heads."""

    def __init__(self, image_shape: Sequence[int] = (1, 8, 8), latent_dim: int = 2,
                 hidden_sizes: Sequence[int] = (256, 128)):
        super().__init__()
        self.image_shape = _image_shape(image_shape)
        self.latent_dim = int(latent_dim)
        d = math.prod(self.image_shape)
        self.body = nn.Sequential(_mlp([d, *hidden_sizes]), nn.ReLU()) if hidden_sizes else nn.Identity()
        self.head = _GaussianHead(hidden_sizes[-1] if hidden_sizes else d, self.latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"MLPEncoder expects images (B, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(x.shape)}.")
        return self.head(self.body(x.flatten(1)))


class MLPDecoder(nn.Module):
    """Latents ``(B, latent_dim)`` -> pixel logits ``(B, C, H, W)``: MLP with ReLU, no final activation."""

    def __init__(self, image_shape: Sequence[int] = (1, 8, 8), latent_dim: int = 2,
                 hidden_sizes: Sequence[int] = (128, 256)):
        super().__init__()
        self.image_shape = _image_shape(image_shape)
        self.latent_dim = int(latent_dim)
        self.net = _mlp([self.latent_dim, *hidden_sizes, math.prod(self.image_shape)])

    def forward(self, z: Tensor) -> Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"MLPDecoder expects latents (B, {self.latent_dim}), got {tuple(z.shape)}.")
        return self.net(z).view(z.shape[0], *self.image_shape)


class ConvEncoder(nn.Module):
    """Images ``(B, C, H, W)`` (H, W divisible by 4, e.g. MNIST's 28) -> ``mu, logvar`` ``(B, latent_dim)``.

    Two 3x3 stride-2 convolutions (``channels``), ReLU, flatten, a hidden linear layer, two heads.
    """

    def __init__(self, image_shape: Sequence[int] = (1, 28, 28), latent_dim: int = 2,
                 channels: Sequence[int] = (32, 64), hidden: int = 128):
        super().__init__()
        self.image_shape = C, H, W = _image_shape(image_shape)
        if H % 4 or W % 4:
            raise ValueError(f"ConvEncoder halves the image twice, so H and W must be divisible by 4; got {(H, W)}. "
                             "Use architecture='mlp' for other sizes.")
        c1, c2 = (int(c) for c in channels)
        self.latent_dim = int(latent_dim)
        self.body = nn.Sequential(
            nn.Conv2d(C, c1, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(c2 * (H // 4) * (W // 4), hidden), nn.ReLU(),
        )
        self.head = _GaussianHead(hidden, self.latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"ConvEncoder expects images (B, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(x.shape)}.")
        return self.head(self.body(x))


class ConvDecoder(nn.Module):
    """Latents ``(B, latent_dim)`` -> pixel logits ``(B, C, H, W)``, the mirror of ``ConvEncoder``.

    A linear layer to ``(channels[-1], H/4, W/4)``, then two stride-2 transposed convolutions.
    """

    def __init__(self, image_shape: Sequence[int] = (1, 28, 28), latent_dim: int = 2,
                 channels: Sequence[int] = (32, 64), hidden: int = 128):
        super().__init__()
        self.image_shape = C, H, W = _image_shape(image_shape)
        if H % 4 or W % 4:
            raise ValueError(f"ConvDecoder doubles the size twice, so H and W must be divisible by 4; got {(H, W)}.")
        c1, c2 = (int(c) for c in channels)
        self.latent_dim = int(latent_dim)
        self._start = (c2, H // 4, W // 4)
        self.fc = nn.Sequential(nn.Linear(self.latent_dim, hidden), nn.ReLU(),
                                nn.Linear(hidden, c2 * (H // 4) * (W // 4)), nn.ReLU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c1, C, 3, stride=2, padding=1, output_padding=1),
        )

    def forward(self, z: Tensor) -> Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"ConvDecoder expects latents (B, {self.latent_dim}), got {tuple(z.shape)}.")
        return self.deconv(self.fc(z).view(z.shape[0], *self._start))


ARCHITECTURES = ("mlp", "conv")


def make_encoder_decoder(architecture: str, image_shape: Sequence[int], latent_dim: int,
                         hidden_sizes: Sequence[int] = (256, 128),
                         channels: Sequence[int] = (32, 64)) -> tuple[nn.Module, nn.Module]:
    """The encoder/decoder pair of ``architecture`` ("mlp" or "conv")."""
    if architecture == "mlp":
        return (MLPEncoder(image_shape, latent_dim, hidden_sizes),
                MLPDecoder(image_shape, latent_dim, tuple(reversed(tuple(hidden_sizes)))))
    if architecture == "conv":
        hidden = int(hidden_sizes[-1]) if hidden_sizes else 128
        return (ConvEncoder(image_shape, latent_dim, channels, hidden),
                ConvDecoder(image_shape, latent_dim, channels, hidden))
    raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}.")
