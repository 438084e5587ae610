"""The `genlab` entry point: subcommands, and configs that load with their datamodules."""
import os
import subprocess
import sys

import pytest

from genlab import training
from genlab.cli import main
from genlab.fit import build_cli


def test_help_lists_every_subcommand():
    out = subprocess.run(
        [sys.executable, "-m", "genlab", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("fit", "demo", "grade", "labs"):
        assert command in out


def test_unknown_model_is_a_clear_error(capsys):
    assert main(["fit", "nope"]) == 2
    assert "unknown model 'nope'; known models: " in capsys.readouterr().err


def test_registry_finds_the_lab_models():
    assert {"gpt", "transformer"} <= set(training.registry())


@pytest.mark.parametrize("model", sorted(training.registry()))
def test_config_names_a_datamodule_and_loads(model, tmp_path):
    """Each registered model's YAML loads, instantiates its datamodule, and links data sizes into the model."""
    assert training.entry(model).config_path.is_file()
    cli = build_cli(model, [f"--trainer.default_root_dir={tmp_path}"], run=False)
    for name in type(cli.model).linked_from_data:
        assert getattr(cli.model.hparams, name) == getattr(cli.datamodule, name), name


def test_bad_input_is_one_clear_line_not_a_traceback(tmp_path):
    """As a user runs it: a bad data path gives one error line and exit status 2."""
    env = {k: v for k, v in os.environ.items() if k != "GENLAB_DEBUG"}
    run = subprocess.run(
        [sys.executable, "-m", "genlab", "fit", "gpt", f"--data.path={tmp_path / 'no_such.txt'}",
         f"--trainer.default_root_dir={tmp_path}"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    assert run.returncode == 2
    assert "genlab fit: error: text corpus file not found" in run.stderr
    assert "Traceback" not in run.stderr


def test_unknown_lab_for_labs_is_a_clear_error(capsys):
    assert main(["labs", "99_nope"]) == 2
    assert "labs with solutions: " in capsys.readouterr().err


def test_fit_output_is_readable(tmp_path):
    """What a user sees from `genlab fit`: an opening line, one step bar up to max_steps, no
    v_num, none of Lightning's tips or known warnings, one closing line naming the run."""
    env = {**os.environ, "PYTHONWARNINGS": "default"}   # every warning shows unless genlab silences it
    env.pop("GENLAB_DEBUG", None)
    run = subprocess.run(
        [sys.executable, "-m", "genlab", "fit", "vae", "--trainer.max_steps=6", "--trainer.val_check_interval=3",
         "--trainer.log_every_n_steps=3", "--trainer.limit_val_batches=1", f"--trainer.default_root_dir={tmp_path}",
         f"--trainer.logger.init_args.save_dir={tmp_path}"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    shown = run.stdout + run.stderr
    assert run.returncode == 0, shown[-3000:]
    assert "genlab fit vae: VAE, " in run.stdout and " parameters, 6 steps, run folder " in run.stdout
    assert "step 6/6" in shown and "train_loss=" in shown and "step 0/?" not in shown
    for noise in ("v_num", "LightningCLI's args", "LeafSpec", "litlogger", "💡", "Epoch 0", "Validation DataLoader",
                  "Trainable params", "Seed set to", "Warning"):
        assert noise not in shown, f"{noise!r} in what `genlab fit` prints:\n{shown[-3000:]}"
    done = [line for line in run.stdout.splitlines() if line.startswith("done: ")]
    assert len(done) == 1, run.stdout[-2000:]
    assert f"done: {tmp_path / 'vae' / 'version_0'} · best checkpoint checkpoints/vae-step=6" in done[0]
    assert "· figures loss.png, latent_grid.png" in done[0]
    assert (tmp_path / "vae/version_0/figures/latent_grid.png").is_file()


def test_closing_line_names_the_run_checkpoint_and_figures(tmp_path):
    from genlab.fit import closing_line

    run = tmp_path / "gpt" / "version_2"
    line = closing_line(run, str(run / "checkpoints" / "best.ckpt"), [run / "figures" / "loss.png"])
    assert line == f"done: {run} · best checkpoint checkpoints/best.ckpt · figures loss.png"
    assert closing_line(run, None, []) == f"done: {run} · best checkpoint none kept · figures none"
