"""Training set-up shared by ``genlab fit``, ``genlab demo`` and the lab notebooks.

* **The registry.** A LightningModule in ``genlab.models`` that declares ``fit_name`` (and
  ``datamodule_class``) is ``genlab fit <fit_name>``; its defaults are
  ``genlab/configs/<fit_name>.yaml``. Nothing else lists the models.
* **Settings.** ``settings(name, small_model=..., small_data=...)`` reads that YAML and,
  under ``GENLAB_SMALL=1`` (CI), shrinks it, so a notebook trains with the library's tuned
  defaults and stays fast in CI.
* **Trainers.** ``make_trainer(name, **trainer_args)`` is the one place that picks the
  precision (``16-mixed`` on a GPU, ``32-true`` on a CPU), the logger, the progress bar and
  the callbacks, and silences Lightning's advertisements.

    from genlab import training
    model_args, data_args, trainer_args = training.settings("gpt", small_model=dict(n_layer=1))
    trainer = training.make_trainer("gpt", **trainer_args)
    trainer.fit(model, datamodule=data)
    training.loss_figure(trainer)
"""
from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from genlab.settings import pick, small_settings

__all__ = [
    "CONFIG_DIR",
    "Entry",
    "registry",
    "entry",
    "load_config",
    "settings",
    "default_precision",
    "make_trainer",
    "loss_figure",
    "quiet_lightning",
    "SMALL",
    "pick",
]

CONFIG_DIR = Path(__file__).parent / "configs"
#: True under GENLAB_SMALL=1: tiny runs (CI executes every notebook this way).
SMALL = small_settings()
#: Trainer options a notebook may take from a config (logger and callbacks are make_trainer's job).
TRAINER_KEYS = ("max_steps", "max_epochs", "val_check_interval", "check_val_every_n_epoch", "limit_train_batches",
                "limit_val_batches", "num_sanity_val_steps", "log_every_n_steps", "gradient_clip_val",
                "gradient_clip_algorithm", "accumulate_grad_batches")


@dataclass(frozen=True)
class Entry:
    """A model ``genlab fit`` can train: its classes, its YAML and its figure writer."""

    name: str
    model_class: type
    datamodule_class: type
    config_path: Path
    figures: str | Callable | None = None  # "module:function" or a function (model, datamodule, out_dir)

    def write_figures(self, model, datamodule, out_dir: Path) -> list[Path]:
        """Draw the run's figures into ``out_dir`` with the model's figure writer; the files written."""
        writer = self.figures
        if writer is None:
            return []
        if isinstance(writer, str):
            module, _, attr = writer.partition(":")
            writer = getattr(importlib.import_module(module), attr)
        return list(writer(model, datamodule, Path(out_dir)))


def registry() -> dict[str, Entry]:
    """Every LightningModule in ``genlab.models`` that declares ``fit_name``, by that name."""
    import lightning as L

    import genlab.models as models

    found: dict[str, Entry] = {}
    for info in pkgutil.iter_modules(models.__path__, prefix="genlab.models."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            name = getattr(obj, "fit_name", None) if isinstance(obj, type) else None
            if not name or obj.__module__ != module.__name__ or not issubclass(obj, L.LightningModule):
                continue
            if name in found and found[name].model_class is not obj:
                raise RuntimeError(f"two models declare fit_name={name!r}: {found[name].model_class} and {obj}")
            found[name] = Entry(name, obj, obj.datamodule_class, CONFIG_DIR / f"{name}.yaml",
                                getattr(obj, "figures", None))
    return dict(sorted(found.items()))


def entry(name: str) -> Entry:
    """The registry entry of ``name``; an unknown name lists the known ones."""
    models = registry()
    if name not in models:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(models)}.")
    return models[name]


def load_config(name: str) -> dict:
    """The YAML defaults of ``genlab fit <name>`` as a dict (``trainer``, ``model``, ``data``)."""
    import yaml

    path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
        raise ValueError(f"no config {path.name} in {CONFIG_DIR}; known configs: {known}.")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def settings(name: str, small_model: Mapping | None = None, small_data: Mapping | None = None,
             small_trainer: Mapping | None = None, small_steps: int = 20,
             small: bool | None = None) -> tuple[dict, dict, dict]:
    """``(model_args, data_args, trainer_args)`` from the YAML of ``genlab fit <name>``.

    Under small settings (``GENLAB_SMALL=1``, or ``small=True``) the ``small_*`` overrides are
    applied and the run is cut to ``small_steps`` steps with a validation at its end.
    ``trainer_args`` holds only plain options (see ``TRAINER_KEYS``); ``make_trainer`` adds
    the logger, the callbacks and the precision.
    """
    config = load_config(name)
    model, data = dict(config.get("model") or {}), dict(config.get("data") or {})
    trainer = {k: v for k, v in (config.get("trainer") or {}).items() if k in TRAINER_KEYS}
    if SMALL if small is None else small:
        model.update(small_model or {})
        data.update(small_data or {})
        trainer.update(max_steps=small_steps, val_check_interval=small_steps, limit_val_batches=2)
        trainer.update(small_trainer or {})
    return model, data, trainer


def default_precision() -> str:
    """``16-mixed`` on a CUDA GPU, ``32-true`` elsewhere (a CPU would swap 16-mixed for bf16)."""
    import torch

    return "16-mixed" if torch.cuda.is_available() else "32-true"


class _DropNoise(logging.Filter):
    """Drops Lightning's advertisements and device banners; keeps everything else."""

    NOISE = ("💡", "GPU available", "TPU available", "HPU available", "LOCAL_RANK", "You are using a CUDA device",
             "`Trainer.fit` stopped:", "Seed set to", "`Trainer(limit_")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.NOISE)


def quiet_lightning() -> None:
    """Silence what a student need not read: tips, device banners, known harmless warnings."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.fabric.utilities.seed"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in log.filters):
            log.addFilter(_DropNoise())
    for pattern in (".*does not have many workers.*", ".*LightningCLI.s args parameter is intended.*", ".*isinstance\\(treespec, LeafSpec\\).*",
                    ".*LeafSpec.*is deprecated.*", ".*GPU available but not used.*",
                    ".*Checkpoint directory .* exists and is not empty.*"):
        warnings.filterwarnings("ignore", message=pattern)
    os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")


def make_trainer(name: str, *, root: str | Path = "runs", precision: str | None = None,
                 callbacks: Iterable = (), checkpoint: bool = False, progress: bool = True,
                 **trainer_args):
    """A Lightning ``Trainer`` for a run of ``name``, logging to ``<root>/<name>/version_N/``.

    ``precision`` defaults to ``default_precision()``. ``checkpoint=True`` keeps the best
    checkpoint by ``val_loss``. The progress bar counts steps across epochs.
    """
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from genlab.progress import StepProgressBar

    quiet_lightning()
    callbacks = list(callbacks)
    if progress:
        callbacks.append(StepProgressBar())
    if checkpoint:
        callbacks.append(ModelCheckpoint(monitor="val_loss", mode="min", save_last=True))
    trainer_args.setdefault("check_val_every_n_epoch", None)
    return L.Trainer(
        precision=precision or default_precision(),
        logger=CSVLogger(save_dir=str(root), name=name),
        callbacks=callbacks,
        enable_progress_bar=progress,
        enable_checkpointing=checkpoint,
        enable_model_summary=False,
        **trainer_args,
    )


def loss_figure(trainer, keys: Iterable[str] | None = None, title: str | None = None):
    """Training and validation curves of ``trainer``'s CSV log (a matplotlib Figure)."""
    from genlab import plots

    logger = trainer.logger
    path = Path(logger.log_dir) / "metrics.csv"
    if hasattr(logger, "experiment"):
        logger.experiment.save()  # flush what the CSV logger still buffers
    if not path.is_file():
        raise ValueError(f"{path} does not exist yet: train first (trainer.fit) before drawing its curves.")
    return plots.loss_curves(path, keys=list(keys) if keys else None, title=title)
