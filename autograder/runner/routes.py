"""The instructor's routes report: code in a notebook that reaches around what the worker enforces.

The worker refuses blocked references (``worker_blockers.py``) and torch's operators by any
name (``worker_opwatch.py``) inside the student's own process. A few routes cannot be
refused there: an operator run in another thread, or inside ``DisableTorchFunction`` that a
call enters and leaves; a hand-made ``__torch_function__`` that runs code while torch's
dispatch is busy; reaching the originals through ``gc`` or ``sys.modules``. Honest lab code
has no reason to use any of them, so their names in a notebook are reported here for the
instructor to read: ``grades/<lab>/routes.csv`` and a section of the batch summary. Nothing
here changes a score or reaches a student.

``find_routes(source)`` reads the code with ``ast`` (IPython syntax transformed first), so a
comment or a string that mentions a name is not a finding.
"""
from __future__ import annotations

import ast
import csv
import io
from dataclasses import dataclass
from pathlib import Path

from . import ipython_cells, text
from .errors import NotebookError
from .notebook import read_notebook
from .reports import write_atomic

# (dotted name or its last part, what it does): matched against attribute chains and imports.
ROUTES: tuple[tuple[str, str], ...] = (
    ("DisableTorchFunction", "switches torch-function dispatch off (the operator watch)"),
    ("DisableTorchFunctionSubclass", "switches torch-function dispatch off (the operator watch)"),
    ("_set_torch_function_state", "switches torch-function dispatch off (the operator watch)"),
    ("_pop_torch_function_stack", "edits torch's mode stack (the operator watch)"),
    ("_push_on_torch_function_stack", "edits torch's mode stack (the operator watch)"),
    ("_pop_mode", "edits torch's mode stack (the operator watch)"),
    ("_pop_mode_temporarily", "edits torch's mode stack (the operator watch)"),
    ("__torch_function__", "defines a torch dispatch handler (runs code inside another operator)"),
    ("__torch_dispatch__", "defines a torch dispatch handler (runs code inside another operator)"),
    ("threading", "runs code in another thread (out of the operator watch's sight)"),
    ("_thread", "runs code in another thread (out of the operator watch's sight)"),
    ("concurrent.futures", "runs code in another thread or process"),
    ("multiprocessing", "runs code in another process"),
    ("gc.get_objects", "searches the interpreter's objects (for a blocked original)"),
    ("gc.get_referrers", "searches the interpreter's objects (for a blocked original)"),
    ("__wrapped__", "unwraps a function (a blocker's original)"),
    ("__closure__", "reads a function's closure (a blocker's original)"),
    ("importlib.reload", "reloads a module (to get a blocked original back)"),
    ("sys.modules", "edits or reads the module table directly"),
)
_BY_LAST = {name.rsplit(".", 1)[-1]: (name, why) for name, why in ROUTES}


@dataclass(frozen=True)
class Finding:
    """One route in one cell: ``name`` (as listed in ``ROUTES``) found on ``line`` of ``cell``."""

    student: str
    cell: int      # index in the notebook
    line: int
    name: str
    why: str


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _match(dotted: str) -> tuple[str, str] | None:
    """The route ``dotted`` (``torch._C.DisableTorchFunction``, ``gc.get_objects``) names, if any."""
    for name, why in ROUTES:
        if dotted == name or dotted.endswith("." + name) or (("." in name) and dotted.startswith(name + ".")):
            return name, why
    return None


def find_routes(source: str) -> list[tuple[int, str, str]]:
    """``(line, name, why)`` for each route named in ``source`` (nothing when it does not parse)."""
    try:
        tree = ast.parse(ipython_cells.to_python(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    found: dict[tuple[int, str], str] = {}
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            names = [dotted] if dotted else [node.attr]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in _BY_LAST:
            names = [node.name]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in _BY_LAST:
            names = [node.value]   # getattr(obj, "__wrapped__")
        for dotted in names:
            hit = _match(dotted)
            if hit:
                found.setdefault((getattr(node, "lineno", 0), hit[0]), hit[1])
    return [(line, name, why) for (line, name), why in sorted(found.items())]


def routes_report(lab, handins) -> list[Finding]:
    """Every route in every code cell of every handin with a readable notebook."""
    out: list[Finding] = []
    for handin in handins:
        if handin.notebook is None:
            continue
        try:
            notebook = read_notebook(Path(handin.notebook), max_mb=lab.limits.max_notebook_mb)
        except NotebookError:
            continue
        for index, cell in enumerate(notebook.cells):
            if cell.get("cell_type") != "code":
                continue
            for line, name, why in find_routes(str(cell.get("source", ""))):
                out.append(Finding(handin.student, index, line, name, why))
    return out


def write_routes(lab, handins, out_dir: Path) -> list[Finding]:
    """``routes_report`` written to ``out_dir/routes.csv`` (instructor only)."""
    findings = routes_report(lab, handins)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", "cell", "line", "name", "what_it_does"])
    for f in findings:
        w.writerow([text.csv_cell(f.student), f.cell, f.line, f.name, f.why])
    write_atomic(Path(out_dir) / "routes.csv", buf.getvalue())
    return findings


def summary(findings: list[Finding], limit: int = 15) -> str:
    """The batch summary's routes section (instructor only)."""
    students = sorted({f.student for f in findings})
    lines = [f"Routes around the grader's watch (instructor only, routes.csv): {len(students)} notebook(s)"]
    for f in findings[:limit]:
        lines.append(f"  {text.terminal(f.student, 40)}: cell {f.cell} line {f.line}: {f.name}: {f.why}")
    if len(findings) > limit:
        lines.append(f"  ... {len(findings) - limit} more in routes.csv")
    return "\n".join(lines)
