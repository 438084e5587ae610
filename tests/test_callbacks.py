"""LossScaleMonitor: logs the loss scale and counts skipped steps under 16-mixed; a no-op otherwise.

On a CPU, Lightning turns precision="16-mixed" into bf16-mixed (no scaler), so the 16-mixed
case is built by hand: Lightning's MixedPrecision plugin with a CPU GradScaler (torch's CPU
float16 autocast is emulated but real). The steps to poison are chosen in advance, so the
expected count of skipped steps is known exactly, and it is checked against the scaler's
own scale history.
"""
from __future__ import annotations

import warnings

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch.utils.data import DataLoader, TensorDataset

from genlab.callbacks import LossScaleMonitor


class Poisoned(L.LightningModule):
    """A linear regression whose loss is inf at the listed global steps (automatic optimization)."""

    def __init__(self, poison=()):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.poison = set(poison)
        self.logged = []

    def training_step(self, batch, batch_idx):
        (x,) = batch
        loss = self.layer(x).float().pow(2).mean()
        if self.global_step in self.poison:
            loss = loss * float("inf")
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class TwoOptimizers(L.LightningModule):
    """Manual optimization with two optimizers per batch, the second one poisoned on odd batches."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.a, self.b = torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        (x,) = batch
        opt_a, opt_b = self.optimizers()
        for opt, layer, poison in ((opt_a, self.a, False), (opt_b, self.b, batch_idx % 2 == 1)):
            loss = layer(x).float().pow(2).mean() * (float("inf") if poison else 1.0)
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()

    def configure_optimizers(self):
        return torch.optim.SGD(self.a.parameters(), lr=0.01), torch.optim.SGD(self.b.parameters(), lr=0.01)


def _loader(n=64):
    return DataLoader(TensorDataset(torch.randn(n, 4, generator=torch.Generator().manual_seed(0))), batch_size=8)


def _trainer(steps, plugins=None, precision=None, callbacks=()):
    kwargs = dict(plugins=plugins) if plugins else dict(precision=precision or "32-true")
    return L.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, callbacks=list(callbacks), **kwargs)


def _fp16_plugin(init_scale=2.0 ** 8, growth_interval=3):
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale, growth_interval=growth_interval)
    return MixedPrecision("16-mixed", "cpu", scaler=scaler)


def test_counts_exactly_the_poisoned_steps_and_logs_the_scale():
    monitor = LossScaleMonitor()
    plugin = _fp16_plugin()
    model = Poisoned(poison=(2, 5, 6))
    trainer = _trainer(8, plugins=[plugin], callbacks=[monitor])
    trainer.fit(model, _loader())
    assert monitor.enabled
    assert monitor.skipped_steps == 3
    assert len(monitor.scales) == 8
    # the scale each step used: 2^8, halved after each poisoned step (never 3 clean steps in a row)
    assert monitor.scales == [256.0, 256.0, 256.0, 128.0, 128.0, 128.0, 64.0, 32.0]
    assert plugin.scaler.get_scale() == 32.0
    assert trainer.callback_metrics["skipped_steps"].item() == 3.0
    assert trainer.callback_metrics["loss_scale"].item() == 32.0


def test_growth_is_not_a_skip():
    monitor = LossScaleMonitor()
    trainer = _trainer(7, plugins=[_fp16_plugin(growth_interval=2)], callbacks=[monitor])
    trainer.fit(Poisoned(), _loader())
    assert monitor.skipped_steps == 0
    assert monitor.scales == [256.0, 256.0, 512.0, 512.0, 1024.0, 1024.0, 2048.0]


def test_manual_optimization_with_two_optimizers():
    monitor = LossScaleMonitor(log_metrics=False)
    trainer = _trainer(8, plugins=[_fp16_plugin(growth_interval=1000)], callbacks=[monitor])
    trainer.fit(TwoOptimizers(), _loader())
    # 8 optimizer steps = 4 batches x 2 optimizers; the second optimizer is poisoned on batches 1 and 3
    assert len(monitor.scales) == 8
    assert monitor.skipped_steps == 2
    assert "loss_scale" not in trainer.callback_metrics


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
def test_no_op_without_a_scaler(precision):
    monitor = LossScaleMonitor()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 16-mixed on a CPU: Lightning warns and uses bf16-mixed
        trainer = _trainer(4, precision=precision, callbacks=[monitor])
        trainer.fit(Poisoned(), _loader())
    assert not monitor.enabled
    assert monitor.scales == [] and monitor.skipped_steps == 0
    assert "loss_scale" not in trainer.callback_metrics


def test_state_dict_round_trip():
    monitor = LossScaleMonitor()
    monitor.scales, monitor.skipped_steps = [4.0, 2.0], 1
    other = LossScaleMonitor()
    other.load_state_dict(monitor.state_dict())
    assert other.scales == [4.0, 2.0] and other.skipped_steps == 1
