"""The instructor's similarity report: each graded part of each submission, compared with the
library's reference implementations, the solution, and every other submission of the batch.

``similarity_report(lab, handins)`` returns ``Row``s; ``write_similarity(lab, handins, DIR)``
writes ``DIR/similarity.csv`` (instructor only: it is never part of a student's folder or
feedback) and returns the rows; ``summary(rows)`` is the section the batch prints.

How code is compared (token fingerprints over the AST, as MOSS does over tokens):

1. A part is the code of one graded cell (nbgrader ``solution``), found in the submission by
   ``grade_id`` or, metadata stripped, by content and position (``notebook.restore``);
   IPython syntax is transformed first.
2. The code becomes a token stream from its AST: node kinds, operators and attribute names
   (``.softmax``, ``.transpose``); every plain name (variables, arguments, functions,
   classes) becomes ``ID`` and constants ``NUM``/``STR`` (docstrings dropped), so renaming
   and reformatting change nothing.
3. Every ``K``-gram of tokens is hashed, and a window of ``W`` hashes keeps its minimum
   (winnowing); the release's own cell (signature, docstring) is subtracted, so the
   template the whole class shares does not count.
4. Similarity of A to B is the share of A's fingerprints found in B: 1.0 is a copy,
   whatever was renamed or reflowed.

References are every function and class of the modules the lab blocks (``lab.toml``
``blocked``), read from the grader's own library; each part's most similar one is reported.
"""
from __future__ import annotations

import ast
import csv
import hashlib
import importlib.util
import io
import textwrap
from dataclasses import dataclass
from pathlib import Path

from . import ipython_cells, text
from .errors import NotebookError
from .lab import REPO_ROOT, Lab
from .notebook import is_protected, read_notebook, restore
from .reports import write_atomic

K, W = 5, 4
FLAG = 0.8          # similarity from which the summary names a pair
MIN_FINGERPRINTS = 4


@dataclass(frozen=True)
class Row:
    """One comparison: ``student``'s ``part`` against ``other`` (a student, the solution or a reference)."""

    part: str
    student: str
    kind: str          # "reference" | "solution" | "student"
    other: str
    similarity: float  # share of the student's fingerprints found in the other's code
    fingerprints: int  # how many the student's part has (small numbers mean little code)


# ------------------------------------------------------------------ fingerprints
class _Tokens(ast.NodeVisitor):
    def __init__(self):
        self.out: list[str] = []

    def generic_visit(self, node):
        self.out.append(type(node).__name__)
        super().generic_visit(node)

    def visit_Name(self, node):
        self.out.append("ID")

    def visit_arg(self, node):
        self.out.append("ARG")

    def visit_Attribute(self, node):
        self.out.append("." + node.attr)
        self.visit(node.value)

    def visit_Constant(self, node):
        self.out.append("STR" if isinstance(node.value, str) else "NUM")

    def _body(self, kind: str, header: list, body: list) -> None:
        self.out.append(kind)
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]   # a docstring is not code
        for child in [*header, *body]:
            self.visit(child)

    def visit_FunctionDef(self, node):
        self._body("def", [*node.decorator_list, node.args, *([node.returns] if node.returns else [])], node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self._body("class", [*node.decorator_list, *node.bases, *node.keywords], node.body)


MAX_SOURCE = 200_000   # characters of one part that are compared (a larger one is not)


def tokens(source: str) -> list[str]:
    """The normalised token stream of ``source`` (empty when it does not parse or is too large)."""
    if len(source) > MAX_SOURCE:
        return []
    try:
        tree = ast.parse(ipython_cells.to_python(source))
        visitor = _Tokens()
        for stmt in tree.body:
            visitor.visit(stmt)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    return visitor.out


def fingerprints(source: str) -> frozenset[int]:
    """Winnowed hashes of the ``K``-grams of ``tokens(source)``."""
    toks = tokens(source)
    grams = [int.from_bytes(hashlib.blake2b(" ".join(toks[i:i + K]).encode(), digest_size=8).digest(), "big")
             for i in range(max(0, len(toks) - K + 1))]
    if len(grams) <= W:
        return frozenset(grams)
    return frozenset(min(grams[i:i + W]) for i in range(len(grams) - W + 1))


def share(a: frozenset[int], b: frozenset[int]) -> float:
    """The share of ``a`` found in ``b`` (0 when ``a`` is empty)."""
    return round(len(a & b) / len(a), 3) if a else 0.0


# ------------------------------------------------------------------ the parts
def graded_parts(release) -> dict[str, str]:
    """``grade_id -> the release's cell source`` for the cells students write."""
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in release.cells
            if isinstance(c.metadata.get("nbgrader"), dict) and c.metadata["nbgrader"].get("solution")
            and not is_protected(c) and c.metadata["nbgrader"].get("grade_id")}


def parts_of(path: Path, release, lab: Lab) -> dict[str, str]:
    """``grade_id -> source`` of the graded cells in the notebook at ``path`` (empty if unreadable)."""
    try:
        notebook, _ = restore(read_notebook(path, max_mb=lab.limits.max_notebook_mb), release)
    except NotebookError:
        return {}
    wanted = graded_parts(release)
    found: dict[str, list[str]] = {}
    for cell in notebook.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in wanted:
            found.setdefault(gid, []).append(cell.source)
    return {gid: "\n\n".join(sources) for gid, sources in found.items()}


def solution_notebook(lab: Lab) -> Path | None:
    """The lab's solution: ``solutions/<name>/<release name>``, or nbgrader's ``source/`` beside ``release/``."""
    for candidate in (REPO_ROOT / "solutions" / lab.name / lab.release.name,
                      lab.release.parent.parent / "source" / lab.release.name):
        if candidate.is_file():
            return candidate
    return None


def references(lab: Lab) -> dict[str, frozenset[int]]:
    """``"module.name" -> fingerprints`` of every function and class the lab blocks.

    Every module is read as source (``ast``), never imported: importing genlab's would pull in
    lightning and the models, and torch's own (``torch.nn:LSTMCell``) torch itself, seconds of
    every ``genlab grade`` spent before the report. Names a package re-exports are followed to
    the file that defines them; compiled functions (``torch:softmax``) have no source to compare."""
    out = {}
    for ref in lab.blocked:
        modname, _, attr = ref.partition(":")
        out.update(_module_sources(modname, attr))
    return out


def _module_file(modname: str) -> Path | None:
    """The ``.py`` file of ``modname``, found without importing it (genlab: the grader's own copy)."""
    top, *rest = modname.split(".")
    if top == "genlab":
        from autograder.release.library import LIBRARY
        base = LIBRARY
    else:
        try:
            spec = importlib.util.find_spec(top)   # a top-level spec imports nothing
        except (ImportError, ValueError):
            return None
        if spec is None:
            return None
        if not spec.submodule_search_locations:
            return Path(spec.origin) if not rest and spec.origin and spec.origin.endswith(".py") else None
        base = Path(next(iter(spec.submodule_search_locations)))
    for path in (base.joinpath(*rest).with_suffix(".py") if rest else None, base.joinpath(*rest, "__init__.py")):
        if path is not None and path.is_file():
            return path
    return None


def _parsed(path: Path) -> tuple[str, ast.Module] | None:
    try:
        source = path.read_text(encoding="utf-8")
        return source, ast.parse(source)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None


def _definition(modname: str, name: str, depth: int = 0) -> tuple[str, ast.AST] | None:
    """``(source of its file, node)`` of the top-level function or class ``name`` of ``modname``,
    following ``from X import name`` and ``from X import *`` a few modules deep."""
    path = _module_file(modname)
    parsed = _parsed(path) if path is not None else None
    if parsed is None or depth > 4:
        return None
    source, tree = parsed
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return source, node
    package = modname if path.name == "__init__.py" else modname.rpartition(".")[0]
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom):
            continue
        origin = node.module or ""
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            origin = ".".join(base + ([node.module] if node.module else []))
        for alias in node.names:
            if alias.name == "*" or (alias.asname or alias.name) == name:
                found = _definition(origin, name if alias.name == "*" else alias.name, depth + 1)
                if found is not None:
                    return found
    return None


def _module_sources(modname: str, attr: str) -> dict[str, frozenset[int]]:
    """Fingerprints of ``attr`` (``Class.method`` too; ``*``: every public function and class of
    the file, or its ``__all__``) in module ``modname``; {} for what has no Python source."""
    if attr == "*":
        path = _module_file(modname)
        parsed = _parsed(path) if path is not None else None
        if parsed is None:
            return {}
        tree = parsed[1]
        defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        listed = next((ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                       and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)), None)
        names = [n for n in (listed or defs) if n in defs and (listed or not n.startswith("_"))]
    else:
        names = [attr]
    out = {}
    for name in names:
        found = _definition(modname, name.split(".")[0])
        if found is None:
            continue
        source, node = found
        for part in name.split(".")[1:]:
            node = next((n for n in getattr(node, "body", []) if getattr(n, "name", None) == part), None)
        if node is None:
            continue
        first = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])   # as inspect does
        segment = "\n".join(source.splitlines()[first - 1:node.end_lineno]) + "\n"
        if segment.strip():
            out[f"{modname}.{name}"] = fingerprints(textwrap.dedent(segment))
    return out


# ------------------------------------------------------------------ the report
def similarity_report(lab: Lab, handins) -> list[Row]:
    """Every graded part of every handin with a notebook, against the references, the solution
    and each other (each unordered pair of students once per part)."""
    release = read_notebook(lab.release, max_mb=1024, allow_link=True)
    stubs = {gid: fingerprints(src) for gid, src in graded_parts(release).items()}
    solution_path = solution_notebook(lab)
    solution = parts_of(solution_path, release, lab) if solution_path else {}
    refs = references(lab)
    prints: dict[str, dict[str, frozenset[int]]] = {}
    for handin in handins:
        if handin.notebook is not None:
            parts = parts_of(Path(handin.notebook), release, lab)
            prints[handin.student] = {gid: fingerprints(src) - stubs.get(gid, frozenset()) for gid, src in parts.items()}
    rows: list[Row] = []
    for gid, stub in stubs.items():
        sol = fingerprints(solution[gid]) - stub if gid in solution else None
        students = sorted(s for s in prints if gid in prints[s])
        for i, student in enumerate(students):
            mine = prints[student][gid]
            if refs:
                name, best = max(((n, share(mine, fp)) for n, fp in refs.items()), key=lambda x: x[1])
                rows.append(Row(gid, student, "reference", name, best, len(mine)))
            if sol is not None:
                rows.append(Row(gid, student, "solution", "solution", share(mine, sol), len(mine)))
            for other in students[i + 1:]:
                theirs = prints[other][gid]
                rows.append(Row(gid, student, "student", other, max(share(mine, theirs), share(theirs, mine)),
                                min(len(mine), len(theirs))))
    return rows


def write_similarity(lab: Lab, handins, out_dir: Path) -> list[Row]:
    """``similarity_report`` written to ``out_dir/similarity.csv`` (sorted: most similar first)."""
    rows = sorted(similarity_report(lab, handins), key=lambda r: (r.part, -r.similarity, r.student, r.other))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["part", "student", "compared_with", "kind", "similarity", "fingerprints"])
    for r in rows:
        w.writerow([text.csv_cell(r.part), text.csv_cell(r.student), text.csv_cell(r.other), r.kind,
                    f"{r.similarity:.3f}", r.fingerprints])
    write_atomic(Path(out_dir) / "similarity.csv", buf.getvalue())
    return rows


def summary(rows: list[Row], limit: int = 15) -> str:
    """The batch summary's similarity section (instructor only)."""
    flagged = [r for r in rows if r.similarity >= FLAG and r.fingerprints >= MIN_FINGERPRINTS]
    flagged.sort(key=lambda r: (-r.similarity, r.part, r.student))
    lines = [f"Similarity (instructor only, similarity.csv): {len(flagged)} comparison(s) at {FLAG:.0%} or more"]
    for r in flagged[:limit]:
        with_what = "the solution" if r.kind == "solution" else r.other if r.kind == "student" else f"reference {r.other}"
        lines.append(f"  {text.terminal(r.part, 40)}: {text.terminal(r.student, 40)} ~ "
                     f"{text.terminal(with_what, 60)}  {r.similarity:.0%}")
    if len(flagged) > limit:
        lines.append(f"  ... {len(flagged) - limit} more in similarity.csv")
    return "\n".join(lines)
