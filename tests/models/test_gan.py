"""genlab.models.gan: the step order (watched by the call_order probe), the reference update
against an independent plain-torch loop, loss scaling and skipped steps, coverage logging,
figures and ``genlab fit``."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import lightning as L
import pytest
import torch

from genlab import training
from genlab.checks import lab05, lab05_bugs
from genlab.data import DigitsDataModule, RingDataModule
from genlab.models.gan import GAN, DigitsGAN, NoisyInput, discriminator_first_step, short_run
from genlab.nn.gan import discriminator_loss, generator_loss, linear_discriminator_loss

REPO = Path(__file__).resolve().parents[2]


def _probe():
    spec = importlib.util.spec_from_file_location("call_order_probe", REPO / "autograder" / "probes" / "call_order.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _batches(seed, n, batch_size=8):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch_size, 2, generator=g) for _ in range(n)]


def _no_zero_grad_step(gan, real):
    """A buggy step: D's gradients are never cleared."""
    opt_d, opt_g = gan.optimizers()
    fake = gan.generator(gan.sample_noise(real.shape[0]))
    d_loss = gan.discriminator_loss(gan.discriminator(real), gan.discriminator(fake.detach()))
    gan.manual_backward(d_loss)
    opt_d.step()
    g_loss = gan.generator_loss(gan.discriminator(fake))
    opt_g.zero_grad()
    gan.manual_backward(g_loss)
    opt_g.step()
    return d_loss, g_loss


# ------------------------------------------------------------------ the step, watched

def test_reference_step_order_seen_by_the_probe():
    batches = _batches(0, 2)
    record = _probe().run({}, "genlab.models.gan:short_run", args=[discriminator_first_step, batches],
                          kwargs={"d_steps": 2}, watch_args=True)
    assert record["error"] is None
    names = [info["names"] for info in record["optimizers"]]
    assert names == [["discriminator"], ["generator"]]
    kinds = [(e["kind"], e.get("optimizer")) for e in record["events"]]
    one = [("zero_grad", 0), ("backward", None), ("step", 0)] * 2 + [("zero_grad", 1), ("backward", None), ("step", 1)]
    assert kinds == one * 2
    d_backward = record["events"][1]
    assert d_backward["optimizers"] == [0] and d_backward["inputs"] == ["args[1][0]"]  # D only; the real batch
    g_backward = record["events"][7]
    assert g_backward["optimizers"] == [0, 1] and g_backward["inputs"] == []  # through D into G; no real data
    assert all(e["via"] == "manual_backward" for e in record["events"] if e["kind"] == "backward")
    assert lab05_bugs.name_step_bug(record, 2, 2) is None


def test_probe_and_public_recorder_agree():
    """The public check records in process exactly what the grader's probe records in the worker."""
    for step in (discriminator_first_step, _no_zero_grad_step):
        batches = _batches(1, 3)
        a = _probe().run({}, "genlab.models.gan:short_run", args=[step, batches], watch_args=True)
        b = lab05.record_calls(short_run, step, batches)
        assert a["events"] == b["events"] and a["optimizers"] == b["optimizers"]
    assert "pile up" in lab05_bugs.name_step_bug(b, 3)


def test_probe_records_a_plain_loop_with_tensor_backward():
    probe = _probe()
    model = torch.nn.Linear(2, 1)

    def loop(x):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(2):
            opt.zero_grad()
            model(x).sum().backward()
            opt.step()
        return 1.5

    record = probe.run({}, loop, args=[torch.ones(3, 2)], watch={"model": model}, watch_args=True)
    assert record["result"] == 1.5 and record["error"] is None
    backward = [e for e in record["events"] if e["kind"] == "backward"]
    assert [e["via"] for e in backward] == ["tensor.backward"] * 2
    assert backward[0]["watched"] == ["model"] and backward[0]["inputs"] == ["args[0]"]
    assert [e["grads_from"] for e in record["events"] if e["kind"] == "step"] == [[1], [4]]
    assert torch.optim.Optimizer.zero_grad.__name__ == "zero_grad" and torch.Tensor.backward.__name__ == "backward"


@pytest.mark.parametrize("reuse", [True, False])
def test_reference_update_matches_a_plain_torch_loop(reuse):
    batches = _batches(2, 3)
    step = discriminator_first_step if reuse else (lambda gan, real: discriminator_first_step(gan, real, reuse_fakes=False))
    result = short_run(step, batches, d_steps=2)
    want = lab05_bugs.oracle_short_run(result["initial"], batches, d_steps=2, reuse_fakes=reuse)
    for name, value in want.items():
        torch.testing.assert_close(result["final"][name], value, atol=1e-6, rtol=1e-5)
    assert result["global_step"] == 3 * 3  # Lightning counts optimizer steps: 2 D + 1 G per batch
    assert lab05_bugs.name_update_bug(result["final"], result["initial"], batches, d_steps=2) is None


def test_16_mixed_with_a_loss_scaler_on_cpu():
    result = short_run(discriminator_first_step, _batches(3, 4), precision="16-mixed",
                       discriminator_loss=discriminator_loss, generator_loss=generator_loss)
    assert result["loss_scale"] is not None and result["skipped_steps"] == 0
    assert all(math.isfinite(x) for x in result["d_losses"] + result["g_losses"])


def test_a_step_skipped_for_inf_is_skipped_for_both_players():
    """D's scaled gradients overflow float16 (a huge D loss): the scaler skips D's update, and
    the GAN skips G's update of the same step, although G's own gradients are finite."""
    def huge(real_logits, fake_logits):
        return linear_discriminator_loss(real_logits, fake_logits) * 1e8

    result = short_run(discriminator_first_step, _batches(4, 2), precision="16-mixed", discriminator_loss=huge)
    assert result["skipped_steps"] == 2
    for name, value in result["initial"].items():
        assert torch.equal(result["final"][name], value), name
    normal = short_run(discriminator_first_step, _batches(4, 2), precision="16-mixed",
                       discriminator_loss=discriminator_loss, generator_loss=generator_loss)
    assert normal["skipped_steps"] == 0
    assert not torch.equal(normal["final"]["generator.net.0.weight"], normal["initial"]["generator.net.0.weight"])


def test_loss_backward_fails_under_16_mixed():
    def step(gan, real):
        opt_d, _ = gan.optimizers()
        fake = gan.generator(gan.sample_noise(real.shape[0]))
        loss = gan.discriminator_loss(gan.discriminator(real), gan.discriminator(fake.detach()))
        loss.backward()
        opt_d.step()
        return loss, loss

    with pytest.raises(AssertionError, match="_scale is None"):
        short_run(step, _batches(5, 1), precision="16-mixed")


# ------------------------------------------------------------------ the module

def test_gan_trains_on_the_ring_and_logs_coverage_every_epoch(tmp_path):
    L.seed_everything(0, verbose=False)
    data = RingDataModule(n_samples=256, n_val=64, batch_size=64)
    gan = GAN(hidden=16, n_layers=2, label_smoothing=0.1, instance_noise=0.2, noise_steps=8, ema_decay=0.9,
              eval_samples=200)
    assert isinstance(gan.discriminator, NoisyInput)
    trainer = training.make_trainer("gan", root=tmp_path, max_steps=2 * 8, progress=False, log_every_n_steps=1,
                                    limit_val_batches=1, val_check_interval=4)
    trainer.fit(gan, datamodule=data)
    assert [row["epoch"] for row in gan.coverage_history] == [0, 1]  # 4 batches per epoch, 8 batches
    row = gan.coverage_history[-1]
    assert set(row) >= {"step", "modes_covered", "high_quality", "reverse_kl", "counts"} and row["step"] == 16
    metrics = trainer.callback_metrics
    assert {"d_loss", "g_loss", "modes_covered", "high_quality", "val_d_accuracy"} <= set(metrics)
    assert gan.discriminator.std == pytest.approx(0.2 * (1 - 7 / 8))  # annealed per batch
    samples = gan.sample(10, torch.Generator().manual_seed(0))
    assert samples.shape == (10, 2) and samples.dtype == torch.float32
    ema = dict(gan.generator_ema.named_parameters())
    assert any(not torch.equal(p, ema[n]) for n, p in gan.generator.named_parameters())


def test_gan_rejects_bad_settings_and_bad_steps():
    with pytest.raises(ValueError, match="d_steps"):
        GAN(d_steps=0)
    with pytest.raises(ValueError, match="label_smoothing"):
        GAN(label_smoothing=1.0)
    with pytest.raises(TypeError, match=r"\(d_loss, g_loss\)"):
        short_run(lambda gan, real: discriminator_first_step(gan, real)[0], _batches(6, 1))


def test_label_smoothing_reaches_the_discriminator_loss():
    gan = GAN(label_smoothing=0.2)
    real, fake = torch.randn(5), torch.randn(5)
    torch.testing.assert_close(gan.discriminator_loss(real, fake), discriminator_loss(real, fake, label_smoothing=0.2))


def test_digits_gan_scales_images_and_trains(tmp_path):
    L.seed_everything(0, verbose=False)
    data = DigitsDataModule(batch_size=16)
    gan = DigitsGAN(image_shape=data.image_shape, width=8, latent_dim=4, ema_decay=0.9)
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(gan.real_from_batch((x, torch.zeros(3))), x * 2 - 1)
    trainer = training.make_trainer("gan_digits", root=tmp_path, max_steps=6, progress=False, limit_val_batches=1)
    trainer.fit(gan, datamodule=data)
    images = gan.sample(5, torch.Generator().manual_seed(0))
    assert images.shape == (5, 1, 8, 8) and images.min() >= 0 and images.max() <= 1
    mlp = DigitsGAN(architecture="mlp", hidden=16, n_layers=1, latent_dim=4)
    assert mlp.generator(torch.randn(2, 4)).shape == (2, 1, 8, 8)
    reloaded = DigitsGAN(**dict(gan.hparams))  # what load_from_checkpoint does
    assert reloaded.hparams.image_shape == (1, 8, 8)


def test_registry_and_configs():
    for name, model_class in (("gan", GAN), ("gan_digits", DigitsGAN)):
        entry = training.entry(name)
        assert entry.model_class is model_class and entry.figures is not None
        model_args, data_args, trainer_args = training.settings(name, small=False)
        data = entry.datamodule_class(**data_args)
        linked = {k: getattr(data, k) for k in model_class.linked_from_data}
        model = model_class(**model_args, **linked)
        assert model.d_steps == 1 and trainer_args["max_steps"] > 0


def test_figures_of_a_ring_run(tmp_path):
    from genlab.plots import gan as gan_plots

    data = RingDataModule()
    gan = GAN(hidden=8, n_layers=1)
    gan.coverage_history = [{"step": 80, "modes_covered": 3, "high_quality": 0.5, "counts": [1] * 8},
                            {"step": 160, "modes_covered": 6, "high_quality": 0.7, "counts": [1] * 8}]
    written = gan_plots.save_ring_figures(gan, data, tmp_path)
    assert {p.name for p in written} == {"ring.png", "coverage.png"} and all(p.stat().st_size > 0 for p in written)
    fig = gan_plots.ring_scatter(data.sample(100)[0], data.centers, data.std, title="real")
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and "8/8 modes" in ax.get_title()
    fig = gan_plots.digits_grid(torch.rand(10, 1, 8, 8), nrow=5, title="digits")
    assert len(fig.axes) == 10
    fig = gan_plots.gradient_vs_confidence(torch.linspace(0.01, 0.99, 5), {"a": torch.ones(5)})
    assert fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel()


def test_genlab_fit_gan(tmp_path, monkeypatch):
    from genlab.fit import build_cli

    monkeypatch.chdir(tmp_path)
    build_cli("gan", ["fit", "--trainer.max_steps", "6", "--trainer.val_check_interval", "3",
                      "--data.n_samples", "300", "--data.batch_size", "100", "--model.eval_samples", "100"])
    figures = sorted(p.name for p in tmp_path.glob("runs/gan/version_*/figures/*.png"))
    assert "ring.png" in figures and "coverage.png" in figures and "loss.png" in figures


def test_losses_are_logged_on_the_loggers_steps_and_the_last_one(tmp_path):
    import csv

    from lightning.pytorch.loggers import CSVLogger

    L.seed_everything(0, verbose=False)
    d_losses = []

    def recording_step(gan, real):
        d_loss, g_loss = discriminator_first_step(gan, real)
        d_losses.append(float(d_loss))
        return d_loss, g_loss

    gan = GAN(hidden=16, n_layers=2, eval_samples=50, step=recording_step)
    trainer = L.Trainer(max_steps=2 * 7, log_every_n_steps=3, accelerator="cpu", logger=CSVLogger(tmp_path),
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(gan, datamodule=RingDataModule(n_samples=7 * 32, n_val=32, batch_size=32))
    trainer.logger.save()
    with open(Path(trainer.logger.log_dir) / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("d_loss")]
    assert [int(r["step"]) for r in rows] == [2, 5]  # batches, as Lightning's logger counts them
    assert [float(r["d_loss"]) for r in rows] == pytest.approx([d_losses[2], d_losses[5]])
    assert float(trainer.callback_metrics["d_loss"]) == pytest.approx(d_losses[-1])
