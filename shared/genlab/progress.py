"""A progress bar a learner can read: one bar over the whole run, not one per epoch.

Lightning's ``TQDMProgressBar`` restarts at every epoch and shows the logger's ``v_num``.
``StepProgressBar`` counts optimizer steps up to ``max_steps`` (or batches over all epochs
when only ``max_epochs`` is set) and shows the metrics logged with ``prog_bar=True``.
"""
from __future__ import annotations

from lightning.pytorch.callbacks import TQDMProgressBar

__all__ = ["StepProgressBar"]


class StepProgressBar(TQDMProgressBar):
    """One training bar for the whole run: ``step x / max_steps`` with the progress-bar metrics."""

    def __init__(self, refresh_rate: int = 10):
        super().__init__(refresh_rate=refresh_rate)

    def _run_total(self, trainer) -> float | None:
        if trainer.max_steps and trainer.max_steps > 0:
            return trainer.max_steps
        if trainer.max_epochs and trainer.max_epochs > 0 and self.total_train_batches != float("inf"):
            return trainer.max_epochs * self.total_train_batches
        return None

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        self.train_progress_bar.reset(total=self._run_total(trainer))
        self.train_progress_bar.set_description("Training")

    def on_train_epoch_start(self, trainer, *_) -> None:
        """Keep counting across epochs (the parent resets the bar here)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n = trainer.global_step if trainer.max_steps and trainer.max_steps > 0 else trainer.fit_loop.epoch_loop.total_batch_idx + 1
        bar = self.train_progress_bar
        if bar is not None and (n % self.refresh_rate == 0 or n == bar.total):
            bar.n = n
            bar.set_postfix(self.get_metrics(trainer, pl_module))
            bar.refresh()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not self.train_progress_bar.disable:
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics
