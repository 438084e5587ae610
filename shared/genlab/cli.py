"""The ``genlab`` command line: ``fit``, ``demo``, ``grade``, ``labs``.

Each subcommand imports its heavy dependencies only when it runs, so ``genlab --help``
answers at once.

    genlab fit gpt --trainer.max_steps 500      # LightningCLI, config in genlab/configs/
    genlab demo                                 # trains both models briefly, writes figures
    genlab grade 03_transformer submitted/      # hidden tests, isolated, see README
    genlab labs                                 # regenerate labs/ from solutions/
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Idle OpenMP threads sleep rather than spin; must be set before torch is imported.
# On a busy 2-core laptop spinning threads made training about 13x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

CONFIG_DIR = Path(__file__).parent / "configs"


def config_path(model: str) -> Path:
    """The YAML config of a registered model, e.g. ``genlab/configs/gpt.yaml``."""
    return CONFIG_DIR / f"{model}.yaml"


def _registry() -> dict:
    from genlab.models import REGISTRY

    return REGISTRY


def build_cli(model: str, args: list[str], run: bool = True):
    """A LightningCLI for a registered model, with its YAML config as the defaults.

    Attributes named in ``model_class.linked_from_data`` (``vocab_size`` and the like) are
    read from the instantiated datamodule and passed to the model, so a config never
    repeats what the data already knows.
    """
    # Lightning 2.6 still calls jsonargparse APIs that print deprecation notices on every run.
    os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")
    from lightning.pytorch.cli import LightningCLI

    registry = _registry()
    if model not in registry:
        known = ", ".join(sorted(registry))
        raise SystemExit(f"genlab fit: unknown model {model!r}. Known models: {known}.")
    model_class, data_class = registry[model]

    class GenlabCLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            for name in getattr(model_class, "linked_from_data", ()):
                parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")

        def after_fit(self):
            out_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir) / "figures"
            written = self.model.save_figures(self.datamodule, out_dir)
            for path in written:
                print(f"figure: {path}")

    defaults = [str(config_path(model))]
    parser_kwargs = {"default_config_files": defaults}
    if run:
        parser_kwargs = {"fit": parser_kwargs, "validate": parser_kwargs, "test": parser_kwargs}
    return GenlabCLI(
        model_class,
        data_class,
        args=args,
        run=run,
        parser_kwargs=parser_kwargs,
        save_config_kwargs={"overwrite": True},
        seed_everything_default=0,
    )


def _fit(ns: argparse.Namespace) -> int:
    build_cli(ns.model, ["fit", *ns.lightning_args])
    return 0


def _demo(ns: argparse.Namespace) -> int:
    from genlab.demo import run_demo

    return run_demo(out=Path(ns.out), steps=ns.steps)


def _labs(ns: argparse.Namespace) -> int:
    from genlab.labs import generate_release

    for path in generate_release(ns.lab):
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genlab",
        description="genlab: graded labs on generative models, a Lightning library and an isolated autograder.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    fit = sub.add_parser(
        "fit",
        help="train a model with LightningCLI (gpt, transformer)",
        description="Train a model on its embedded default data. Extra arguments go to "
        "LightningCLI, e.g. `genlab fit gpt --trainer.max_steps 500`; "
        "`genlab fit gpt --help` lists them all.",
    )
    fit.add_argument("model", help="model name: gpt or transformer")
    fit.add_argument("lightning_args", nargs=argparse.REMAINDER, help="LightningCLI arguments")
    fit.set_defaults(func=_fit)

    demo = sub.add_parser("demo", help="train both lab-03 models briefly and write their figures")
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    demo.add_argument("--steps", type=int, default=None, help="training steps per model (default: per-model demo setting)")
    demo.set_defaults(func=_demo)

    from autograder.runner.cli import add_grade_parser, run_grade

    add_grade_parser(sub).set_defaults(func=run_grade)

    labs = sub.add_parser("labs", help="regenerate the student release labs/ from solutions/ (nbgrader)")
    labs.add_argument("lab", nargs="?", default=None, help="lab name, e.g. 03_transformer (default: all)")
    labs.set_defaults(func=_labs)
    return parser


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return ns.func(ns)
    except (ValueError, TypeError, OSError) as exc:  # bad input: a config value, a path, a lab name
        if os.environ.get("GENLAB_DEBUG"):
            raise
        print(f"genlab {ns.command}: error: {exc}\n(set GENLAB_DEBUG=1 for the full traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
