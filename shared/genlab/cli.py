"""The ``genlab`` command line: ``fit``, ``demo``, ``grade``, ``labs``, ``release``.

Each subcommand imports its heavy dependencies only when it runs, so ``genlab --help``
answers at once.

    genlab fit gpt --trainer.max_steps 500      # LightningCLI, config in genlab/configs/
    genlab demo                                 # trains both models briefly, writes figures
    genlab grade 03_transformer submitted/      # hidden tests, isolated, see README
    genlab labs                                 # regenerate labs/ from solutions/
    genlab release --wheel-url URL              # the student bundle, in dist/student/

``grade`` and ``release`` are instructor commands from the repository's ``autograder``
package; the student build of genlab has no ``autograder``, and says so when they are run.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Idle OpenMP threads sleep rather than spin; must be set before torch is imported.
# On a busy 2-core laptop spinning threads made training about 13x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

def _fit(ns: argparse.Namespace) -> int:
    from genlab.fit import build_cli

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


INSTRUCTOR_COMMANDS = {"grade": "run the hidden tests", "release": "write the student bundle"}


def _no_autograder(ns: argparse.Namespace) -> int:
    print(f"genlab {ns.command}: this genlab has no autograder package (it is the student build). "
          f"`genlab {ns.command}` is an instructor command: run it from the full repository "
          "(git clone, then `make test`).", file=sys.stderr)
    return 2


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

    try:
        from autograder.release.cli import add_release_parser, run_release
        from autograder.runner.cli import add_grade_parser, run_grade
    except ImportError:   # the student build: no autograder package
        for name in INSTRUCTOR_COMMANDS:
            missing = sub.add_parser(name, help=f"instructors only: {INSTRUCTOR_COMMANDS[name]} (needs the repository)",
                                     add_help=False)
            missing.add_argument("rest", nargs=argparse.REMAINDER)
            missing.set_defaults(func=_no_autograder)
    else:
        add_grade_parser(sub).set_defaults(func=run_grade)
        add_release_parser(sub).set_defaults(func=run_release)

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
