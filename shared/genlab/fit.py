"""``genlab fit <model>``: LightningCLI over a registered model and its YAML defaults.

Attributes named in ``model_class.linked_from_data`` (``vocab_size`` and the like) are read
from the instantiated datamodule and passed to the model, so a config never repeats what the
data already knows. What a user reads:

    genlab fit vae: VAE, 99,914 parameters, 4000 steps, run folder runs/vae/version_0
    Training   31%|██████▏             | step 1240/4000 [00:09<00:20, train_loss=21.3, val_loss=21.6]
    done: runs/vae/version_0 · best checkpoint checkpoints/vae-step=4000-val_nelbo=18.91.ckpt · figures loss.png, latent_grid.png

one line before training (instead of Lightning's model-summary table), the step bar of
``genlab.progress.StepProgressBar`` (from the YAML's callbacks), and after training, once the
model's figure writer (``Entry.figures``) has drawn into ``<run>/figures/``, one closing line
(``closing_line``).
"""
from __future__ import annotations

from pathlib import Path

from genlab import training

__all__ = ["build_cli", "closing_line", "parameter_count", "opening_line"]


def parameter_count(model) -> int:
    """The number of trainable parameters of ``model`` (a ``torch.nn.Module``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _short(path: str | Path, base: Path) -> str:
    """``path`` relative to ``base`` when it lies inside it, else as given."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def opening_line(name: str, model, trainer) -> str:
    """``genlab fit NAME: Class, N parameters, S steps, run folder DIR``."""
    steps = f"{trainer.max_steps} steps" if trainer.max_steps and trainer.max_steps > 0 else f"{trainer.max_epochs} epochs"
    run_dir = trainer.log_dir or trainer.default_root_dir
    return (f"genlab fit {name}: {type(model).__name__}, {parameter_count(model):,} parameters, {steps}, "
            f"run folder {run_dir}")


def closing_line(run_dir: Path, best_checkpoint: str | None, figures: list[Path]) -> str:
    """One line naming the run folder, the best checkpoint and the figures (inside the run folder)."""
    best = _short(best_checkpoint, run_dir) if best_checkpoint else "none kept"
    names = ", ".join(_short(p, run_dir / "figures") for p in figures) or "none"
    return f"done: {run_dir} · best checkpoint {best} · figures {names}"


def build_cli(model: str, args: list[str], run: bool = True, echo: bool = True):
    """A LightningCLI for the registered model ``model``, with its YAML config as the defaults.

    With ``run=True`` it trains (``args`` start with the subcommand, ``["fit", ...]``), draws the
    figures and, with ``echo``, prints the opening and closing lines. ``cli.figures`` holds the
    figure files written.
    """
    training.quiet_lightning()
    from lightning.pytorch.cli import LightningCLI

    entry = training.entry(model)

    class GenlabCLI(LightningCLI):
        figures: list[Path] = []

        def add_arguments_to_parser(self, parser):
            for name in getattr(entry.model_class, "linked_from_data", ()):
                parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")

        def before_fit(self):
            if echo:
                print(opening_line(model, self.model, self.trainer), flush=True)

        def after_fit(self):
            run_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir)
            self.figures = entry.write_figures(self.model, self.datamodule, run_dir / "figures")
            best = getattr(self.trainer.checkpoint_callback, "best_model_path", "") or None
            if echo:
                print(closing_line(run_dir, best, self.figures), flush=True)

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
        trainer_defaults={"enable_model_summary": False},
    )
