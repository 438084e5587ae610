"""A progress bar a learner can read: one bar over the whole run, not one per epoch.

Lightning's ``TQDMProgressBar`` restarts at every epoch, opens a second bar at every
validation and shows the logger's ``v_num``. ``StepProgressBar`` draws one line for the whole
run::

    Training  42%|████▏     | step 168/400 [00:21<00:29, train_loss=1.93, val_loss=2.01]

It counts optimizer steps up to ``max_steps`` (or batches over all epochs when only
``max_epochs`` is set), shows the training metrics logged with ``prog_bar=True`` smoothed
(an exponential moving average over the bar's refreshes, so the number a learner reads
is a trend, not one noisy batch) and the latest validation metrics as they are, and says
"Validating" while a validation runs instead of drawing a second bar.
"""
from __future__ import annotations

import sys

from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

__all__ = ["StepProgressBar", "run_total", "run_position", "is_smoothed"]

#: What the bar shows: the step count against the run's total, no per-batch rate.
BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar:20}| step {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"
#: The bar's label while training and while validating (one width, so the bar does not jump).
TRAINING, VALIDATING = "Training  ", "Validating"
#: Metric names never smoothed: they are measured on held-out data.
UNSMOOTHED_PREFIXES = ("val_", "test_")


def is_smoothed(name: str) -> bool:
    """Whether the bar shows ``name`` as a moving average: per-step training metrics
    (``train_*``, ``*loss`` such as a GAN's ``d_loss``), not held-out or per-epoch ones."""
    return not name.startswith(UNSMOOTHED_PREFIXES) and (name.startswith("train_") or name.endswith("loss"))


def run_total(trainer) -> int | None:
    """The length of the whole run in the bar's unit: ``max_steps``, else epochs x batches."""
    if trainer.max_steps and trainer.max_steps > 0:
        return int(trainer.max_steps)
    batches = trainer.num_training_batches
    if trainer.max_epochs and trainer.max_epochs > 0 and batches != float("inf"):
        return int(trainer.max_epochs * batches)
    return None


def run_position(trainer) -> int:
    """Where the run is, in the unit of ``run_total``: optimizer steps, or batches seen."""
    if trainer.max_steps and trainer.max_steps > 0:
        return int(trainer.global_step)
    return int(trainer.fit_loop.epoch_loop.total_batch_idx + 1)


class StepProgressBar(TQDMProgressBar):
    """One training bar for the whole run: ``step x/max_steps``, smoothed training metrics.

    Args:
        refresh_rate: redraw the bar every this many steps (0 hides it).
        smoothing: weight of the newest value in the moving average of each training
            metric (1.0: no smoothing).
    """

    def __init__(self, refresh_rate: int = 10, smoothing: float = 0.3):
        super().__init__(refresh_rate=refresh_rate)
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1] (the weight of the newest value), got {smoothing}")
        self.smoothing = float(smoothing)
        self._smoothed: dict[str, float] = {}
        self._shown = 0   # the position the bar last showed

    # ------------------------------------------------------------------ the bar
    def init_train_tqdm(self) -> Tqdm:
        return Tqdm(desc=TRAINING, total=run_total(self.trainer), position=2 * self.process_position,
                    disable=self.is_disabled, leave=True, dynamic_ncols=True, smoothing=0, bar_format=BAR_FORMAT,
                    file=sys.stdout)

    def init_validation_tqdm(self) -> Tqdm:
        """During ``fit`` validation shows on the training bar; ``trainer.validate`` keeps its own bar."""
        if self.trainer.state.fn == "fit":
            return Tqdm(disable=True)
        return super().init_validation_tqdm()

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)   # a new bar (init_train_tqdm), its total set
        self._smoothed, self._shown = {}, run_position(trainer)   # not 0 when resuming from a checkpoint
        self.train_progress_bar.n = self._shown

    def on_train_epoch_start(self, trainer, *_) -> None:
        """Keep counting across epochs (the parent resets the bar here)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n = run_position(trainer)
        bar = self.train_progress_bar
        if bar is None or bar.disable:
            return
        if n - self._shown >= self.refresh_rate or n == bar.total:
            self._show(trainer, pl_module, n, smooth=True)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """Nothing to redraw at an epoch's end: the bar counts steps (the parent redraws here)."""

    def on_validation_start(self, trainer, pl_module) -> None:
        super().on_validation_start(trainer, pl_module)
        bar = self._train_progress_bar
        if trainer.state.fn == "fit" and not trainer.sanity_checking and bar is not None and not bar.disable:
            bar.n = self._shown = run_position(trainer)
            bar.set_description_str(VALIDATING)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.state.fn == "fit" and self._train_progress_bar is not None:
            self.train_progress_bar.set_description_str(TRAINING)
        super().on_validation_end(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        """Show where the run stopped (``max_time`` or early stopping may end it before ``max_steps``)."""
        if self._train_progress_bar is not None and not self.train_progress_bar.disable:
            self._show(trainer, pl_module, run_position(trainer), smooth=False)
        super().on_train_end(trainer, pl_module)

    def _show(self, trainer, pl_module, n: int, smooth: bool) -> None:
        bar = self.train_progress_bar
        if smooth:
            self._update_smoothed(trainer.progress_bar_metrics)
        bar.n = n
        self._shown = n
        bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
        bar.refresh()

    # -------------------------------------------------------------- the metrics
    def _update_smoothed(self, metrics) -> None:
        for key, value in metrics.items():
            if not is_smoothed(key) or not isinstance(value, (int, float)):
                continue
            old = self._smoothed.get(key)
            self._smoothed[key] = float(value) if old is None else old + self.smoothing * (float(value) - old)

    def get_metrics(self, trainer, pl_module) -> dict:
        """The progress-bar metrics without ``v_num``, training ones as their moving average."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        for key, value in self._smoothed.items():
            if key in metrics:
                metrics[key] = value
        return metrics
