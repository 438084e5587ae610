"""The `genlab` entry point: subcommands, and configs that load with their datamodules."""
import subprocess
import sys

import pytest

from genlab.cli import build_cli, config_path, main


def test_help_lists_every_subcommand():
    out = subprocess.run(
        [sys.executable, "-m", "genlab", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("fit", "demo", "grade", "labs"):
        assert command in out


def test_unknown_model_is_a_clear_error(capsys):
    with pytest.raises(SystemExit, match="unknown model 'nope'.*gpt"):
        main(["fit", "nope"])


@pytest.mark.parametrize("model", ["gpt", "transformer"])
def test_config_names_a_datamodule_and_loads(model, tmp_path):
    """Each model's YAML loads, instantiates its datamodule, and links data sizes into the model."""
    assert config_path(model).is_file()
    cli = build_cli(model, [f"--trainer.default_root_dir={tmp_path}"], run=False)
    for name in type(cli.model).linked_from_data:
        assert getattr(cli.model.hparams, name) == getattr(cli.datamodule, name), name
