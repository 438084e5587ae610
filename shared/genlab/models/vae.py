"""A variational autoencoder with a Bernoulli likelihood, as a LightningModule.

Images ``x (B, C, H, W)`` in [0, 1] -> encoder -> ``mu, logvar (B, L)`` -> a reparameterised
sample ``z (B, L)`` -> decoder -> pixel logits ``(B, C, H, W)``. The three loss parts
(``reparameterize``, ``kl_divergence``, ``elbo_loss``, a student's in lab 04) are
constructor arguments; ``genlab.nn.vae`` holds the defaults.

Logged for ``train``, ``val`` and ``test`` (per image, in nats unless said otherwise):
``<split>_recon`` (``-log p(x|z)`` summed over pixels), ``<split>_kl``, ``<split>_nelbo``
(recon + KL: the negative ELBO, an upper bound on ``-log p(x)``), ``<split>_bpd`` (the
negative ELBO in bits per pixel) and ``<split>_loss``, the objective that is optimised
(recon + β·KL, with β ramped up over ``kl_warmup_steps`` during training). The ``train_*``
values are logged on the steps the logger records (every ``log_every_n_steps``) and on the
run's last step (``genlab.models.common.step_is_logged``); the other steps only optimise.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import lightning as L
import torch
from torch import Tensor

from genlab.data import DigitsDataModule
from genlab.models.common import configure_adamw, step_is_logged
from genlab.nn.vae import bits_per_dim, make_encoder_decoder
from genlab.nn.vae import elbo_loss as reference_elbo_loss
from genlab.nn.vae import kl_divergence as reference_kl_divergence
from genlab.nn.vae import reparameterize as reference_reparameterize

__all__ = ["VAE"]


class VAE(L.LightningModule):
    """VAE with an MLP (default) or small convolutional encoder/decoder pair.

    Args:
        image_shape: ``(C, H, W)`` of the data (linked from the datamodule by ``genlab fit``).
        latent_dim: size of z; 2 lets you draw the latent space.
        architecture: "mlp" (any image size) or "conv" (H, W divisible by 4, e.g. MNIST).
        hidden_sizes: MLP encoder widths (the decoder mirrors them); for "conv" the last is
            the width of the hidden linear layer.
        channels: the two convolution widths of "conv".
        beta: weight of the KL term (β-VAE; 1 is the true ELBO).
        kl_warmup_steps: ramp β linearly from 0 over this many training steps (0: no warm-up).
        binarize: train and evaluate on pixels thresholded at 0.5, so that the Bernoulli
            likelihood is a real likelihood and the negative ELBO a bound in nats.
        lr, weight_decay, warmup_steps, schedule: AdamW and its learning-rate schedule.
        reparameterize, kl_divergence, elbo_loss: the loss parts (signatures of
            ``genlab.nn.vae``); ``elbo_loss`` must accept ``beta=``.
    """

    fit_name = "vae"
    datamodule_class = DigitsDataModule
    linked_from_data = ("image_shape",)
    figures = "genlab.plots.vae:save_run_figures"
    demo_steps = 1500  # genlab demo: a latent grid of recognisable digits in about 20 s on 2 CPU cores
    demo_metrics = ("val_nelbo", "val_kl")

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 8, 8),
        latent_dim: int = 2,
        architecture: Literal["mlp", "conv"] = "mlp",
        hidden_sizes: Sequence[int] = (256, 128),
        channels: Sequence[int] = (32, 64),
        beta: float = 1.0,
        kl_warmup_steps: int = 0,
        binarize: bool = True,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        schedule: Literal["constant", "cosine"] = "constant",
        reparameterize: Callable | None = None,
        kl_divergence: Callable | None = None,
        elbo_loss: Callable | None = None,
    ):
        super().__init__()
        if beta < 0:
            raise ValueError(f"beta must be >= 0 (the weight of the KL term), got {beta}.")
        if kl_warmup_steps < 0:
            raise ValueError(f"kl_warmup_steps must be >= 0, got {kl_warmup_steps}.")
        self.save_hyperparameters(ignore=["reparameterize", "kl_divergence", "elbo_loss"])
        self.image_shape = tuple(int(s) for s in image_shape)
        self.num_pixels = math.prod(self.image_shape)
        self.encoder, self.decoder = make_encoder_decoder(
            architecture, self.image_shape, latent_dim, tuple(hidden_sizes), tuple(channels))
        self.reparameterize = reparameterize or reference_reparameterize
        self.kl_divergence = kl_divergence or reference_kl_divergence
        self.elbo_loss = elbo_loss or reference_elbo_loss

    # ----------------------------------------------------------------- model
    def prepare(self, x: Tensor) -> Tensor:
        """The targets the likelihood models: ``x`` thresholded at 0.5 when ``binarize``."""
        return (x > 0.5).to(x.dtype) if self.hparams.binarize else x

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images ``(B, C, H, W)`` -> ``mu, logvar`` ``(B, L)`` of q(z | x)."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """Latents ``(B, L)`` -> pixel logits ``(B, C, H, W)``."""
        return self.decoder(z)

    def forward(self, x: Tensor, eps: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Images ``(B, C, H, W)`` -> ``(x_logits, mu, logvar)`` through one sample of q(z | x).

        eps: the standard-normal noise ``(B, L)``; drawn with torch's global generator when omitted.
        """
        mu, logvar = self.encode(x)
        if eps is None:
            eps = torch.randn_like(mu)
        z = self.reparameterize(mu, logvar, eps)
        return self.decode(z), mu, logvar

    def current_beta(self) -> float:
        """β at the current training step (linear warm-up over ``kl_warmup_steps``)."""
        beta, warmup = float(self.hparams.beta), int(self.hparams.kl_warmup_steps)
        if warmup <= 0 or self._trainer is None:
            return beta
        return beta * min(1.0, (self.global_step + 1) / warmup)

    def objective(self, x: Tensor, eps: Tensor | None = None, beta: float | None = None) -> Tensor:
        """The loss that training minimises on targets ``x (B, C, H, W)``: recon + β·KL, the
        batch mean over one sample of q(z | x) (``eps (B, L)``, drawn when omitted); a
        differentiable scalar. ``beta`` defaults to ``hparams.beta``."""
        beta = float(self.hparams.beta) if beta is None else float(beta)
        x_logits, mu, logvar = self(x, eps)
        return self.elbo_loss(x, x_logits, mu, logvar, beta=beta)

    def loss_parts(self, x: Tensor, eps: Tensor | None = None, beta: float | None = None) -> dict[str, Tensor]:
        """One pass on targets ``x``: the objective ``loss`` (recon + β·KL, differentiable)
        and, detached, ``recon``, ``kl``, ``nelbo`` (β = 1) and ``bpd``, each a batch mean."""
        beta = float(self.hparams.beta) if beta is None else float(beta)
        x_logits, mu, logvar = self(x, eps)
        loss = self.elbo_loss(x, x_logits, mu, logvar, beta=beta)
        with torch.no_grad():
            kl = self.kl_divergence(mu, logvar).float().mean()
            nelbo = loss.detach().float() if beta == 1.0 else self.elbo_loss(x, x_logits, mu, logvar, beta=1.0).float()
        return {"loss": loss, "recon": nelbo - kl, "kl": kl, "nelbo": nelbo,
                "bpd": bits_per_dim(nelbo, self.num_pixels)}

    # -------------------------------------------------------------- training
    def _log_parts(self, split: str, parts: dict[str, Tensor], batch_size: int) -> None:
        on_step = split == "train"
        for name, value in parts.items():
            self.log(f"{split}_{name}", value.detach(), prog_bar=name in ("loss", "kl"), on_step=on_step,
                     on_epoch=not on_step, batch_size=batch_size)

    def training_step(self, batch, batch_idx):
        """One optimisation step on ``batch = (x (B, C, H, W), labels)``; returns the objective.

        On the steps whose metrics are read (``step_is_logged``) it also logs the ``train_*``
        parts; on the others it computes only the objective, since on a model this small each
        ``self.log`` call costs a measurable share of the step.
        """
        x = self.prepare(batch[0])
        beta = self.current_beta()
        if not step_is_logged(self):
            return self.objective(x, beta=beta)
        parts = self.loss_parts(x, beta=beta)
        self._log_parts("train", parts, x.shape[0])
        if self.hparams.kl_warmup_steps:
            self.log("beta", beta, on_step=True, on_epoch=False)
        return parts["loss"]

    def validation_step(self, batch, batch_idx):
        x = self.prepare(batch[0])
        self._log_parts("val", self.loss_parts(x), x.shape[0])

    def test_step(self, batch, batch_idx):
        x = self.prepare(batch[0])
        self._log_parts("test", self.loss_parts(x), x.shape[0])

    def configure_optimizers(self):
        """AdamW (decay on matrices only) with optional warm-up and cosine decay over the run."""
        return configure_adamw(self, betas=(0.9, 0.999))

    # ------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, dataloader, seed: int = 0) -> dict[str, float]:
        """Per-image means of recon, KL, negative ELBO (β = 1, one posterior sample per image,
        noise from a generator seeded with ``seed``) and bits per pixel over ``dataloader``."""
        was_training = self.training
        self.eval()
        generator = torch.Generator(device=self.device).manual_seed(seed)
        totals = {"recon": 0.0, "kl": 0.0, "nelbo": 0.0}
        count = 0
        for batch in dataloader:
            x = self.prepare(batch[0].to(self.device))
            eps = torch.randn(x.shape[0], self.hparams.latent_dim, generator=generator, device=self.device)
            parts = self.loss_parts(x, eps=eps, beta=1.0)
            for key in totals:
                totals[key] += float(parts[key]) * x.shape[0]
            count += x.shape[0]
        self.train(was_training)
        if count == 0:
            raise ValueError("evaluate: the dataloader gave no batches.")
        result = {key: value / count for key, value in totals.items()}
        result["bpd"] = bits_per_dim(result["nelbo"], self.num_pixels)
        return result

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Pixel probabilities ``(B, C, H, W)`` decoded from the posterior means of ``x``."""
        mu, _ = self.encode(self.prepare(x))
        return torch.sigmoid(self.decode(mu).float())

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` images (pixel probabilities ``(n, C, H, W)``) decoded from z ~ N(0, I)."""
        z = torch.randn(n, self.hparams.latent_dim, generator=generator, device=self.device)
        return torch.sigmoid(self.decode(z).float())

    @torch.no_grad()
    def interpolate(self, x_a: Tensor, x_b: Tensor, steps: int = 10) -> Tensor:
        """Decode ``steps`` points on the line between the posterior means of two images.

        x_a, x_b: ``(C, H, W)`` or ``(1, C, H, W)``. Returns probabilities ``(steps, C, H, W)``.
        """
        pair = torch.stack([x_a.reshape(self.image_shape), x_b.reshape(self.image_shape)]).to(self.device)
        mu, _ = self.encode(self.prepare(pair))
        t = torch.linspace(0.0, 1.0, steps, device=self.device)[:, None]
        return torch.sigmoid(self.decode((1 - t) * mu[0] + t * mu[1]).float())
