"""Read a submitted notebook, restore its locked and test cells, list the code to run.

* ``read_notebook(path)`` reads a notebook with nbformat, or raises ``NotebookError`` whose
  message says what is wrong (missing, empty, not UTF-8, not JSON, not nbformat 4).
* ``restore(submitted, release)`` puts back every cell that the release protects (nbgrader
  ``locked`` cells and test cells: ``grade`` without ``solution``), matched by ``grade_id``
  and compared with nbgrader's checksum. Modified, deleted and duplicated protected cells,
  and changed points, are each reported as a notebook issue.
* ``prepare(lab, path)`` does both and returns the ordered code cells to execute, leaving
  out cells tagged with one of the lab's ``skip_tags``. Tags come from the release for
  every cell the release knows by ``grade_id`` (a student cannot untag a training cell),
  plus the tags on the submitted cell.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .errors import LabError, NotebookError
from .lab import Lab


@dataclass(frozen=True)
class CodeCell:
    """A code cell to execute. ``index`` is its 1-based position in the restored notebook."""

    index: int
    source: str
    grade_id: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"cell {self.index}" + (f" ('{self.grade_id}')" if self.grade_id else "")


@dataclass
class PreparedNotebook:
    """The restored notebook, the code cells to run and the issues found on the way."""

    notebook: nbformat.NotebookNode
    cells: list[CodeCell]
    skipped: list[CodeCell] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- reading
def read_notebook(path: str | Path) -> nbformat.NotebookNode:
    """Read ``path`` as an nbformat 4 notebook; raise ``NotebookError`` with a clear reason."""
    path = Path(path)
    name = path.name
    if not path.exists():
        raise NotebookError(f"the notebook file {name} does not exist (nothing was submitted?)")
    if not path.is_file():
        raise NotebookError(f"{name} is not a file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotebookError(f"the notebook file {name} cannot be read: {exc.strerror}") from None
    if not raw.strip():
        raise NotebookError(f"the notebook file {name} is empty; save the notebook in Jupyter and submit again")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotebookError(
            f"the notebook file {name} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
            f"position {exc.start}); a notebook saved by Jupyter is UTF-8 JSON"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"the notebook file {name} is not valid JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}); was it edited outside Jupyter? Save it from Jupyter again"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookError(
            f"the notebook file {name} is JSON but not a Jupyter notebook (no list of cells)"
        )
    version = data.get("nbformat")
    if version != 4:
        raise NotebookError(
            f"the notebook file {name} has nbformat version {version!r}; only version 4 "
            "(what current Jupyter writes) is supported: open it in Jupyter and save it again"
        )
    for i, cell in enumerate(data["cells"], 1):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise NotebookError(f"cell {i} of {name} is malformed (unknown cell type)")
        source = cell.get("source", "")
        if not (isinstance(source, str) or (isinstance(source, list) and all(isinstance(s, str) for s in source))):
            raise NotebookError(f"cell {i} of {name} is malformed (its source is not text)")
        if not isinstance(cell.get("metadata", {}), dict):
            raise NotebookError(f"cell {i} of {name} is malformed (its metadata is not an object)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger = logging.getLogger("traitlets")
        level = logger.level
        logger.setLevel(logging.CRITICAL)
        try:
            return nbformat.reads(text, as_version=4)
        except Exception as exc:  # nbformat raises several types for odd documents
            raise NotebookError(f"the notebook file {name} cannot be parsed as a notebook: {exc}") from None
        finally:
            logger.setLevel(level)


# ----------------------------------------------------------------- nbgrader metadata
def _nbgrader(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _grade_id(cell) -> str | None:
    gid = _nbgrader(cell).get("grade_id")
    return gid if isinstance(gid, str) and gid else None


def is_protected(cell) -> bool:
    """nbgrader's ``is_locked``: locked cells and grade cells that are not solution cells."""
    meta = _nbgrader(cell)
    if not meta or meta.get("solution", False):
        return False
    return bool(meta.get("grade", False) or meta.get("locked", False))


def compute_checksum(cell) -> str:
    """The checksum nbgrader stores in ``metadata.nbgrader.checksum``.

    Same bytes as ``nbgrader.utils.compute_checksum`` (a test checks it), without importing
    nbgrader, which takes seconds.
    """
    meta = _nbgrader(cell)
    grade = meta.get("grade", False)
    solution = meta.get("solution", False)
    locked = False if solution else (True if grade else meta.get("locked", False))
    m = hashlib.md5()
    m.update(cell.source.encode("utf-8"))
    m.update(cell.cell_type.encode("utf-8"))
    m.update(str(grade).encode("utf-8"))
    m.update(str(solution).encode("utf-8"))
    m.update(str(locked).encode("utf-8"))
    m.update(meta["grade_id"].encode("utf-8"))
    if grade:
        m.update(str(float(meta["points"])).encode("utf-8"))
    return m.hexdigest()


def _release_checksum(cell) -> str:
    stored = _nbgrader(cell).get("checksum")
    return stored if isinstance(stored, str) and stored else compute_checksum(cell)


def _tags(cell) -> tuple[str, ...]:
    tags = cell.get("metadata", {}).get("tags", [])
    return tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else ()


def _fresh_copy(release_cell):
    cell = copy.deepcopy(release_cell)
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
    return cell


# ---------------------------------------------------------------------- restoring
def restore(submitted: nbformat.NotebookNode, release: nbformat.NotebookNode):
    """Return ``(notebook, issues)``: ``submitted`` with the release's protected cells restored.

    ``notebook`` is a new notebook; each entry of ``issues`` is a student-facing sentence.
    Besides the cells, the restored notebook keeps a ``release_tags`` list per cell in
    ``cell.metadata["genlab"]`` with the release's tags for cells it knows.
    """
    release_cells = {}
    release_order = {}
    for pos, cell in enumerate(release.cells):
        gid = _grade_id(cell)
        if gid is not None and gid not in release_cells:
            release_cells[gid] = cell
            release_order[gid] = pos

    issues: list[str] = []
    out: list[tuple[object, int | None]] = []   # (cell, release position or None)
    seen: dict[str, int] = {}
    for cell in submitted.cells:
        gid = _grade_id(cell)
        original = release_cells.get(gid) if gid else None
        if original is None:
            out.append((copy.deepcopy(cell), None))
            continue
        seen[gid] = seen.get(gid, 0) + 1
        if is_protected(original):
            if seen[gid] > 1:
                issues.append(f"cell '{gid}' was duplicated; the copy was removed")
                continue
            changed = _describe_change(cell, original)
            if changed:
                issues.append(f"cell '{gid}' {changed}; the original was restored")
            out.append((_fresh_copy(original), release_order[gid]))
        else:
            if seen[gid] == 2:
                issues.append(f"cell '{gid}' appears more than once; all copies were run in order")
            kept = copy.deepcopy(cell)
            out.append((kept, release_order[gid]))

    for gid, original in release_cells.items():
        if gid in seen or not is_protected(original):
            continue
        pos = release_order[gid]
        insert_at = 0
        for i, (_, rpos) in enumerate(out):
            if rpos is not None and rpos < pos:
                insert_at = i + 1
        out.insert(insert_at, (_fresh_copy(original), pos))
        issues.append(f"cell '{gid}' was deleted; the original was restored")

    restored = nbformat.v4.new_notebook(metadata=copy.deepcopy(submitted.metadata))
    for cell, _ in out:
        gid = _grade_id(cell)
        if gid in release_cells:
            cell.metadata.setdefault("genlab", {})["release_tags"] = list(_tags(release_cells[gid]))
        restored.cells.append(cell)
    return restored, issues


def _describe_change(cell, original) -> str | None:
    if cell.get("cell_type") != original.cell_type:
        return f"was changed from a {original.cell_type} cell to a {cell.get('cell_type')} cell"
    meta, ometa = _nbgrader(cell), _nbgrader(original)
    if ometa.get("grade") and meta.get("points") != ometa.get("points"):
        try:
            same = float(meta.get("points")) == float(ometa.get("points"))
        except (TypeError, ValueError):
            same = False
        if not same:
            return f"had its points changed (from {ometa.get('points')!r} to {meta.get('points')!r})"
    try:
        checksum = compute_checksum(cell)
    except (KeyError, TypeError, ValueError, AttributeError):
        return "had its nbgrader metadata changed"
    if checksum != _release_checksum(original) or cell.source != original.source:
        return "was modified"
    return None


# ---------------------------------------------------------------------- preparing
def prepare(lab: Lab, path: str | Path) -> PreparedNotebook:
    """Read and restore the submission at ``path`` and list the code cells to execute."""
    try:
        release = read_notebook(lab.release)
    except NotebookError as exc:
        raise LabError(f"lab {lab.name}: the release notebook is unusable: {exc}") from None
    submitted = read_notebook(path)
    notebook, issues = restore(submitted, release)
    cells, skipped = [], []
    skip = set(lab.skip_tags)
    for index, cell in enumerate(notebook.cells, 1):
        if cell.cell_type != "code":
            continue
        tags = tuple(dict.fromkeys(cell.metadata.get("genlab", {}).get("release_tags", []) + list(_tags(cell))))
        code = CodeCell(index=index, source=cell.source, grade_id=_grade_id(cell), tags=tags)
        if skip.intersection(tags):
            skipped.append(code)
        elif cell.source.strip():
            cells.append(code)
    return PreparedNotebook(notebook=notebook, cells=cells, skipped=skipped, issues=issues)
