"""``runs/demo/index.html``: one page with every figure, both tables and the example feedback.

It is drawn from ``summary.json`` alone (``genlab.demo.summary``), so it can be redrawn
without training (``genlab demo --page-only``). Images are linked by relative
paths, so the folder can be copied or zipped as a whole. Every piece of text that came from a
run, a notebook or the grader's feedback is escaped (``html.escape``); a figure listed in the
summary but missing on disk is shown as "missing", not as a broken image.
"""
from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

from genlab.demo.summary import read_summary, score_cell

__all__ = ["render_page", "write_page", "IMAGE_SUFFIXES", "MAX_TEXT_CHARS"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".gif")
#: A text figure (samples, translations) or a feedback file is cut after this many characters.
MAX_TEXT_CHARS = 20_000

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; }
th { background: #f0f0f0; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 540px; max-height: 420px; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; }
pre { font-family: ui-monospace, "DejaVu Sans Mono", "Noto Sans Mono CJK KR", "NanumGothicCoding", monospace; background: #f7f7f7; padding: 0.7em; overflow-x: auto; max-height: 30em; white-space: pre-wrap; }
.bad { color: #b00020; font-weight: bold; } .good { color: #1b6e20; }
.missing { color: #b00020; }
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table; ``rows`` hold already-escaped HTML."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _read_text(path: Path) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    return text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS] + f"\n… (cut; the whole file: {path.name})"


def _figure(out: Path, rel: str) -> str:
    path = out / rel
    caption = f"<figcaption>{_e(rel)}</figcaption>"
    if not path.is_file():
        return f'<figure><p class="missing">missing: {_e(rel)}</p>{caption}</figure>'
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return f'<figure><img src="{_e(Path(rel).as_posix())}" alt="{_e(path.name)}">{caption}</figure>'
    return f"<figure><pre>{_e(_read_text(path))}</pre>{caption}</figure>"


def _training(out: Path, training: list[Mapping]) -> str:
    rows = []
    for r in training:
        metrics = ", ".join(f"{_e(k)} {v:.4g}" for k, v in r["metrics"].items()) or "-"
        steps = f"{r['steps_done']}/{r['steps_planned']}" + (" (time cap)" if r.get("stopped_by_time") else "")
        rows.append([_e(r["model"]), _e(steps), metrics, f"{r['wall_s']:.1f} s", f"{r['cpu_s']:.1f} s",
                     f"{r['parameters']:,}"])
    parts = ["<h2>Training</h2>",
             _table(["model", "steps", "metric reached", "wall time", "CPU time", "parameters"], rows)]
    for r in training:
        parts.append(f"<h3 id=\"model-{_e(r['model'])}\">{_e(r['model'])} "
                     f"<small>({_e(r['run_dir'])})</small></h3>")
        figures = r.get("figures") or []
        parts.append("".join(_figure(out, f) for f in figures) if figures else "<p>no figures written</p>")
    return "\n".join(parts)


def _grade_cell(grade: Mapping) -> str:
    text = _e(score_cell(grade))
    css = "" if grade.get("expected") is None else (" class=\"good\"" if grade.get("as_expected") else " class=\"bad\"")
    if grade.get("feedback"):
        text = f'<a href="{_e(grade["feedback"])}">{text}</a>'
    return f"<span{css}>{text}</span>"


def _grading(out: Path, grades: list[Mapping], seconds: Mapping[str, float]) -> str:
    students = list(dict.fromkeys(g["student"] for g in grades))
    by_lab: dict[str, dict[str, Mapping]] = {}
    for g in grades:
        by_lab.setdefault(g["lab"], {})[g["student"]] = g
    rows = [[_e(lab), *(_grade_cell(cells[s]) if s in cells else "-" for s in students),
             f"{seconds.get(lab, 0.0):.1f} s"] for lab, cells in by_lab.items()]
    parts = ["<h2>Grading</h2>", "<p>Expected: every solution full marks (✓), every untouched release zero; "
             "the example submission has planted bugs.</p>", _table(["lab", *students, "time"], rows)]
    for g in grades:
        if not g["student"].startswith("example"):
            continue
        parts.append(f"<h3>Feedback: {_e(g['lab'])}, {_e(g['student'])} ({_e(score_cell(g))})</h3>")
        path = out / g["feedback"] if g.get("feedback") else None
        if path is not None and path.is_file():
            parts.append(f"<pre>{_e(_read_text(path))}</pre>")
        else:
            parts.append(f'<p class="missing">no feedback file{": " + _e(g["feedback"]) if g.get("feedback") else ""}'
                         f"{' (' + _e(g['error']) + ')' if g.get('error') else ''}</p>")
    return "\n".join(parts)


def render_page(out: Path, summary: Mapping) -> str:
    """The HTML of the demo page for the run folder ``out`` described by ``summary``."""
    out = Path(out)
    body = ["<h1>genlab demo</h1>"]
    if summary.get("total_seconds") is not None:
        body.append(f"<p>{summary['total_seconds']:.0f} s wall time in all "
                    f"(<code>{_e(summary.get('command', 'genlab demo'))}</code>); "
                    'tables as text: <a href="summary.md">summary.md</a>, <a href="summary.json">summary.json</a>.</p>')
    if summary.get("training"):
        body.append(_training(out, summary["training"]))
    if summary.get("grading"):
        body.append(_grading(out, summary["grading"], summary.get("grading_seconds", {})))
    if len(body) == 1:
        body.append("<p>Nothing trained or graded yet.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>genlab demo</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_page(out: Path, summary: Mapping | None = None) -> Path:
    """Write ``out/index.html`` from ``summary`` (default: ``out/summary.json``); its path."""
    out = Path(out)
    summary = read_summary(out) if summary is None else summary
    path = out / "index.html"
    path.write_text(render_page(out, summary), encoding="utf-8")
    return path
