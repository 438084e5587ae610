"""What a graded submission turns into on disk: results.json, feedback.md, grades.csv.

Everything here is a pure function of ``SubmissionResult`` objects (plus the atomic
writer), so a rerun that skips finished submissions re-renders byte-identical files.
Text that a submission can influence is escaped for each format (``text``): fenced or
escaped in Markdown, plain text in ``results.json``, formula-proof cells in the CSV, one
line without escape sequences on the terminal.

- ``gradescope_json(result)``: Gradescope's ``results.json`` text.
- ``feedback_markdown(result)``: the student's feedback page.
- ``grades_csv(results)``: one row per student, one column per hidden test.
- ``summary_table(results)``: the plain-text table printed after a batch.
- ``write_atomic(path, text)``: write-then-rename, so a reader (or a crash) never sees
  half a file.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from autograder.runner import text
from autograder.runner.results import SubmissionResult, TestOutcome

GPU_NOTE = "needs a CUDA GPU; not run on this runner"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` so that the file is either old or new, never partial."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fmt_points(x: float) -> str:
    """2.0 -> '2', 1.5 -> '1.5', 0.3333333 -> '0.3333' (stable text for CSV and Markdown)."""
    x = round(float(x), 4)
    return str(int(x)) if x == int(x) else f"{x:g}"


# --------------------------------------------------------------------------- results.json

def gradescope_json(result: SubmissionResult) -> str:
    """Gradescope's ``results.json`` for one submission (schema from ``to_gradescope``)."""
    return json.dumps(result.to_gradescope(), indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- feedback.md

_MARK = {"passed": "✓", "failed": "✗", "not_run": "–"}


def _fenced(body: str) -> str:
    """A fenced block that survives backticks inside ``body``."""
    return text.md_block(body)


def _test_line(t: TestOutcome) -> str:
    name = text.one_line(t.name, text.NAME)   # hidden tests name themselves: trusted, kept readable
    if t.status == "not_run":
        return f"- {_MARK['not_run']} **{name}**: not run ({GPU_NOTE}), worth {fmt_points(t.points)} points"
    return f"- {_MARK.get(t.status, '?')} **{name}**: {fmt_points(t.score)} / {fmt_points(t.points)}"


def feedback_markdown(result: SubmissionResult) -> str:
    """The student's feedback: score, every test (✓ / ✗ / – not run) with its message,
    notebook issues, and how the notebook was isolated. No hidden test source, ever:
    only the messages the hidden tests wrote for students."""
    r = result
    out = [f"# Feedback: {text.one_line(r.lab, text.NAME)}", "", f"Student: {text.md_inline(r.student)}", ""]
    out.append(f"**Score: {fmt_points(r.score)} / {fmt_points(r.max_score)}**")
    if r.pending_points:
        out += ["", f"{fmt_points(r.pending_points)} more points come from GPU tests that were "
                "not run on this runner. They are neither passed nor failed: they will be "
                "awarded when the notebook is regraded on a GPU runner."]
    if r.error:
        out += ["", "## Problem", "", _fenced(r.error)]
    if r.notebook_issues:
        out += ["", "## Notebook issues", ""]
        out += [f"- {text.md_inline(issue)}" for issue in r.notebook_issues]
    if r.tests:
        out += ["", "## Tests", ""]
        parts: dict[str, list[TestOutcome]] = {}
        for t in r.tests:
            parts.setdefault(t.part, []).append(t)
        for part, tests in parts.items():
            if part and len(parts) > 1:
                got = sum(t.score for t in tests if t.status != "not_run")
                can = sum(t.points for t in tests if t.status != "not_run")
                out += [f"### {text.one_line(part, text.NAME)} ({fmt_points(got)} / {fmt_points(can)})", ""]
            for t in tests:
                out.append(_test_line(t))
                if t.message and t.status != "passed":
                    out += ["", _fenced(t.message), ""]
            out.append("")
        while out and out[-1] == "":
            out.pop()
    if r.isolation:
        out += ["", "## How your notebook was run", "", text.md_inline(r.isolation)]
    out += ["", f"_Graded in {r.execution_time:.1f} s._", ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- grades.csv

def test_columns(results: Iterable[SubmissionResult]) -> list[str]:
    """Per-test column names, in the order the tests first appear across ``results``."""
    seen: dict[str, None] = {}
    for r in results:
        for t in r.tests:
            seen.setdefault(t.name, None)
    return list(seen)


def lab_max_score(results: Iterable[SubmissionResult]) -> float:
    """The most points any result could award: used for rows whose grader never ran tests."""
    return max((r.max_score for r in results if r.tests), default=0.0)


def grades_csv(results: Iterable[SubmissionResult]) -> str:
    """One row per student (sorted): student, score, max_score, pending_gpu_points, one
    column per hidden test (its score, or ``not_run``; empty if the test never ran for that
    student), notebook_issues, error."""
    rows = sorted(results, key=lambda r: r.student)
    cols = test_columns(rows)
    full = lab_max_score(rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", "score", "max_score", "pending_gpu_points", *(text.csv_cell(c) for c in cols),
                "notebook_issues", "error"])
    for r in rows:
        by_name = {t.name: t for t in r.tests}
        cells = []
        for c in cols:
            t = by_name.get(c)
            cells.append("" if t is None else "not_run" if t.status == "not_run" else fmt_points(t.score))
        w.writerow([
            text.csv_cell(r.student), fmt_points(r.score), fmt_points(r.max_score if r.tests else full),
            fmt_points(r.pending_points), *cells, text.csv_cell(" | ".join(r.notebook_issues)),
            text.csv_cell(r.error or ""),
        ])
    return buf.getvalue()


# --------------------------------------------------------------------------- summary

def _issues(r: SubmissionResult) -> str:
    bits = []
    if r.error and r.error.strip():
        bits.append(r.error.strip().splitlines()[0])
    bits += r.notebook_issues
    line = text.terminal("; ".join(bits), 10**4)
    return line if len(line) <= 70 else line[:67] + "..."


def summary_table(results: Iterable[SubmissionResult]) -> str:
    """A fixed-width table: student, score/max, pending GPU points, issues."""
    rows = sorted(results, key=lambda r: r.student)
    full = lab_max_score(rows)
    table = [("student", "score", "pending GPU", "issues")]
    for r in rows:
        table.append((
            text.terminal(r.student, 60),
            f"{fmt_points(r.score)}/{fmt_points(r.max_score if r.tests else full)}",
            fmt_points(r.pending_points) if r.pending_points else "-",
            _issues(r) or "-",
        ))
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    lines = []
    for k, row in enumerate(table):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
        if k == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 6)
    return "\n".join(line.rstrip() for line in lines)
