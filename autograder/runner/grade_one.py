"""Grade one notebook in this (fresh) process and write its result as JSON.

    python -m autograder.runner.grade_one LAB NOTEBOOK --student S --out result.json [--log grading.log]
                                          [--parts part1_attention,part3_heads]

``LAB`` is a lab name (``03_transformer``) or a lab folder. The result file is written
atomically (a temporary file in the same folder, then ``os.replace``), so a reader never
sees half a result. Exit code 0 whenever a result was written (whatever the score), 2 for
bad arguments or a lab that cannot be loaded (a result with ``error`` is still written).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.runner.reports import write_atomic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.runner.grade_one", description=__doc__.split("\n\n")[0])
    parser.add_argument("lab", help="lab name (e.g. 03_transformer) or lab folder")
    parser.add_argument("notebook", type=Path, help="the submitted notebook")
    parser.add_argument("--student", required=True, help="student id, copied into the result")
    parser.add_argument("--out", required=True, type=Path, help="where to write the result JSON")
    parser.add_argument("--log", type=Path, default=None, help="instructor log: pytest output, internal tracebacks")
    parser.add_argument("--parts", default=None, metavar="P,Q",
                        help="run only these hidden-test parts (file stems without test_); default: all")
    args = parser.parse_args(argv)
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip()) if args.parts else None

    from .fast_start import skip_unused_imports

    skip_unused_imports()   # before nbformat is imported
    from .errors import LabError
    from .grade import grade_notebook
    from .lab import Lab
    from .results import INTERNAL_PREFIX, SubmissionResult

    try:
        lab = Lab.load(args.lab)
    except LabError as exc:
        result = SubmissionResult(student=args.student, lab=str(args.lab), error=f"{INTERNAL_PREFIX}: {exc}")
        write_atomic(args.out, result.to_json())
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = grade_notebook(lab, args.notebook, args.student, log=args.log, parts=parts)
    write_atomic(args.out, result.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
