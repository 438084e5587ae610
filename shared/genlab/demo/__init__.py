"""``genlab demo``: every lab's reference model trained briefly, every lab graded, one page.

    genlab demo                      # about 7-9 minutes on 2 CPU cores; writes runs/demo/
    genlab demo --models vae gan --no-grade
    genlab demo --page-only          # redraw runs/demo/index.html from summary.json

Three jobs, one module each:

* ``genlab.demo.train``: a short ``genlab fit`` of each model that declares ``demo_steps``,
  with the same step bar, a time cap per model, and its figures;
* ``genlab.demo.grade``: ``genlab grade`` on each lab's solution (full marks expected), its
  untouched release (zero expected) and the example submissions in ``examples/submissions/``;
* ``genlab.demo.page``: ``index.html`` with every figure, the tables and the example feedback.

``genlab.demo.summary`` writes the tables (``summary.md``, ``summary.json``).
"""
from __future__ import annotations

import time
from pathlib import Path

from genlab.demo.grade import find_labs, grade_lab
from genlab.demo.page import write_page
from genlab.demo.summary import grading_table, training_table, write_summary
from genlab.demo.train import demo_models, select_models, train_model

__all__ = ["run_demo", "demo_models", "select_models", "DEFAULT_MAX_SECONDS"]

#: Wall-time cap of one model's training: the whole demo stays near 10 minutes on a slow,
#: shared 2-core machine (a model stopped by it says so in the table).
DEFAULT_MAX_SECONDS = 75.0


def _banner(text: str) -> None:
    print(f"\n== genlab demo: {text} ==", flush=True)


def _print_feedback(grades) -> None:
    for g in grades:
        if not g.student.startswith("example"):
            continue
        score = f"{g.score:g}/{g.max_score:g}" if g.score is not None and g.max_score is not None else "no score"
        _banner(f"feedback for the example submission of {g.lab} ({score}; full text in {g.feedback})")
        for test in g.failed:
            print(f"✗ {test['name']}: {test['score']:g}/{test['points']:g}")
            for line in (test.get("message") or "").strip().splitlines():
                print(f"    {line}")


def run_demo(out: Path = Path("runs/demo"), steps: int | None = None, models: list[str] | None = None,
             labs: list[str] | None = None, train: bool = True, grade: bool = True, jobs: int = 2,
             max_seconds: float | None = DEFAULT_MAX_SECONDS, command: str = "genlab demo") -> int:
    """Train, grade, write the tables and the page into ``out``; the exit status.

    0: everything ran and every solution and release scored as expected; 1: a notebook scored
    otherwise or could not be graded (the tables say which).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    summary: dict = {"command": command, "training": [], "grading": [], "grading_seconds": {}}
    chosen = select_models(models) if train else []
    chosen_labs = find_labs(labs=labs) if grade else []

    for i, name in enumerate(chosen, 1):
        planned = steps or demo_models()[name].model_class.demo_steps
        cap = f", at most {max_seconds:.0f} s" if max_seconds else ""
        _banner(f"training {name} ({i}/{len(chosen)}: {planned} steps{cap})")
        summary["training"].append(train_model(name, out, steps=steps, max_seconds=max_seconds).as_dict())
        write_summary(out, summary)

    grades = []
    for i, lab in enumerate(chosen_labs, 1):
        _banner(f"grading {lab.name} ({i}/{len(chosen_labs)}: {', '.join(lab.notebooks)})")
        results, seconds = grade_lab(lab, out / "grades", jobs=jobs, base=out)
        grades += results
        summary["grading"] += [g.as_dict() for g in results]
        summary["grading_seconds"][lab.name] = round(seconds, 1)
        write_summary(out, summary)
    _print_feedback(grades)

    summary["total_seconds"] = round(time.perf_counter() - start, 1)
    json_path, md_path = write_summary(out, summary)
    page = write_page(out, summary)
    if summary["training"]:
        _banner("training summary")
        print(training_table(summary["training"]))
    if summary["grading"]:
        _banner("grading summary (score of max; ✓: as expected)")
        print(grading_table(summary["grading"], summary["grading_seconds"]))
    print(f"\n{summary['total_seconds']:.0f} s in all. Page: {page}  tables: {md_path}, {json_path}")
    unexpected = [f"{g.lab}/{g.student}" for g in grades if not g.as_expected]
    if unexpected:
        print(f"genlab demo: not as expected: {', '.join(unexpected)} (see {out / 'grades'})")
        return 1
    return 0
