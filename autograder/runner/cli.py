"""``genlab grade``: grade submissions in a batch, or build a Gradescope autograder zip.

    genlab grade LAB SUBMISSION... [--jobs N] [--out DIR] [--force] [--gradebook URL]
    genlab grade --gradescope-zip LAB [--out path.zip]

The top-level ``genlab`` CLI calls ``add_grade_parser(subparsers)`` and ``run_grade(args)``.
``python -m autograder.runner.cli grade ...`` runs the same thing without it.

Exit status: 0 done; 1 done, but some grader processes died (those students have an
``error`` and score 0 until a rerun); 2 bad input (one line on stderr, no traceback);
128+N interrupted by signal N (finished submissions are kept; rerun to continue).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.runner import text
from autograder.runner.batch import BatchInterrupted, LabInfo, grade_batch
from autograder.runner.discover import DiscoveryError, discover
from autograder.runner.fast_start import skip_unused_imports
from autograder.runner.gradebook import GradebookError, write_gradebook
from autograder.runner.lab import Lab
from autograder.runner.reports import summary_table
from autograder.runner.store import BatchError, ResultStore

DESCRIPTION = """\
Grade submitted notebooks against LAB's hidden tests, each in a fresh isolated process.

SUBMISSION may be notebook files, folders of them, an nbgrader submitted/ tree
(submitted/<student>/<lab>/<notebook>.ipynb: the student id is the folder name), or a
Gradescope submission folder. Otherwise the student id is the notebook's file stem.

Writes DIR/<student>/{results.json, feedback.md, result.json} and DIR/grades.csv, each as
soon as a submission finishes, then DIR/similarity.csv (for the instructor only: each
graded part against the library's references, the solution and every other submission)
and DIR/routes.csv (instructor only: code that reaches around the grader's watch, such as
threads or torch's dispatch switches). A rerun skips finished submissions (unless --force or the
notebook changed), so an interrupted batch resumes where it stopped.
"""


class InputError(ValueError):
    """Bad command-line input; printed as one line."""


def add_grade_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``grade`` on an ``argparse`` subparsers object; returns the new parser."""
    p = subparsers.add_parser(
        "grade", help="grade submitted notebooks, or build a Gradescope autograder zip",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lab", metavar="LAB", help="lab name (03_transformer) or lab folder (holds lab.toml)")
    p.add_argument("submissions", metavar="SUBMISSION", nargs="*",
                   help="notebook, folder of notebooks, nbgrader submitted/ tree, or Gradescope submission folder")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="submissions graded in parallel, one process each (default 1)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default grades/<lab>; with --gradescope-zip: the zip, "
                        "default build/gradescope-<lab>.zip)")
    p.add_argument("--force", action="store_true", help="regrade submissions that already have results")
    p.add_argument("--gradebook", metavar="URL", default=None,
                   help="also write scores into nbgrader's gradebook, e.g. sqlite:///gradebook.db "
                        "or postgresql://user:pass@host/db")
    p.add_argument("--gradescope-zip", action="store_true",
                   help="build Gradescope's autograder zip for LAB instead of grading")
    p.add_argument("--timeout", type=float, default=3600.0, metavar="SECONDS",
                   help="stop a submission's grader after this long (default 3600; the lab's own "
                        "limits normally stop it much sooner)")
    p.set_defaults(func=run_grade)
    return p


def _load_lab(ref: str) -> Lab:
    """``Lab.load``, with any failure turned into one clear line."""
    try:
        return Lab.load(ref)
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(msg if repr(str(ref)) in msg else f"cannot load lab {ref!r}: {msg}") from e


def run_grade(args: argparse.Namespace) -> int:
    """Run ``genlab grade``; returns the exit status (see module doc)."""
    err = sys.stderr
    skip_unused_imports()   # before discover and the reports import nbformat
    try:
        if args.jobs < 1:
            raise InputError(f"--jobs must be at least 1, got {args.jobs}")
        lab_obj = _load_lab(args.lab)
        if args.gradescope_zip:
            return _zip(args, lab_obj)
        if not args.submissions:
            raise InputError("no SUBMISSION given: pass notebook files or folders "
                             "(or --gradescope-zip to build the Gradescope zip)")
        lab = LabInfo.from_lab(lab_obj)
        found = discover(args.submissions, lab.name, lab.notebook)
        for note in found.skipped:
            print(f"genlab grade: skipped {text.terminal(note, 300)}", file=err)
        out = Path(args.out) if args.out else Path("grades") / lab.name
        outcome = grade_batch(lab, found.submissions, out, jobs=args.jobs, force=args.force,
                              timeout_s=args.timeout)
    except (InputError, DiscoveryError, BatchError, GradebookError, ValueError) as e:
        print(f"genlab grade: error: {e}", file=err)
        return 2
    except BatchInterrupted as e:
        print(f"genlab grade: {e}. Finished submissions are saved in {out}; run the same command "
              "again to grade the rest.", file=err)
        return 128 + e.signum
    for w in outcome.warnings:
        print(f"genlab grade: warning: {text.terminal(w, 500)}", file=err)
    if outcome.skipped:
        print(f"genlab grade: {len(outcome.skipped)} submission(s) already graded in {out}, kept "
              "(--force regrades them)", file=err)
    print(summary_table(outcome.results.values()))
    try:
        from autograder.runner.similarity import summary, write_similarity

        print("\n" + summary(write_similarity(lab_obj, found.submissions, out)))
    except Exception as e:   # the report is for the instructor: never a reason to fail the batch
        print(f"genlab grade: warning: no similarity report ({text.terminal(e, 300)})", file=err)
    try:
        from autograder.runner import routes

        print("\n" + routes.summary(routes.write_routes(lab_obj, found.submissions, out)))
    except Exception as e:   # instructor only, like the similarity report
        print(f"genlab grade: warning: no routes report ({text.terminal(e, 300)})", file=err)
    print(f"\n{len(outcome.graded)} graded, {len(outcome.skipped)} kept, in {outcome.wall_s:.1f} s. "
          f"Results: {out}/<student>/, table: {out / 'grades.csv'}")
    if outcome.timed_out:
        print(f"genlab grade: {len(outcome.timed_out)} submission(s) ran past --timeout and were stopped "
              f"({', '.join(outcome.timed_out)}); their score 0 is final (--force regrades them)", file=err)
    if args.gradebook:
        problems: list[str] = []
        try:
            n = _gradebook(args.gradebook, lab, out, outcome, problems)
        except GradebookError as e:
            print(f"genlab grade: error: {text.terminal(e, 500)}", file=err)
            return 2
        for problem in problems:
            print(f"genlab grade: gradebook: {text.terminal(problem, 300)}", file=err)
        print(f"Gradebook: {n} submission(s) written to {args.gradebook}")
    if outcome.failed:
        print(f"genlab grade: the grader died on {len(outcome.failed)} submission(s) "
              f"({', '.join(outcome.failed)}); see {out}/<student>/grader.log, then rerun to retry them",
              file=err)
        return 1
    return 0


def _gradebook(url: str, lab: LabInfo, out: Path, outcome, problems: list[str] | None = None) -> int:
    store = ResultStore(out, lab.name)
    metas = {s: (store.meta(s) or {}) for s in store.results}
    notebook = Path(lab.notebook).stem if lab.notebook else lab.name
    return write_gradebook(url, lab.name, notebook, store.results.values(),
                           complete={s: m.get("complete", True) for s, m in metas.items()},
                           timestamps={s: m.get("timestamp") for s, m in metas.items()}, problems=problems)


def _zip(args: argparse.Namespace, lab_obj) -> int:
    from autograder.runner.gradescope import build_zip

    if args.submissions:
        raise InputError("--gradescope-zip takes only LAB (no SUBMISSION); use --out for the zip's path")
    out = Path(args.out) if args.out else Path("build") / f"gradescope-{lab_obj.name}.zip"
    if out.suffix != ".zip":
        raise InputError(f"--out {out}: the Gradescope autograder must be a .zip file")
    path = build_zip(lab_obj.folder, lab_obj.release, out)
    print(f"Gradescope autograder: {path} (upload it as the assignment's autograder; "
          "Gradescope runs setup.sh once, then run_autograder per submission)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genlab")
    sub = parser.add_subparsers(dest="command", required=True)
    add_grade_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
