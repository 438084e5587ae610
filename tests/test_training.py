"""genlab.training: the registry, settings from the YAML, small mode, and the trainer it builds."""
import lightning as L
import pytest
import torch

from genlab import training
from genlab.progress import StepProgressBar


def test_registry_entries_have_configs_and_datamodules():
    reg = training.registry()
    assert {"gpt", "transformer"} <= set(reg)
    for name, entry in reg.items():
        assert entry.config_path.is_file(), name
        assert issubclass(entry.datamodule_class, L.LightningDataModule), name


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'nope'; known models: .*gpt"):
        training.entry("nope")


def test_settings_follow_the_yaml_and_shrink_in_small_mode():
    config = training.load_config("gpt")
    model, data, trainer = training.settings("gpt", small_model=dict(n_layer=1), small=False)
    assert model == config["model"] and data == config["data"]
    assert trainer["max_steps"] == config["trainer"]["max_steps"]
    assert "logger" not in trainer and "callbacks" not in trainer
    model, data, trainer = training.settings("gpt", small_model=dict(n_layer=1), small_data=dict(batch_size=2),
                                             small_steps=7, small=True)
    assert model["n_layer"] == 1 and data["batch_size"] == 2
    assert trainer["max_steps"] == 7 and trainer["val_check_interval"] == 7


def test_make_trainer_picks_precision_logger_and_progress(tmp_path):
    trainer = training.make_trainer("gpt", root=tmp_path, max_steps=3)
    assert trainer.logger.save_dir == str(tmp_path) and trainer.logger.name == "gpt"
    assert any(isinstance(c, StepProgressBar) for c in trainer.callbacks)
    want = "16-mixed" if torch.cuda.is_available() else "32-true"
    assert trainer.precision == want


def test_a_short_run_logs_and_draws_its_loss_curves(tmp_path, capsys):
    from genlab.data import CharTextDataModule
    from genlab.models import GPT

    L.seed_everything(0, verbose=False)
    dm = CharTextDataModule(block_size=16, batch_size=4)
    model = GPT(dm.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16)
    trainer = training.make_trainer("gpt", root=tmp_path, max_steps=6, val_check_interval=3, limit_val_batches=1,
                                    log_every_n_steps=1)
    trainer.fit(model, datamodule=dm)
    fig = training.loss_figure(trainer, keys=["train_loss", "val_loss"])
    labels = {line.get_label() for line in fig.axes[0].lines}
    assert labels == {"train_loss", "val_loss"}
    err = capsys.readouterr().err
    assert "litlogger" not in err and "v_num" not in err


def test_loss_figure_before_training_says_what_to_do(tmp_path):
    trainer = training.make_trainer("gpt", root=tmp_path, max_steps=1)
    with pytest.raises(ValueError, match="train first"):
        training.loss_figure(trainer)


class _Tiny(L.LightningModule):
    """A linear regression on random data, logging train_loss (bar) and val_loss."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader(n=16):
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g))
    return torch.utils.data.DataLoader(data, batch_size=4)   # 4 batches an epoch


def test_step_bar_counts_the_whole_run_across_epochs_without_v_num(tmp_path, capsys):
    L.seed_everything(0, verbose=False)
    bar = StepProgressBar(refresh_rate=1)
    trainer = L.Trainer(max_steps=7, callbacks=[bar], logger=L.pytorch.loggers.CSVLogger(tmp_path), val_check_interval=2,
                        check_val_every_n_epoch=None, limit_val_batches=1, enable_checkpointing=False, log_every_n_steps=1,
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(_Tiny(), _loader(), _loader())
    assert trainer.current_epoch >= 1  # the run spans two epochs...
    assert bar.train_progress_bar.total == 7 and bar.train_progress_bar.n == 7  # ...and one bar counts it all
    metrics = bar.get_metrics(trainer, trainer.lightning_module)
    assert "v_num" not in metrics and {"train_loss", "val_loss"} <= set(metrics)
    out = capsys.readouterr()
    shown = out.out + out.err
    assert "step 7/7" in shown and "step 3/7" in shown
    assert "v_num" not in shown and "Epoch 1" not in shown
    assert "Validation DataLoader" not in shown  # validation shows on the one bar, not a second one


def test_step_bar_smooths_training_metrics_only():
    bar = StepProgressBar(smoothing=0.5)
    bar._update_smoothed({"train_loss": 1.0, "val_loss": 5.0, "d_loss": 2.0, "modes_covered": 3.0})
    bar._update_smoothed({"train_loss": 2.0, "val_loss": 9.0, "d_loss": 4.0, "modes_covered": 8.0})
    assert bar._smoothed == {"train_loss": 1.5, "d_loss": 3.0}
    with pytest.raises(ValueError, match="smoothing must be in"):
        StepProgressBar(smoothing=0)


def test_step_bar_total_falls_back_to_epochs_times_batches(tmp_path):
    bar = StepProgressBar(refresh_rate=1)
    trainer = L.Trainer(max_epochs=2, callbacks=[bar], logger=False, enable_checkpointing=False, log_every_n_steps=1,
                        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(_Tiny(), _loader(), _loader())
    assert bar.train_progress_bar.total == 8 and bar.train_progress_bar.n == 8
