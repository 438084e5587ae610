"""The VAE LightningModule: registry, injected loss parts, logged metrics, β warm-up, training, fp16, figures."""
import math

import lightning as L
import pytest
import torch

from genlab import training
from genlab.data import DigitsDataModule
from genlab.models.vae import VAE
from genlab.nn import vae as parts


def _trainer(steps, **kwargs):
    kwargs.setdefault("limit_val_batches", 2)
    return L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                     val_check_interval=steps, check_val_every_n_epoch=None, **kwargs)


def test_registered_for_genlab_fit_with_its_config():
    entry = training.entry("vae")
    assert entry.model_class is VAE and entry.datamodule_class is DigitsDataModule
    assert entry.config_path.is_file()
    config = training.load_config("vae")
    assert config["model"]["latent_dim"] == 2
    VAE(image_shape=(1, 8, 8), **config["model"])  # the YAML's model section is a valid constructor call


def test_forward_shapes_and_loss_parts_add_up():
    torch.manual_seed(0)
    model = VAE()
    x = (torch.rand(5, 1, 8, 8) > 0.5).float()
    logits, mu, logvar = model(x)
    assert logits.shape == x.shape and mu.shape == logvar.shape == (5, 2)
    eps = torch.randn(5, 2)
    out = model.loss_parts(x, eps=eps, beta=3.0)
    torch.testing.assert_close(out["nelbo"], out["recon"] + out["kl"])
    torch.testing.assert_close(out["loss"].detach(), out["recon"] + 3.0 * out["kl"])
    torch.testing.assert_close(out["bpd"], out["nelbo"] / (64 * math.log(2)))
    mu, logvar = model.encode(x)
    want = parts.elbo_loss(x, model.decode(parts.reparameterize(mu, logvar, eps)), mu, logvar)
    torch.testing.assert_close(out["nelbo"], want.detach())


def test_injected_loss_parts_are_the_ones_called():
    calls = {"reparameterize": 0, "kl_divergence": 0, "elbo_loss": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    model = VAE(**{name: counted(name, getattr(parts, name)) for name in calls})
    model.loss_parts((torch.rand(3, 1, 8, 8) > 0.5).float(), beta=0.5)
    assert calls["reparameterize"] == 1 and calls["kl_divergence"] >= 1 and calls["elbo_loss"] == 2
    assert "reparameterize" not in model.hparams  # callables stay out of the saved hyperparameters


def test_kl_warmup_ramps_beta_linearly():
    model = VAE(beta=2.0, kl_warmup_steps=10)
    trainer = _trainer(1)
    trainer.fit(model, DigitsDataModule(batch_size=16))
    assert model.current_beta() == pytest.approx(2.0 * 2 / 10)  # global_step is 1 after one step
    assert VAE(beta=2.0).current_beta() == 2.0
    with pytest.raises(ValueError, match="beta"):
        VAE(beta=-1.0)


def test_short_training_improves_the_held_out_bound_and_logs_every_part():
    L.seed_everything(0, verbose=False)
    data = DigitsDataModule(batch_size=64)
    model = VAE()
    before = model.evaluate(data.val_dataloader())
    trainer = _trainer(150)
    trainer.fit(model, data)
    after = model.evaluate(data.val_dataloader())
    assert after["nelbo"] < before["nelbo"] - 5, (before, after)
    metrics = trainer.callback_metrics
    for split in ("train", "val"):
        for name in ("loss", "recon", "kl", "nelbo", "bpd"):
            assert f"{split}_{name}" in metrics, (split, name, sorted(metrics))
    test = trainer.test(model, data, verbose=False)[0]
    assert {"test_nelbo", "test_bpd", "test_kl", "test_recon"} <= set(test)
    assert model.evaluate(data.test_dataloader(), seed=1) == model.evaluate(data.test_dataloader(), seed=1)


def test_conv_architecture_trains_a_step_on_mnist_sized_images():
    model = VAE(image_shape=(1, 28, 28), architecture="conv")
    x = (torch.rand(4, 1, 28, 28) > 0.5).float()
    loss = model.loss_parts(x)["loss"]
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_generation_helpers_shapes():
    model = VAE().eval()
    x = torch.rand(3, 1, 8, 8)
    assert model.reconstruct(x).shape == (3, 1, 8, 8)
    samples = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 1, 8, 8) and 0 <= samples.min() and samples.max() <= 1
    assert torch.equal(samples, model.sample(5, generator=torch.Generator().manual_seed(0)))
    path = model.interpolate(x[0], x[1], steps=7)
    assert path.shape == (7, 1, 8, 8)
    torch.testing.assert_close(path[0], model.reconstruct(x[:1])[0])


def test_loss_is_finite_under_cpu_float16_autocast():
    torch.manual_seed(0)
    model = VAE()
    x = (torch.rand(8, 1, 8, 8) > 0.5).float()
    with torch.autocast("cpu", dtype=torch.float16):
        out = model.loss_parts(x)
    assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])


def test_run_figures_are_written(tmp_path):
    model = VAE()
    data = DigitsDataModule(batch_size=32)
    from genlab.plots.vae import save_run_figures

    written = save_run_figures(model, data, tmp_path)
    assert {p.name for p in written} == {"latent_grid.png", "latent_scatter.png", "interpolation.png",
                                         "reconstructions.png"}
    assert all(p.stat().st_size > 1000 for p in written)


@pytest.mark.gpu
def test_trains_20_steps_with_16_mixed_on_gpu():
    L.seed_everything(0, verbose=False)
    model = VAE()
    trainer = L.Trainer(max_steps=20, accelerator="gpu", devices=1, precision="16-mixed", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(model, DigitsDataModule(batch_size=64))
    assert torch.isfinite(trainer.callback_metrics["train_loss"])
    assert all(torch.isfinite(p).all() for p in model.parameters())


class _Losses(L.Callback):
    """Records the loss each training step returned."""

    def __init__(self):
        self.losses = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))


def _csv_rows(trainer):
    import csv
    from pathlib import Path

    trainer.logger.save()
    with open(Path(trainer.logger.log_dir) / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_train_metrics_are_logged_on_the_loggers_steps_and_the_last_one(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    L.seed_everything(0, verbose=False)
    losses = _Losses()
    trainer = L.Trainer(max_steps=7, log_every_n_steps=3, accelerator="cpu", logger=CSVLogger(tmp_path),
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0, callbacks=[losses])
    trainer.fit(VAE(), DigitsDataModule(batch_size=64))
    rows = [r for r in _csv_rows(trainer) if r.get("train_nelbo")]
    assert [int(r["step"]) for r in rows] == [2, 5]  # every 3rd batch, as Lightning's logger writes
    assert [float(r["train_loss"]) for r in rows] == pytest.approx([losses.losses[2], losses.losses[5]])
    metrics = trainer.callback_metrics
    assert {"train_loss", "train_recon", "train_kl", "train_nelbo", "train_bpd"} <= set(metrics)
    assert float(metrics["train_loss"]) == pytest.approx(losses.losses[-1])  # the last step's, not a stale one
