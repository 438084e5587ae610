"""A GAN as a LightningModule: manual optimisation, two optimizers, the discriminator first.

One training step (``discriminator_first_step``, or the function passed as ``step=``):

1. **D first.** Generate fakes, *detach* them, and update D on real samples (target 1) and
   on the fakes (target 0): ``d_steps`` times.
2. **Then G, through D.** Update G so that D calls its fakes real (the non-saturating loss).
   G's loss never touches a real sample: G learns only from D's feedback.

Both backward passes go through ``manual_backward``, so ``precision="16-mixed"`` scales the
losses; if the loss scaler skips D's update of a step (inf or NaN in its gradients), G's
update of that step is skipped too, and the two players stay in step.

The parts a student writes are constructor arguments: ``discriminator_loss``,
``generator_loss`` and the step function ``step(gan, real) -> (d_loss, g_loss)``.
``GAN`` trains MLPs on the ring of Gaussians (``genlab fit gan``) and logs the ring's mode
coverage every epoch, and ``d_loss``/``g_loss`` on the steps the logger records (every
``log_every_n_steps`` batches) and on the run's last (``genlab.models.common.step_is_logged``);
``DigitsGAN`` trains conv nets on 8x8 digits (``genlab fit gan_digits``).
"""
from __future__ import annotations

import copy
import functools
import math
import warnings
from collections.abc import Callable, Iterable

import lightning as L
import torch
from torch import Tensor, nn

from genlab.data import DigitsDataModule, RingDataModule
from genlab.metrics.coverage import mode_coverage
from genlab.models.common import step_is_logged
from genlab.nn.gan import (
    ConvDiscriminator,
    ConvGenerator,
    MLPDiscriminator,
    MLPGenerator,
    instance_noise_std,
    linear_discriminator_loss,
    linear_generator_loss,
)
from genlab.nn.gan import (
    discriminator_loss as bce_discriminator_loss,
)
from genlab.nn.gan import (
    generator_loss as non_saturating_generator_loss,
)

__all__ = ["GAN", "DigitsGAN", "NoisyInput", "discriminator_first_step", "short_run"]


class NoisyInput(nn.Module):
    """Wraps a discriminator: in training mode, adds Gaussian noise of std ``self.std`` to its input.

    The GAN sets ``std`` before every step from its annealing schedule (``instance_noise_std``);
    in eval mode, or with ``std == 0``, the input passes unchanged.
    """

    def __init__(self, discriminator: nn.Module):
        super().__init__()
        self.inner = discriminator
        self.std = 0.0

    def forward(self, x: Tensor) -> Tensor:
        """x ``(B, ...)`` -> the inner discriminator's logits."""
        if self.training and self.std > 0:
            x = x + self.std * torch.randn_like(x)
        return self.inner(x)


def discriminator_first_step(gan: GAN, real: Tensor, reuse_fakes: bool = True) -> tuple[Tensor, Tensor]:
    """One GAN training step on a batch of real samples ``real (B, ...)``: D first, then G.

    D is updated ``gan.d_steps`` times, each time on fresh fakes that are detached, so that
    D's loss cannot reach G's parameters. Then G is updated once through D's (updated)
    judgement of fakes: by default the fakes of D's last update (their graph back to G was
    kept because only the detached copy went into D's loss); with ``reuse_fakes=False``, fresh
    ones. Returns ``(d_loss, g_loss)`` detached.
    """
    opt_d, opt_g = gan.optimizers()
    batch_size = real.shape[0]
    for _ in range(gan.d_steps):
        fake = gan.generator(gan.sample_noise(batch_size))
        d_loss = gan.discriminator_loss(gan.discriminator(real), gan.discriminator(fake.detach()))
        opt_d.zero_grad()
        gan.manual_backward(d_loss)
        opt_d.step()
    if not reuse_fakes:
        fake = gan.generator(gan.sample_noise(batch_size))
    g_loss = gan.generator_loss(gan.discriminator(fake))
    opt_g.zero_grad()
    gan.manual_backward(g_loss)
    opt_g.step()
    return d_loss.detach(), g_loss.detach()


class GAN(L.LightningModule):
    """A generator and a discriminator of 2-D points (MLPs), trained D first in every step.

    Args:
        data_dim: features per sample (2 on the ring; the datamodule gives it).
        latent_dim: size of the noise ``z ~ N(0, I)``.
        hidden, n_layers: width and depth of both MLPs.
        pack: samples D judges at once (PacGAN); 1 is a plain discriminator.
        lr_g, lr_d, betas: the two Adam optimizers (``betas=(0.5, 0.999)``, DCGAN's).
        d_steps: discriminator updates per generator update.
        label_smoothing: one-sided smoothing of D's real targets (``1 - s``).
        instance_noise: initial std of the noise added to D's inputs (real and fake alike),
            annealed linearly to 0 over ``noise_steps`` training steps (0: none).
        ema_decay: keep an exponential moving average of G's weights (``generator_ema``), used
            to sample and to measure coverage (0: none).
        eval_samples: samples drawn to measure the ring's coverage after every epoch.
        generator, discriminator: replace the default MLPs with any modules of the same shapes.
        discriminator_loss: ``(real_logits, fake_logits[, label_smoothing=]) -> loss``.
        generator_loss: ``(fake_logits) -> loss``.
        step: ``(gan, real) -> (d_loss, g_loss)``, one training step (default
            ``discriminator_first_step``).
    """

    fit_name = "gan"  # genlab fit gan (configs/gan.yaml)
    datamodule_class = RingDataModule
    linked_from_data = ("data_dim",)
    figures = "genlab.plots.gan:save_ring_figures"
    demo_steps = 4000  # genlab demo (optimizer steps, 2 a batch): most of the 8 modes covered
    demo_metrics = ("modes_covered", "high_quality")

    def __init__(
        self,
        data_dim: int = 2,
        latent_dim: int = 2,
        hidden: int = 128,
        n_layers: int = 3,
        pack: int = 1,
        lr_g: float = 1e-3,
        lr_d: float = 1e-3,
        betas: tuple[float, float] = (0.5, 0.999),
        d_steps: int = 1,
        label_smoothing: float = 0.0,
        instance_noise: float = 0.0,
        noise_steps: int = 0,
        ema_decay: float = 0.0,
        eval_samples: int = 2500,
        generator: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        discriminator_loss: Callable | None = None,
        generator_loss: Callable | None = None,
        step: Callable | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["generator", "discriminator", "discriminator_loss", "generator_loss", "step"])
        if isinstance(d_steps, bool) or not isinstance(d_steps, int) or d_steps < 1:
            raise ValueError(f"d_steps must be a positive int (discriminator updates per generator update), got {d_steps!r}.")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}.")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) (0 turns the average off), got {ema_decay!r}.")
        self.automatic_optimization = False  # two optimizers, stepped by the step function
        self.latent_dim = int(latent_dim)
        self.generator = generator if generator is not None else self.build_generator()
        inner = discriminator if discriminator is not None else self.build_discriminator()
        self.discriminator = NoisyInput(inner) if instance_noise > 0 else inner
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False) if ema_decay > 0 else None
        loss = discriminator_loss if discriminator_loss is not None else bce_discriminator_loss
        self.discriminator_loss = functools.partial(loss, label_smoothing=label_smoothing) if label_smoothing else loss
        self.generator_loss = generator_loss if generator_loss is not None else non_saturating_generator_loss
        self.step_fn = step if step is not None else discriminator_first_step
        self.coverage_history: list[dict] = []
        self.skipped_steps = 0
        self._d_skipped = False

    # ---------------------------------------------------------------- players
    def build_generator(self) -> nn.Module:
        """The default generator: ``MLPGenerator(latent_dim, data_dim, hidden, n_layers)``."""
        hp = self.hparams
        return MLPGenerator(hp.latent_dim, hp.data_dim, hp.hidden, hp.n_layers)

    def build_discriminator(self) -> nn.Module:
        """The default discriminator: ``MLPDiscriminator(data_dim, hidden, n_layers, pack)``."""
        hp = self.hparams
        return MLPDiscriminator(hp.data_dim, hp.hidden, hp.n_layers, hp.pack)

    @property
    def d_steps(self) -> int:
        """Discriminator updates per generator update."""
        return int(self.hparams.d_steps)

    def sample_noise(self, n: int) -> Tensor:
        """Latent noise ``z ~ N(0, I)``, float32 ``(n, latent_dim)`` on the model's device (global RNG)."""
        return torch.randn(int(n), self.latent_dim, device=self.device)

    def forward(self, z: Tensor) -> Tensor:
        """z ``(B, latent_dim)`` -> generated samples (in the data space the model trains on)."""
        return self.generator(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, use_ema: bool = True) -> Tensor:
        """``n`` samples, float32 on the CPU, from the averaged generator when there is one.

        ``generator`` (a CPU ``torch.Generator``) makes the noise reproducible.
        """
        net = self.generator_ema if (use_ema and self.generator_ema is not None) else self.generator
        was_training = net.training
        net.eval()
        try:
            z = torch.randn(int(n), self.latent_dim, generator=generator).to(self.device)
            return self.to_data(net(z)).float().cpu()
        finally:
            net.train(was_training)

    # ------------------------------------------------------------ data space
    def real_from_batch(self, batch) -> Tensor:
        """The real samples of a batch: the batch itself, or its first item for ``(x, y)`` batches."""
        return batch[0] if isinstance(batch, (tuple, list)) else batch

    def to_data(self, x: Tensor) -> Tensor:
        """Generated samples -> the data's own space (identity on the ring)."""
        return x

    # -------------------------------------------------------------- training
    def training_step(self, batch, batch_idx):
        real = self.real_from_batch(batch)
        if isinstance(self.discriminator, NoisyInput):
            self.discriminator.std = instance_noise_std(self.trainer.global_step // (self.d_steps + 1),
                                                        self.hparams.instance_noise, self.hparams.noise_steps)
        result = self.step_fn(self, real)
        if not (isinstance(result, (tuple, list)) and len(result) == 2
                and all(isinstance(r, Tensor) and r.numel() == 1 for r in result)):
            raise TypeError("the training step must return (d_loss, g_loss), two scalar tensors; "
                            f"it returned {type(result).__name__}.")
        if step_is_logged(self, self.d_steps + 1):  # each self.log costs about a tenth of the step
            d_loss, g_loss = (r.detach().float() for r in result)
            self.log_dict({"d_loss": d_loss, "g_loss": g_loss}, prog_bar=True, on_step=True, on_epoch=False)
        if self.generator_ema is not None:
            self._update_ema()

    def validation_step(self, batch, batch_idx):
        """D's accuracy on held-out real samples and as many fresh fakes (no noise, no update).

        Near 100% means D separates the two easily: the situation in which G learns least.
        """
        real = self.real_from_batch(batch)
        fake = self.generator(self.sample_noise(real.shape[0]))
        correct = (self.discriminator(real) > 0).float().mean() + (self.discriminator(fake) < 0).float().mean()
        self.log("val_d_accuracy", correct / 2, prog_bar=False, batch_size=real.shape[0])

    def configure_optimizers(self):
        """Two Adam optimizers, D's first (``gan.optimizers()`` returns ``(opt_d, opt_g)``).

        Each parameter group carries a ``name`` ("discriminator", "generator").
        """
        hp = self.hparams
        betas = tuple(hp.betas)
        opt_d = torch.optim.Adam([{"params": self.discriminator.parameters(), "name": "discriminator"}],
                                 lr=hp.lr_d, betas=betas)
        opt_g = torch.optim.Adam([{"params": self.generator.parameters(), "name": "generator"}],
                                 lr=hp.lr_g, betas=betas)
        return [opt_d, opt_g]

    def on_train_batch_start(self, batch, batch_idx) -> None:
        self._d_skipped = False

    def on_before_optimizer_step(self, optimizer) -> None:
        """Under a loss scaler: note when D's update is skipped for inf/NaN, and skip G's then too."""
        scaler = getattr(getattr(self._trainer, "precision_plugin", None), "scaler", None)
        if scaler is None or not scaler.is_enabled():
            return
        names = {group.get("name") for group in optimizer.param_groups}
        if "discriminator" in names:
            grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            if grads and not bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):
                self._d_skipped = True  # the scaler will skip this update
        elif "generator" in names and self._d_skipped:
            optimizer.zero_grad(set_to_none=True)  # Adam leaves parameters without gradients untouched
            self.skipped_steps += 1
            self.log("skipped_steps", float(self.skipped_steps), on_step=True, on_epoch=False)

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = min(self.hparams.ema_decay, (1 + self.global_step) / (10 + self.global_step))
        for avg, p in zip(self.generator_ema.parameters(), self.generator.parameters(), strict=True):
            avg.lerp_(p.detach(), 1.0 - decay)
        for avg, b in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            avg.copy_(b)

    # ----------------------------------------------------------------- ring
    def ring_coverage(self, centers: Tensor, std: float, n: int | None = None, seed: int = 0):
        """``genlab.metrics.coverage.mode_coverage`` of ``n`` fresh samples (fixed noise ``seed``)."""
        samples = self.sample(n or self.hparams.eval_samples, torch.Generator().manual_seed(seed))
        return mode_coverage(samples, centers, std)

    def on_train_epoch_end(self) -> None:
        data = getattr(self._trainer, "datamodule", None)
        if data is None or not hasattr(data, "centers") or not hasattr(data, "std"):
            return
        cov = self.ring_coverage(data.centers, data.std)
        row = {"step": int(self.global_step), "epoch": int(self.current_epoch), **cov.as_dict()}
        self.coverage_history.append(row)
        self.log_dict({"modes_covered": float(cov.modes_covered), "high_quality": cov.high_quality,
                       "reverse_kl": min(cov.reverse_kl, 1e3)}, on_step=False, on_epoch=True, prog_bar=True)


class DigitsGAN(GAN):
    """A GAN of digit images: small conv nets (or MLPs), images scaled from [0, 1] to [-1, 1].

    Args as ``GAN``, plus ``image_shape`` (C, H, W), given by the datamodule, ``architecture``
    ("conv" or "mlp") and ``width`` (channels of the conv nets).
    """

    fit_name = "gan_digits"  # genlab fit gan_digits (configs/gan_digits.yaml)
    datamodule_class = DigitsDataModule
    linked_from_data = ("image_shape",)
    figures = "genlab.plots.gan:save_digits_figures"
    demo_steps = 2000  # genlab demo (optimizer steps, 2 a batch): digit-like strokes appear
    demo_metrics = ("val_d_accuracy",)

    def __init__(self, image_shape: tuple[int, int, int] = (1, 8, 8), architecture: str = "conv", width: int = 64,
                 latent_dim: int = 16, hidden: int = 256, n_layers: int = 2, lr_g: float = 2e-4,
                 lr_d: float = 2e-4, **kwargs):
        if architecture not in ("conv", "mlp"):
            raise ValueError(f"architecture must be 'conv' or 'mlp', got {architecture!r}.")
        self._image_shape = tuple(int(s) for s in image_shape)
        self._architecture, self._width = architecture, int(width)
        kwargs.pop("data_dim", None)  # saved with the other hyperparameters; always C·H·W here
        super().__init__(data_dim=math.prod(self._image_shape), latent_dim=latent_dim, hidden=hidden,
                         n_layers=n_layers, lr_g=lr_g, lr_d=lr_d, **kwargs)

    def build_generator(self) -> nn.Module:
        if self._architecture == "conv":
            return ConvGenerator(self.latent_dim, self._image_shape, self._width)
        hp = self.hparams
        return MLPGenerator(self.latent_dim, hidden=hp.hidden, n_layers=hp.n_layers, output_shape=self._image_shape)

    def build_discriminator(self) -> nn.Module:
        if self._architecture == "conv":
            return ConvDiscriminator(self._image_shape, self._width)
        hp = self.hparams
        return MLPDiscriminator(hp.data_dim, hp.hidden, hp.n_layers, hp.pack)

    def real_from_batch(self, batch) -> Tensor:
        """Digit images in [0, 1] -> [-1, 1], the range of the generator's tanh."""
        return super().real_from_batch(batch) * 2.0 - 1.0

    def to_data(self, x: Tensor) -> Tensor:
        """Generated images in [-1, 1] -> [0, 1]."""
        return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


# ------------------------------------------------------------ observing a step

class _Batches:
    """An iterable over fixed batches, for ``Trainer.fit(train_dataloaders=...)``."""

    def __init__(self, batches: Iterable[Tensor]):
        self.batches = list(batches)

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class _SeedAtStart(L.Callback):
    """Seeds the global RNG when training starts, so the step's noise is ``torch.randn`` from ``seed``."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def on_train_start(self, trainer, pl_module) -> None:
        torch.manual_seed(self.seed)


def short_run(step: Callable, batches: Iterable[Tensor], *, d_steps: int = 1, label_smoothing: float = 0.0,
              seed: int = 0, hidden: int = 16, latent_dim: int = 2, discriminator_loss: Callable | None = None,
              generator_loss: Callable | None = None, precision: str = "32-true", accelerator: str = "cpu") -> dict:
    """Train a small GAN with ``step`` on ``batches`` (one step per batch) and report plain data.

    The public checks and the autograder's probes use it to watch a student's training step.
    By default the losses are the Wasserstein critic's (``linear_*_loss``), so that what is
    observed does not depend on the BCE losses; pass ``discriminator_loss``/``generator_loss``
    to use others. ``batches`` are real samples ``(B, data_dim)``. The models are MLPs with
    two hidden layers of width ``hidden``, Adam has ``lr=1e-2`` and ``betas=(0.5, 0.999)``, and
    the global RNG is seeded with ``seed`` when training starts, so the noise the step draws
    (``gan.sample_noise``) is the stream of ``torch.randn`` from that seed.
    ``precision="16-mixed"`` on ``accelerator="cpu"`` keeps float16 autocast and a loss scaler
    (Lightning alone would switch to bf16 there), as on a GPU.

    Returns ``{"initial": {name: tensor}, "final": {name: tensor}, "d_losses": [float],
    "g_losses": [float], "loss_scale": float or None, "skipped_steps": int, "global_step": int}``
    where the state dicts hold the generator's and the discriminator's parameters.
    """
    from genlab.training import quiet_lightning

    quiet_lightning()
    batches = list(batches)
    if not batches or not all(isinstance(b, Tensor) and b.dim() == 2 for b in batches):
        raise ValueError("batches must be a non-empty list of (B, data_dim) tensors.")
    record = {"d_losses": [], "g_losses": []}

    def recording_step(gan, real):
        result = step(gan, real)
        if isinstance(result, (tuple, list)) and len(result) == 2:
            for key, value in zip(("d_losses", "g_losses"), result, strict=True):
                if isinstance(value, Tensor) and value.numel() == 1:
                    record[key].append(float(value.detach()))
        return result

    L.seed_everything(seed, verbose=False)
    gan = GAN(data_dim=batches[0].shape[1], latent_dim=latent_dim, hidden=hidden, n_layers=2, d_steps=d_steps,
              label_smoothing=label_smoothing, lr_g=1e-2, lr_d=1e-2,
              discriminator_loss=discriminator_loss or linear_discriminator_loss,
              generator_loss=generator_loss or linear_generator_loss, step=recording_step)
    initial = {k: v.detach().clone() for k, v in gan.state_dict().items()}
    plugins = None
    if precision == "16-mixed" and accelerator == "cpu":
        # Lightning swaps 16-mixed for bf16 on a CPU; this plugin keeps float16 autocast and the loss scaler
        from lightning.pytorch.plugins.precision import MixedPrecision

        plugins, precision = [MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))], None
    trainer = L.Trainer(max_epochs=1, accelerator=accelerator, devices=1, precision=precision, plugins=plugins,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                        callbacks=[_SeedAtStart(seed)])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*validation_step.*val_dataloader.*")
        trainer.fit(gan, train_dataloaders=_Batches(batches))
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    return {
        "initial": initial,
        "final": {k: v.detach().cpu().clone() for k, v in gan.state_dict().items()},
        **record,
        "loss_scale": float(scaler.get_scale()) if scaler is not None and scaler.is_enabled() else None,
        "skipped_steps": int(gan.skipped_steps),
        "global_step": int(trainer.global_step),
    }
