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
