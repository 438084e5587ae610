"""``genlab release``: write the student bundle (the subcommand's parser and its entry point)."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_release_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``release`` to ``genlab``'s subcommands."""
    p = subparsers.add_parser(
        "release",
        help="instructors: write the student bundle (stubbed library wheel, release notebooks, README)",
        description="Write the student bundle: a wheel of genlab whose graded parts are stubs (no "
        "autograder, no solutions), the release notebooks of labs/ with an install cell first, and a "
        "short README. Never give students autograder/ or solutions/.",
    )
    p.add_argument("--wheel-url", required=True,
                   help="where the notebooks' install cell gets the wheel: a URL you will upload "
                   "<out>/wheel/*.whl to, or its path on a shared hub volume")
    p.add_argument("--out", default="dist/student", help="bundle folder (default: dist/student)")
    p.add_argument("--labs", nargs="+", default=None, metavar="LAB",
                   help="labs to release, e.g. 03_transformer or 03 (default: every lab with a release)")
    return p


def run_release(args: argparse.Namespace) -> int:
    from .bundle import select_labs, write_bundle

    write_bundle(Path(args.out), args.wheel_url, select_labs(args.labs))
    return 0
