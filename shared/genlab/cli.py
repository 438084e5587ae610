"""The ``genlab`` command line: ``fit``, ``demo``, ``grade``, ``labs``, ``release``.

Each subcommand imports its heavy dependencies only when it runs, so ``genlab --help``
answers at once.

    genlab fit gpt --trainer.max_steps 500      # LightningCLI, config in genlab/configs/
    genlab demo                                 # every lab's model briefly, every lab graded: runs/demo/
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

    if ns.page_only:
        from genlab.demo.page import write_page

        print(f"wrote {write_page(Path(ns.out))}")
        return 0
    if ns.jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {ns.jobs}")
    command = " ".join(["genlab", *(sys.argv[1:] if ns.argv is None else ns.argv)])
    return run_demo(out=Path(ns.out), steps=ns.steps, models=ns.models, labs=ns.labs, train=not ns.no_train,
                    grade=not ns.no_grade, jobs=ns.jobs, max_seconds=ns.max_seconds or None, command=command)


def _labs(ns: argparse.Namespace) -> int:
    from genlab.labs import generate_release

    for path in generate_release(ns.lab):
        print(f"wrote {path}")
    return 0


#: `genlab fit` models, for the help text (``genlab.training.registry()`` is the source; a test
#: keeps this list equal to it, and listing it here keeps `genlab --help` free of torch imports).
FIT_MODELS = ("gan", "gan_digits", "gpt", "rnn_lm", "seq2seq", "transformer", "vae")

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
        help=f"train a model with LightningCLI ({', '.join(FIT_MODELS)})",
        description="Train a model on its embedded default data. Extra arguments go to "
        "LightningCLI, e.g. `genlab fit gpt --trainer.max_steps 500`; "
        "`genlab fit gpt --help` lists them all.",
    )
    fit.add_argument("model", help=f"model name: {', '.join(FIT_MODELS)}")
    fit.add_argument("lightning_args", nargs=argparse.REMAINDER, help="LightningCLI arguments")
    fit.set_defaults(func=_fit)

    demo = sub.add_parser(
        "demo", help="train every lab's model briefly, grade every lab, write runs/demo/index.html",
        description="Train each lab's reference model briefly on its embedded data (figures included), grade "
        "every solution (full marks expected), every untouched release (zero expected) and the example "
        "submissions in examples/submissions/ with `genlab grade`, and write summary.md, summary.json and "
        "index.html. About 7-9 minutes on 2 CPU cores.")
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    demo.add_argument("--steps", type=int, default=None, help="training steps per model (default: per-model demo setting)")
    demo.add_argument("--models", nargs="+", default=None, metavar="MODEL", help="train only these models (default: all)")
    demo.add_argument("--labs", nargs="+", default=None, metavar="LAB", help="grade only these labs (default: all)")
    demo.add_argument("--max-seconds", type=float, default=75.0, metavar="S",
                      help="stop one model's training after S seconds of wall time (default 75; 0: no cap)")
    demo.add_argument("--jobs", type=int, default=2, metavar="N", help="notebooks graded in parallel (default 2)")
    demo.add_argument("--no-train", action="store_true", help="skip training")
    demo.add_argument("--no-grade", action="store_true", help="skip grading (the student build cannot grade)")
    demo.add_argument("--page-only", action="store_true", help="only redraw OUT/index.html from OUT/summary.json")
    demo.set_defaults(func=_demo, argv=None)

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
    if hasattr(ns, "argv"):
        ns.argv = argv
    try:
        return ns.func(ns)
    except (ValueError, TypeError, OSError) as exc:  # bad input: a config value, a path, a lab name
        if os.environ.get("GENLAB_DEBUG"):
            raise
        print(f"genlab {ns.command}: error: {exc}\n(set GENLAB_DEBUG=1 for the full traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
