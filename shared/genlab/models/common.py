"""Small helpers shared by the LightningModules (optimizer groups, logger files)."""
from __future__ import annotations

import functools
import math
from pathlib import Path

import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch import nn

__all__ = ["adamw_with_decay_groups", "fused_adamw_supported", "warmup_cosine", "lr_scheduler_config", "configure_adamw",
           "step_is_logged", "metrics_csv_path"]

SCHEDULES = ("constant", "cosine")


def adamw_with_decay_groups(
    module: nn.Module,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.95),
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """AdamW that decays only matrices (``dim >= 2``: linear and embedding weights).

    Biases and LayerNorm parameters (1-D) are not decayed. Tied parameters appear once.
    The update runs as one kernel over all tensors: ``fused=True`` (one fused kernel), else
    ``foreach=True`` (one multi-tensor op per update term) instead of torch's per-tensor
    Python loop, which it picks by default on a CPU. ``fused=None``: fused where the installed
    torch supports it for the parameters' device and dtype.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    if fused is None:
        fused = fused_adamw_supported(params)
    kernel = {"fused": True} if fused else {"foreach": True}
    return torch.optim.AdamW(groups, lr=lr, betas=betas, **kernel)


def fused_adamw_supported(params: list[torch.Tensor]) -> bool:
    """Whether ``torch.optim.AdamW(fused=True)`` accepts these parameters (device and dtype)."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

        devices = set(_get_fused_kernels_supported_devices())
    except ImportError:  # an older torch: CUDA only
        devices = {"cuda"}
    return bool(params) and all(
        p.device.type in devices and p.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)
        for p in params
    )


def warmup_cosine(step: int, warmup_steps: int, total_steps: float, final_ratio: float = 0.1) -> float:
    """LR multiplier: linear warmup over ``warmup_steps``, then cosine decay from 1 to
    ``final_ratio`` at ``total_steps`` (constant 1 after warmup if total_steps is infinite)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if not math.isfinite(total_steps) or total_steps <= warmup_steps:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_scheduler_config(optimizer, schedule: str, warmup_steps: int, total_steps: float) -> dict:
    """What ``configure_optimizers`` returns: the optimizer and, per step, its LR multiplier.

    schedule: "constant" (after the warmup) or "cosine" (decay to 10% at ``total_steps``).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}.")
    total = total_steps if schedule == "cosine" else math.inf
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, functools.partial(warmup_cosine, warmup_steps=warmup_steps, total_steps=total)
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def configure_adamw(module, betas: tuple[float, float] = (0.9, 0.95)) -> dict:
    """The one optimiser set-up of genlab's models, for ``configure_optimizers``.

    Reads ``lr``, ``weight_decay`` and, when present, ``warmup_steps`` and ``schedule``
    ("constant" or "cosine" over the run) from ``module.hparams``: AdamW with decay on
    matrices only, stepped per optimizer step. The fused kernel where torch has one for the
    device, except under a mixed-precision trainer (Lightning refuses gradient clipping with
    an optimizer that unscales gradients itself, as the fused one does): ``foreach`` there.
    """
    hp = module.hparams
    trainer = getattr(module, "_trainer", None)
    mixed = trainer is not None and isinstance(trainer.precision_plugin, MixedPrecision)
    optimizer = adamw_with_decay_groups(
        module, hp.lr, hp.get("weight_decay", 0.0), betas=betas, fused=False if mixed else None
    )
    schedule = hp.get("schedule", "constant")
    total = module.trainer.estimated_stepping_batches if schedule == "cosine" else float("inf")
    return lr_scheduler_config(optimizer, schedule, hp.get("warmup_steps", 0), total)


def step_is_logged(module, optimizer_steps: int = 1) -> bool:
    """Whether the training step now running is one whose per-step metrics are read.

    That is a step the trainer's loggers record (Lightning's own rule: every
    ``log_every_n_steps`` batches, or when the trainer stops; every step under
    ``fast_dev_run``), or the run's last step, so that ``trainer.callback_metrics`` ends with
    the last step's values. Lightning writes a step's ``on_step`` metrics to the loggers only
    on those steps; in between, a value logged with ``self.log`` reaches only
    ``callback_metrics`` and the progress bar, which then show the latest logged step's value
    (at most ``log_every_n_steps - 1`` batches old). On a CPU each ``self.log`` call costs about
    0.4 ms (Lightning moves its result record to the value's device), more than a small
    model's whole forward pass, so genlab's small models log per-step metrics only here.

    optimizer_steps: optimizer steps one batch makes (``trainer.global_step`` counts them;
    a GAN makes ``d_steps + 1``). Without a trainer (a step called by hand) the answer is True.
    """
    trainer = getattr(module, "_trainer", None)
    if trainer is None:
        return True
    connector = getattr(trainer, "_logger_connector", None)
    if connector is not None and hasattr(type(connector), "should_update_logs"):
        recorded = bool(connector.should_update_logs) or bool(trainer.fast_dev_run)
    else:  # another Lightning: the same rule from the public counters
        every = int(trainer.log_every_n_steps)
        recorded = every > 0 and (trainer.global_step // max(1, optimizer_steps) + 1) % every == 0
    return recorded or _last_step(trainer, optimizer_steps)


def _last_step(trainer, optimizer_steps: int) -> bool:
    """Whether the batch now training is the run's last one (by ``max_steps`` or ``max_epochs``)."""
    if trainer.max_steps is not None and trainer.max_steps > 0 \
            and trainer.global_step + max(1, optimizer_steps) >= trainer.max_steps:
        return True
    max_epochs = trainer.max_epochs
    return bool(max_epochs is not None and max_epochs > 0 and trainer.is_last_batch
                and trainer.current_epoch + 1 >= max_epochs)


def metrics_csv_path(module) -> Path | None:
    """The ``metrics.csv`` of the module's CSVLogger, if it is attached and the file exists."""
    trainer = getattr(module, "_trainer", None)
    if trainer is None:
        return None
    for logger in getattr(trainer, "loggers", []):
        log_dir = getattr(logger, "log_dir", None)
        if log_dir and (Path(log_dir) / "metrics.csv").is_file():
            return Path(log_dir) / "metrics.csv"
    return None
