"""``genlab fit <model>``: LightningCLI over a registered model and its YAML defaults.

Attributes named in ``model_class.linked_from_data`` (``vocab_size`` and the like) are read
from the instantiated datamodule and passed to the model, so a config never repeats what the
data already knows. After training, the model's figure writer (``Entry.figures``) draws into
``<run>/figures/`` and one closing line names the run folder, the best checkpoint and the
figures.
"""
from __future__ import annotations

from pathlib import Path

from genlab import training

__all__ = ["build_cli"]


def build_cli(model: str, args: list[str], run: bool = True):
    """A LightningCLI for the registered model ``model``, with its YAML config as the defaults."""
    training.quiet_lightning()
    from lightning.pytorch.cli import LightningCLI

    entry = training.entry(model)

    class GenlabCLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            for name in getattr(entry.model_class, "linked_from_data", ()):
                parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")

        def after_fit(self):
            run_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir)
            written = entry.write_figures(self.model, self.datamodule, run_dir / "figures")
            best = getattr(self.trainer.checkpoint_callback, "best_model_path", "") or "none"
            names = ", ".join(p.name for p in written) or "none"
            print(f"\nrun: {run_dir}\nbest checkpoint: {best}\nfigures: {names}")

    parser_kwargs = {"default_config_files": [str(entry.config_path)]}
    if run:
        parser_kwargs = {"fit": parser_kwargs, "validate": parser_kwargs, "test": parser_kwargs}
    return GenlabCLI(
        entry.model_class,
        entry.datamodule_class,
        args=args,
        run=run,
        parser_kwargs=parser_kwargs,
        save_config_kwargs={"overwrite": True},
        seed_everything_default=0,
    )
