"""The demo's tables: training (metric reached, wall and CPU time, parameters per model) and
grading (score of max and time per lab), as text for the terminal and ``summary.md``, and the
data behind both in ``summary.json``.

``summary.json`` is what ``genlab.demo.page`` draws the HTML page from::

    {"training": [TrainResult.as_dict(), ...], "grading": [GradeResult.as_dict(), ...],
     "grading_seconds": {"03_transformer": 14.2, ...}, "total_seconds": 512.3, "command": "genlab demo"}
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["markdown_table", "training_table", "grading_table", "score_cell", "write_summary", "read_summary",
           "SUMMARY_JSON", "SUMMARY_MD"]

SUMMARY_JSON, SUMMARY_MD = "summary.json", "summary.md"


def markdown_table(header: list[str], rows: Iterable[list[str]]) -> str:
    """A Markdown table whose columns are padded, so it reads as well in a terminal."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def _metrics(metrics: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()) or "-"


def training_table(results: Iterable[Mapping]) -> str:
    """One row per trained model: steps, metrics reached, wall time, CPU time, parameters."""
    rows = []
    for r in results:
        steps = f"{r['steps_done']}/{r['steps_planned']}" + (" (time cap)" if r.get("stopped_by_time") else "")
        rows.append([r["model"], steps, _metrics(r["metrics"]), f"{r['wall_s']:.1f} s", f"{r['cpu_s']:.1f} s",
                     f"{r['parameters']:,}"])
    return markdown_table(["model", "steps", "metric reached", "wall time", "CPU time", "parameters"], rows)


def score_cell(grade: Mapping) -> str:
    """``"100/100 ✓"``: the score of max, and whether it is what that notebook should get."""
    if grade.get("score") is None or grade.get("max_score") is None:
        return "error"
    mark = "" if grade.get("expected") is None else (" ✓" if grade.get("as_expected") else " ✗ unexpected")
    return f"{grade['score']:g}/{grade['max_score']:g}{mark}"


def grading_table(grades: Iterable[Mapping], seconds: Mapping[str, float]) -> str:
    """One row per lab: the score of max of each graded notebook, and the time ``genlab grade`` took."""
    grades = list(grades)
    students = list(dict.fromkeys(g["student"] for g in grades))
    by_lab: dict[str, dict[str, Mapping]] = {}
    for g in grades:
        by_lab.setdefault(g["lab"], {})[g["student"]] = g
    rows = [[lab, *(score_cell(cells[s]) if s in cells else "-" for s in students),
             f"{seconds.get(lab, 0.0):.1f} s"] for lab, cells in by_lab.items()]
    return markdown_table(["lab", *students, "time"], rows)


def write_summary(out: Path, summary: Mapping) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.md`` (both tables) into ``out``; their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / SUMMARY_JSON, out / SUMMARY_MD
    json_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    parts = ["# genlab demo", ""]
    if summary.get("training"):
        parts += ["## Training", "", training_table(summary["training"]), ""]
    if summary.get("grading"):
        parts += ["## Grading", "", grading_table(summary["grading"], summary.get("grading_seconds", {})), ""]
    if summary.get("total_seconds") is not None:
        parts += [f"Total: {summary['total_seconds']:.0f} s wall time (`{summary.get('command', 'genlab demo')}`).", ""]
    md_path.write_text("\n".join(parts), encoding="utf-8")
    return json_path, md_path


def read_summary(out: Path) -> dict:
    """``out/summary.json`` as a dict; a clear error when the demo has not written it."""
    path = Path(out) / SUMMARY_JSON
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run `genlab demo --out {out}` first")
    return json.loads(path.read_text(encoding="utf-8"))
