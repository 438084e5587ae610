"""GAN parts in plain PyTorch: the two players and their losses.

Shapes: latent noise ``z`` is ``(B, latent_dim)``; 2-D points are ``(B, 2)``; images are
``(B, C, H, W)`` in ``[-1, 1]``. A discriminator returns one **logit** per example, ``(B,)``
(``(B // pack,)`` when it judges packs of samples). ``D(x) = sigmoid(logit)`` is its belief
that ``x`` is real; the losses take the logits, never the probabilities, and are computed
in float32 whatever the dtype of the logits.

- ``MLPGenerator``, ``MLPDiscriminator``: for the ring of Gaussians and flattened digits;
- ``ConvGenerator``, ``ConvDiscriminator``: small convolutional nets for digit images;
- ``discriminator_loss``, ``generator_loss`` (non-saturating), ``saturating_generator_loss``;
- ``linear_discriminator_loss``, ``linear_generator_loss``: the Wasserstein critic's losses,
  used to observe a training step without relying on the BCE losses;
- ``instance_noise_std``: the annealing schedule of the noise added to D's inputs.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "mlp",
    "MLPGenerator",
    "MLPDiscriminator",
    "ConvGenerator",
    "ConvDiscriminator",
    "discriminator_loss",
    "generator_loss",
    "saturating_generator_loss",
    "linear_discriminator_loss",
    "linear_generator_loss",
    "instance_noise_std",
]


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return value


def mlp(in_dim: int, out_dim: int, hidden: int, n_layers: int, activation: type[nn.Module]) -> nn.Sequential:
    """``n_layers`` hidden layers of width ``hidden`` (each Linear + activation), then a Linear."""
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), activation()]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """``z (B, latent_dim) -> x (B, data_dim)``: ReLU hidden layers and a linear output.

    With ``output_shape`` (e.g. ``(1, 8, 8)``) the output is reshaped to ``(B, *output_shape)``
    and squashed by tanh into ``[-1, 1]``, the range of the scaled images.
    """

    def __init__(self, latent_dim: int = 2, data_dim: int = 2, hidden: int = 128, n_layers: int = 3,
                 output_shape: tuple[int, ...] | None = None):
        super().__init__()
        self.latent_dim = _positive("latent_dim", latent_dim)
        self.output_shape = tuple(output_shape) if output_shape else None
        if self.output_shape is not None:
            data_dim = math.prod(self.output_shape)
        self.net = mlp(latent_dim, _positive("data_dim", data_dim), _positive("hidden", hidden),
                       _positive("n_layers", n_layers), nn.ReLU)

    def forward(self, z: Tensor) -> Tensor:
        """z ``(B, latent_dim)`` -> samples ``(B, data_dim)`` or ``(B, *output_shape)`` in [-1, 1]."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"the generator expects noise of shape (B, {self.latent_dim}), got {tuple(z.shape)}.")
        x = self.net(z)
        if self.output_shape is None:
            return x
        return torch.tanh(x).view(z.shape[0], *self.output_shape)


class MLPDiscriminator(nn.Module):
    """``x (B, ...) -> logits (B // pack,)``: LeakyReLU(0.2) hidden layers, one logit per example.

    Inputs are flattened after the batch axis, so images work too. With ``pack > 1`` the
    discriminator judges ``pack`` samples at once, concatenated (PacGAN, Lin et al. 2018): a
    generator that repeats itself is easier to spot in a pack than in one sample. The batch
    size must then be divisible by ``pack``.
    """

    def __init__(self, data_dim: int = 2, hidden: int = 128, n_layers: int = 3, pack: int = 1):
        super().__init__()
        self.data_dim = _positive("data_dim", data_dim)
        self.pack = _positive("pack", pack)
        self.net = mlp(data_dim * pack, 1, _positive("hidden", hidden), _positive("n_layers", n_layers),
                       lambda: nn.LeakyReLU(0.2))

    def forward(self, x: Tensor) -> Tensor:
        """x ``(B, data_dim)`` (or ``(B, C, H, W)`` with ``C·H·W = data_dim``) -> logits ``(B // pack,)``."""
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.data_dim:
            raise ValueError(f"the discriminator expects {self.data_dim} features per example, got {tuple(x.shape)}.")
        if flat.shape[0] % self.pack:
            raise ValueError(f"with pack={self.pack} the batch size must be a multiple of {self.pack}, "
                             f"got {flat.shape[0]}; use a batch size divisible by pack.")
        return self.net(flat.reshape(-1, self.pack * self.data_dim)).squeeze(-1)


def _check_image_shape(image_shape) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or shape[1] % 4 or shape[2] % 4:
        raise ValueError(f"image_shape must be (C, H, W) with H and W divisible by 4 (8x8 digits, 28x28 MNIST), "
                         f"got {tuple(image_shape)}.")
    return shape


class ConvGenerator(nn.Module):
    """``z (B, latent_dim) -> images (B, C, H, W)`` in ``[-1, 1]``, DCGAN-style.

    A linear layer makes a ``(2·width, H/4, W/4)`` map, two stride-2 transposed convolutions
    double it twice (BatchNorm and ReLU between them) and tanh ends it.
    """

    def __init__(self, latent_dim: int = 16, image_shape: tuple[int, int, int] = (1, 8, 8), width: int = 64):
        super().__init__()
        self.latent_dim = _positive("latent_dim", latent_dim)
        self.image_shape = _check_image_shape(image_shape)
        C, H, W = self.image_shape
        self.start = (2 * _positive("width", width), H // 4, W // 4)
        self.project = nn.Sequential(nn.Linear(latent_dim, math.prod(self.start)), nn.BatchNorm1d(math.prod(self.start)),
                                     nn.ReLU())
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, C, 4, stride=2, padding=1), nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        """z ``(B, latent_dim)`` -> ``(B, C, H, W)`` in [-1, 1]."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"the generator expects noise of shape (B, {self.latent_dim}), got {tuple(z.shape)}.")
        return self.upsample(self.project(z).view(z.shape[0], *self.start))


class ConvDiscriminator(nn.Module):
    """``images (B, C, H, W) -> logits (B,)``: two stride-2 convolutions with LeakyReLU(0.2), then a linear layer.

    No BatchNorm: D sees real and fake batches separately, and batch statistics would tell
    them apart without looking at the images.
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 8, 8), width: int = 64):
        super().__init__()
        self.image_shape = _check_image_shape(image_shape)
        C, H, W = self.image_shape
        width = _positive("width", width)
        self.features = nn.Sequential(
            nn.Conv2d(C, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
        )
        self.head = nn.Linear(2 * width * (H // 4) * (W // 4), 1)

    def forward(self, x: Tensor) -> Tensor:
        """x ``(B, C, H, W)`` -> logits ``(B,)``."""
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"the discriminator expects images of shape (B, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(x.shape)}.")
        return self.head(self.features(x).flatten(1)).squeeze(-1)


# ---------------------------------------------------------------------------------- losses

def _logits(x, name: str) -> Tensor:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor of logits, got "
                        f"{type(x).__name__ if not isinstance(x, Tensor) else x.dtype}.")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty; pass at least one logit.")
    return x.float()  # losses in float32, also for float16 logits under autocast


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """The discriminator's loss, from logits: ``BCE(real, 1 - s) + BCE(fake, 0)``.

    With ``D = sigmoid(logit)`` and ``s = 0`` this is ``-mean log D(x) - mean log(1 - D(G(z)))``,
    minus the GAN value function. ``label_smoothing`` ``s`` in ``[0, 1)`` is one-sided: only
    the real targets become ``1 - s`` (Salimans et al. 2016); fakes keep target 0.

    Args:
        real_logits: D's logits on real samples, any shape (e.g. ``(B,)``), any float dtype.
        fake_logits: D's logits on generated samples, any shape.
    Returns: a 0-dim float32 tensor, the sum of the two means.
    """
    if not 0.0 <= float(label_smoothing) < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}.")
    real = _logits(real_logits, "real_logits")
    fake = _logits(fake_logits, "fake_logits")
    real_loss = F.binary_cross_entropy_with_logits(real, torch.full_like(real, 1.0 - float(label_smoothing)))
    fake_loss = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    return real_loss + fake_loss


def generator_loss(fake_logits: Tensor) -> Tensor:
    """The non-saturating generator loss ``-mean log D(G(z))`` from logits (``softplus(-logit)``).

    Its gradient with respect to a logit is ``-(1 - D(G(z)))``: strongest exactly when D is
    sure the fake is fake. Returns a 0-dim float32 tensor.
    """
    fake = _logits(fake_logits, "fake_logits")
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


def saturating_generator_loss(fake_logits: Tensor) -> Tensor:
    """The original minimax generator loss ``mean log(1 - D(G(z)))`` (minimised), ``-softplus(logit)``.

    Its gradient with respect to a logit is ``-D(G(z))``: it vanishes when D confidently rejects
    the fakes, which is exactly the situation early in training. Returns a 0-dim float32 tensor.
    """
    return -F.softplus(_logits(fake_logits, "fake_logits")).mean()


def linear_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The Wasserstein critic's loss ``mean(fake) - mean(real)`` (no Lipschitz constraint here).

    genlab uses it, with ``linear_generator_loss``, to observe a training step (which tensors
    reach which parameters) independently of the BCE losses. Returns a 0-dim float32 tensor.
    """
    return _logits(fake_logits, "fake_logits").mean() - _logits(real_logits, "real_logits").mean()


def linear_generator_loss(fake_logits: Tensor) -> Tensor:
    """The Wasserstein generator loss ``-mean(fake)``. Returns a 0-dim float32 tensor."""
    return -_logits(fake_logits, "fake_logits").mean()


def instance_noise_std(step: int, initial_std: float, anneal_steps: int) -> float:
    """The std of the Gaussian noise added to D's inputs at ``step``: linear from ``initial_std`` to 0.

    Noise on both real and fake inputs makes the two distributions overlap, so an early
    discriminator cannot separate them perfectly and keeps giving the generator useful
    gradients (Sønderby et al. 2017); annealing it lets D grow sharper as G improves.
    """
    if initial_std <= 0 or anneal_steps <= 0:
        return 0.0
    return float(initial_std) * max(0.0, 1.0 - step / anneal_steps)
