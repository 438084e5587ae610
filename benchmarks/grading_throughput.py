"""Grading throughput on the fixture lab: genlab's grader against ``nbgrader autograde``.

    python benchmarks/grading_throughput.py [--singles 10] [--batch 20] [--jobs 2] [--lab03 6]

1. Per submission: ``python -m autograder.runner.grade_one`` on one completed notebook,
   ``--singles`` times in a row; the median wall time (process start to result on disk) and
   the median time the grader reports for itself.
2. A batch: the same ``--batch`` notebooks (half completed, half untouched releases) in an
   nbgrader course folder (source/, release/, submitted/<student>/fixture/), graded once by
   ``genlab grade --jobs N`` and once by ``nbgrader autograde fixture`` (which grades one
   notebook at a time), side by side in one run. ``--no-fork-too`` adds a genlab run
   without the batch's fork server (each grader a fresh ``python``); ``--no-template-too``
   one without the worker template (``GENLAB_WORKER_TEMPLATE=0``: each sandboxed worker a
   fresh ``python`` that imports torch itself).
3. Lab 03's real hidden tests: ``--lab03`` copies of its solution notebook, graded as a
   batch with the worker template and without it, interleaved (with, without, with).

The fixture source's training cell loops forever (genlab skips cells tagged ``training``;
nbgrader would run it into its cell timeout), so the benchmark course uses a copy of it whose
training cell returns at once: both graders execute the same finite notebooks.

Prints a table and writes JSON to ``runs/bench/grading_throughput.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "autograder" / "fixture_lab"
LAB = "fixture"


def _env(**extra: str) -> dict:
    """The venv's bin first on PATH: nbgrader's kernel runs plain ``python``, and it calls ``alembic``."""
    return dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
                PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)


def _run(cmd: list[str], cwd: Path, timeout: float = 1800, **env: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall


def make_course(root: Path, n: int) -> tuple[Path, Path]:
    """An nbgrader course with ``n`` submissions; returns (course folder, one completed notebook)."""
    course = root / "course"
    source = nbformat.read(FIXTURE / "source" / "fixture.ipynb", as_version=4)
    for cell in source.cells:
        if "training" in cell.metadata.get("tags", []):
            cell.source = "# benchmark copy: the training cell returns at once\nimport time"
    (course / "source" / LAB).mkdir(parents=True)
    nbformat.write(source, course / "source" / LAB / "fixture.ipynb")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n"
        "c.CourseDirectory.course_id = 'bench'\n")
    _run(["nbgrader", "generate_assignment", LAB, "--force"], course)
    release = nbformat.read(course / "release" / LAB / "fixture.ipynb", as_version=4)
    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    completed = nbformat.from_dict(json.loads(nbformat.writes(release)))
    for cell in completed.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in solutions:
            cell.source = solutions[gid]
    for i in range(n):
        folder = course / "submitted" / f"student{i:02d}" / LAB
        folder.mkdir(parents=True)
        nbformat.write(completed if i % 2 == 0 else release, folder / "fixture.ipynb")
        (folder / "timestamp.txt").write_text("2024-01-01 00:00:00.000000 UTC\n")
    one = root / "completed.ipynb"
    nbformat.write(completed, one)
    return course, one


def bench_singles(notebook: Path, n: int, work: Path) -> dict:
    walls, own = [], []
    for i in range(n):
        out = work / f"single{i}.json"
        walls.append(_run([sys.executable, "-m", "autograder.runner.grade_one", str(FIXTURE), str(notebook),
                           "--student", "bench", "--out", str(out)], REPO))
        result = json.loads(out.read_text())
        own.append(result["execution_time"])
        if result.get("error"):
            raise SystemExit(f"grade_one reported an error: {result['error']}")
    return {"n": n, "median_wall_s": statistics.median(walls), "median_grader_s": statistics.median(own),
            "min_wall_s": min(walls), "max_wall_s": max(walls), "walls_s": [round(w, 3) for w in walls]}


def _genlab(course: Path, jobs: int, out: Path, **env: str) -> tuple[float, list[float]]:
    wall = _run([sys.executable, "-m", "autograder.runner.cli", "grade", str(FIXTURE),
                 str(course / "submitted"), "--out", str(out), "--jobs", str(jobs)], REPO, **env)
    scores = [json.loads((d / "results.json").read_text())["score"] for d in sorted(out.iterdir()) if d.is_dir()
              and (d / "results.json").is_file()]
    return wall, scores


def bench_batch(course: Path, jobs: int, work: Path, no_fork: bool, no_template: bool) -> dict:
    genlab, scores = _genlab(course, jobs, work / "genlab-grades")
    extra = {}
    if no_fork:  # every grader its own `python -m autograder.runner.grade_one`
        wall, plain_scores = _genlab(course, jobs, work / "genlab-grades-nofork", GENLAB_FORK_SERVER="0")
        extra = {"genlab_no_fork_server_wall_s": wall, "genlab_no_fork_server_scores": plain_scores}
    if no_template:  # every sandboxed worker its own `python worker.py`
        wall, plain_scores = _genlab(course, jobs, work / "genlab-grades-notemplate", GENLAB_WORKER_TEMPLATE="0")
        extra.update(genlab_no_template_wall_s=wall, genlab_no_template_scores=plain_scores)
    nbg = _run(["nbgrader", "autograde", LAB], course)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="bench") as gb:
        nbg_scores = [s.score for s in sorted(gb.find_assignment(LAB).submissions, key=lambda s: s.student.id)]
    return {"n": len(scores), "jobs": jobs, "genlab_wall_s": genlab, "nbgrader_wall_s": nbg,
            "genlab_scores": scores, "nbgrader_scores": nbg_scores, **extra}


def bench_lab03(n: int, jobs: int, work: Path) -> dict:
    """``n`` copies of lab 03's solution, as one batch, with and without the worker template."""
    subs = work / "lab03"
    subs.mkdir()
    solution = next((REPO / "solutions" / "03_transformer").glob("*.ipynb"))
    for i in range(n):
        shutil.copyfile(solution, subs / f"student{i:02d}.ipynb")
    runs = {"template": [], "no_template": []}
    for i, mode in enumerate(("template", "no_template", "template", "no_template")):
        out = work / f"lab03-grades-{i}"
        env = {"GENLAB_WORKER_TEMPLATE": "0"} if mode == "no_template" else {}
        wall = _run([sys.executable, "-m", "autograder.runner.cli", "grade", "03_transformer", str(subs),
                     "--out", str(out), "--jobs", str(jobs)], REPO, **env)
        scores = [json.loads((d / "results.json").read_text())["score"] for d in sorted(out.iterdir())
                  if (d / "results.json").is_file()]
        if scores != [100.0] * n:
            raise SystemExit(f"lab 03's solution did not score 100 in every copy ({mode}): {scores}")
        runs[mode].append(wall)
    best = {mode: min(walls) for mode, walls in runs.items()}
    return {"n": n, "jobs": jobs, "walls_s": runs, "template_wall_s": best["template"],
            "no_template_wall_s": best["no_template"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--singles", type=int, default=10)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "grading_throughput.json")
    p.add_argument("--keep", action="store_true", help="keep the temporary course folder")
    p.add_argument("--no-fork-too", action="store_true",
                   help="also time the batch with GENLAB_FORK_SERVER=0 (a fresh python per grader)")
    p.add_argument("--no-template-too", action="store_true",
                   help="also time the batch with GENLAB_WORKER_TEMPLATE=0 (a fresh python per worker)")
    p.add_argument("--lab03", type=int, default=6, metavar="N",
                   help="copies of lab 03's solution graded with and without the worker template (0: skip)")
    args = p.parse_args(argv)
    if not (FIXTURE / "lab.toml").is_file():
        raise SystemExit(f"the fixture lab is missing: {FIXTURE}")
    work = Path(tempfile.mkdtemp(prefix="genlab-bench-"))
    try:
        load0 = os.getloadavg()[0]
        course, one = make_course(work, args.batch)
        singles = bench_singles(one, args.singles, work)
        batch = bench_batch(course, args.jobs, work, args.no_fork_too, args.no_template_too)
        lab03 = bench_lab03(args.lab03, args.jobs, work) if args.lab03 else None
        load1 = os.getloadavg()[0]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report = {
        "lab": LAB, "singles": singles, "batch": batch, "lab03": lab03,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_1min_start": round(load0, 2), "loadavg_1min_end": round(load1, 2)},
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    b = batch
    rows = [
        (f"one submission, grade_one process (median of {singles['n']})", f"{singles['median_wall_s']:.2f} s"),
        ("  of which the grader's own time (median)", f"{singles['median_grader_s']:.2f} s"),
        (f"batch of {b['n']}: genlab grade --jobs {b['jobs']}", f"{b['genlab_wall_s']:.1f} s"
         f"  ({b['genlab_wall_s'] / b['n']:.2f} s/submission)"),
        *([(f"batch of {b['n']}: genlab grade --jobs {b['jobs']}, GENLAB_FORK_SERVER=0",
            f"{b['genlab_no_fork_server_wall_s']:.1f} s  ({b['genlab_no_fork_server_wall_s'] / b['n']:.2f} "
            "s/submission)")] if "genlab_no_fork_server_wall_s" in b else []),
        *([(f"batch of {b['n']}: genlab grade --jobs {b['jobs']}, GENLAB_WORKER_TEMPLATE=0",
            f"{b['genlab_no_template_wall_s']:.1f} s  ({b['genlab_no_template_wall_s'] / b['n']:.2f} "
            "s/submission)")] if "genlab_no_template_wall_s" in b else []),
        (f"batch of {b['n']}: nbgrader autograde", f"{b['nbgrader_wall_s']:.1f} s"
         f"  ({b['nbgrader_wall_s'] / b['n']:.2f} s/submission)"),
        ("ratio nbgrader / genlab", f"{b['nbgrader_wall_s'] / b['genlab_wall_s']:.2f}x"),
    ]
    if lab03:
        t, f = lab03["template_wall_s"], lab03["no_template_wall_s"]
        rows += [
            (f"lab 03, batch of {lab03['n']} solutions (best of 2): worker template", f"{t:.1f} s  ({t / lab03['n']:.2f} s/submission)"),
            (f"lab 03, batch of {lab03['n']} solutions (best of 2): GENLAB_WORKER_TEMPLATE=0", f"{f:.1f} s  ({f / lab03['n']:.2f} s/submission)"),
            ("ratio without / with the template", f"{f / t:.2f}x"),
        ]
    width = max(len(r[0]) for r in rows)
    print(f"grading throughput, fixture lab ({os.cpu_count()} CPUs, load {load0:.1f} -> {load1:.1f})")
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
