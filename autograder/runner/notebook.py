"""Read a submitted notebook, restore its locked and test cells, list the code to run.

* ``read_notebook(path)`` reads a notebook with nbformat, or raises ``NotebookError`` whose
  message says what is wrong (missing, a symbolic link, larger than the lab's
  ``max_notebook_mb`` (checked before reading), empty, not UTF-8, not JSON, not nbformat 4).
* ``restore(submitted, release)`` puts back every cell that the release protects (nbgrader
  ``locked`` cells and test cells: ``grade`` without ``solution``), matched by ``grade_id``
  and compared with nbgrader's checksum, or, for cells whose metadata was stripped
  (Colab), by content and position (``cell_match``). Modified, deleted and duplicated
  protected cells, and changed points, are each reported as a notebook issue; a
  metadata-less copy of a protected cell is removed and never run.
* ``prepare(lab, path)`` does both and returns the ordered code cells to execute, leaving
  out cells tagged with one of the lab's ``skip_tags``. Tags come from the release for
  every cell the release knows by ``grade_id`` (a student cannot untag a training cell),
  plus the tags on the submitted cell. Each cell also carries the Python the worker runs
  (IPython syntax transformed by IPython's own transformer: ``ipython_cells``).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import cell_match, ipython_cells, text
from .errors import LabError, NotebookError
from .lab import Lab


@dataclass(frozen=True)
class CodeCell:
    """A code cell to execute. ``index`` is its 1-based position in the restored notebook."""

    index: int
    source: str
    grade_id: str | None = None
    tags: tuple[str, ...] = ()
    python: str | None = None   # what the worker runs: ``source`` with IPython syntax transformed

    @property
    def label(self) -> str:
        return f"cell {self.index}" + (f" ('{text.one_line(self.grade_id, 60)}')" if self.grade_id else "")


@dataclass
class PreparedNotebook:
    """The restored notebook, the code cells to run and the issues found on the way."""

    notebook: nbformat.NotebookNode
    cells: list[CodeCell]
    skipped: list[CodeCell] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- reading
MAX_NOTEBOOK_MB = 64   # default of ``Limits.max_notebook_mb``: a notebook above it is refused unread


def read_notebook(path: str | Path, max_mb: float = MAX_NOTEBOOK_MB, allow_link: bool = False) -> nbformat.NotebookNode:
    """Read ``path`` as an nbformat 4 notebook; raise ``NotebookError`` with a clear reason.

    A symbolic link is refused (``allow_link`` for the release), and so is a file of more than
    ``max_mb`` MiB, before it is read. Outputs and attachments are dropped before nbformat
    parses the rest: grading never needs them."""
    path = Path(path)
    name = text.one_line(path.name, 120)
    if path.is_symlink() and not allow_link:
        raise NotebookError(f"the notebook file {name} is a symbolic link, which is not graded; submit the "
                            "notebook file itself")
    if not path.exists():
        raise NotebookError(f"the notebook file {name} does not exist (nothing was submitted?)")
    if not path.is_file():
        raise NotebookError(f"{name} is not a file")
    limit = int(max_mb * (1 << 20))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if allow_link else os.O_NOFOLLOW))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise NotebookError(f"{name} is not a regular file")
            if st.st_size > limit:
                raise NotebookError(_too_large(name, st.st_size, max_mb))
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise NotebookError(f"the notebook file {name} cannot be read: {exc.strerror}") from None
    if len(raw) > limit:
        raise NotebookError(_too_large(name, len(raw), max_mb))
    if not raw.strip():
        raise NotebookError(f"the notebook file {name} is empty; save the notebook in Jupyter and submit again")
    try:
        source = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotebookError(
            f"the notebook file {name} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
            f"position {exc.start}); a notebook saved by Jupyter is UTF-8 JSON"
        ) from None
    del raw
    try:
        data = json.loads(source)
    except (json.JSONDecodeError, RecursionError) as exc:
        where = f" ({exc.msg} at line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise NotebookError(
            f"the notebook file {name} is not valid JSON{where}; was it edited outside Jupyter? Save it "
            "from Jupyter again"
        ) from None
    del source
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookError(
            f"the notebook file {name} is JSON but not a Jupyter notebook (no list of cells)"
        )
    version = data.get("nbformat")
    if version != 4:
        raise NotebookError(
            f"the notebook file {name} has nbformat version {text.one_line(repr(version), 40)}; only version 4 "
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
        if cell["cell_type"] == "code":
            cell["outputs"] = []
        cell.pop("attachments", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger = logging.getLogger("traitlets")
        level = logger.level
        logger.setLevel(logging.CRITICAL)
        try:
            return nbformat.reads(json.dumps(data), as_version=4)
        except Exception as exc:  # nbformat raises several types for odd documents
            raise NotebookError(f"the notebook file {name} cannot be parsed as a notebook: "
                                f"{text.one_line(exc, 300)}") from None
        finally:
            logger.setLevel(level)


def _too_large(name: str, size: int, max_mb: float) -> str:
    return (f"the notebook file {name} is {size / (1 << 20):.0f} MiB; notebooks above {max_mb:g} MiB are not "
            "graded. Clear its outputs (Kernel > Restart Kernel and Clear All Outputs), save and submit again")


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
    Cells are matched by ``grade_id``, and cells without nbgrader metadata by content and
    position (``cell_match``): such a cell is restored like any other, and only reported
    when its text differs from the release's. A cell without metadata whose text is that
    of a protected cell found elsewhere is a copy: it is removed, never run. Besides the
    cells, the restored notebook keeps a ``release_tags`` list per cell in
    ``cell.metadata["genlab"]`` with the release's tags for cells it knows.
    """
    release_cells = {}
    release_order = {}
    for pos, cell in enumerate(release.cells):
        gid = _grade_id(cell)
        if gid is not None and gid not in release_cells:
            release_cells[gid] = cell
            release_order[gid] = pos
    matched = cell_match.match(submitted.cells, release.cells)
    protected_text = {(c.cell_type, cell_match.normalized(c.source)): gid
                      for gid, c in release_cells.items() if is_protected(c)}

    issues: list[str] = []
    out: list[tuple[object, int | None]] = []   # (cell, release position or None)
    seen: dict[str, int] = {}
    for i, cell in enumerate(submitted.cells):
        own = _grade_id(cell)
        gid = own if own in release_cells else matched.get(i)
        original = release_cells.get(gid) if gid else None
        if original is None:
            copy_of = None if own else protected_text.get((cell.get("cell_type"), cell_match.normalized(cell.get("source", ""))))
            if copy_of is not None:
                issues.append(f"a copy of the protected cell '{copy_of}' was found; it was removed, not run")
                continue
            out.append((copy.deepcopy(cell), None))
            continue
        seen[gid] = seen.get(gid, 0) + 1
        if is_protected(original):
            if seen[gid] > 1:
                issues.append(f"cell '{gid}' was duplicated; the copy was removed")
                continue
            changed = _describe_change(cell, original) if own else _describe_text_change(cell, original)
            if changed:
                issues.append(f"cell '{gid}' {changed}; the original was restored")
            out.append((_fresh_copy(original), release_order[gid]))
        else:
            if seen[gid] == 2:
                issues.append(f"cell '{gid}' appears more than once; all copies were run in order")
            kept = copy.deepcopy(cell)
            if not own:   # found by content or position: it takes the release's nbgrader metadata
                kept.metadata["nbgrader"] = copy.deepcopy(original.metadata.get("nbgrader", {}))
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


def _describe_text_change(cell, original) -> str | None:
    """For a cell found without nbgrader metadata: only its type and text can differ."""
    if cell.get("cell_type") != original.cell_type:
        return f"was changed from a {original.cell_type} cell to a {cell.get('cell_type')} cell"
    if cell_match.normalized(cell.get("source", "")) != cell_match.normalized(original.source):
        return "was modified"
    return None


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
            theirs = text.one_line(repr(meta.get("points")), 40)
            return f"had its points changed (from {ometa.get('points')!r} to {theirs})"
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
        release = read_notebook(lab.release, max_mb=max(lab.limits.max_notebook_mb, 1024), allow_link=True)
    except NotebookError as exc:
        raise LabError(f"lab {lab.name}: the release notebook is unusable: {exc}") from None
    submitted = read_notebook(path, max_mb=lab.limits.max_notebook_mb)
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
            cells.append(dataclasses.replace(code, python=ipython_cells.to_python(cell.source)))
    return PreparedNotebook(notebook=notebook, cells=cells, skipped=skipped, issues=issues)
