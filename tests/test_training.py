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
