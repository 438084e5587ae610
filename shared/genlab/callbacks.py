"""Lightning callbacks shared by the labs.

``LossScaleMonitor`` watches the ``torch.amp.GradScaler`` that Lightning uses under
``precision="16-mixed"``: it logs the loss scale and counts the optimizer steps the scaler
skipped because the gradients held inf or NaN. Without a scaler (``32-true``, ``bf16-mixed``,
and so on a CPU, where Lightning replaces 16-mixed with bf16-mixed) it does nothing.

    trainer = L.Trainer(precision="16-mixed", callbacks=[LossScaleMonitor()])
    trainer.fit(model, datamodule=data)
    monitor.skipped_steps, monitor.scales
"""
from __future__ import annotations

import lightning as L

__all__ = ["LossScaleMonitor"]


class LossScaleMonitor(L.Callback):
    """Log ``loss_scale`` and ``skipped_steps`` when the trainer scales the loss.

    A step was skipped exactly when the scaler lowered the scale after it (GradScaler backs
    off only on inf/NaN), so the monitor compares the scale before each optimizer step with
    the scale after it. This also works with manual optimization and several optimizers
    (lab 05's GAN): every ``optimizer.step()`` goes through the same hook.

    Attributes:
        scales: the scale each optimizer step used, in order.
        skipped_steps: how many of those steps were skipped.
        enabled: whether a scaler was found (False: the callback is a no-op).
    """

    def __init__(self, log_metrics: bool = True):
        super().__init__()
        self.log_metrics = bool(log_metrics)
        self.scales: list[float] = []
        self.skipped_steps = 0
        self.enabled = False
        self._pending: float | None = None  # the scale of the last step, not yet compared

    @staticmethod
    def _scaler(trainer):
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        if scaler is None or not scaler.is_enabled():
            return None
        return scaler

    def _settle(self, scaler) -> None:
        """Compare the last step's scale with the scale now; a drop means it was skipped."""
        if self._pending is not None:
            if scaler.get_scale() < self._pending:
                self.skipped_steps += 1
            self._pending = None

    def on_fit_start(self, trainer, pl_module) -> None:
        self.enabled = self._scaler(trainer) is not None
        self._pending = None

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        scaler = self._scaler(trainer)
        if scaler is None:
            return
        self._settle(scaler)  # a second optimizer in the same batch: the first one is done
        self._pending = scaler.get_scale()
        self.scales.append(self._pending)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        scaler = self._scaler(trainer)
        if scaler is None or self._pending is None:
            return
        scale = self._pending
        self._settle(scaler)
        if self.log_metrics:
            pl_module.log("loss_scale", scale, on_step=True, on_epoch=False, prog_bar=False)
            pl_module.log("skipped_steps", float(self.skipped_steps), on_step=True, on_epoch=False)

    def state_dict(self) -> dict:
        return {"scales": list(self.scales), "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state_dict: dict) -> None:
        self.scales = list(state_dict.get("scales", []))
        self.skipped_steps = int(state_dict.get("skipped_steps", 0))
