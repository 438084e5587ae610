"""Find the release's cells in a submission whose nbgrader metadata is missing (Colab and
some editors drop it), by content and by position.

``match(submitted, release)`` returns ``{submitted index: release grade_id}`` for the
submitted cells that carry no grade_id the release knows. In order:

1. **Cell ids**: a submitted cell whose nbformat ``id`` is the id of a release cell (unique
   on both sides, same cell type) is that cell.
2. **Content**: the two notebooks are aligned as sequences (``difflib``) of cells, each
   cell keyed by its type and its source (whitespace at line ends ignored); a cell whose
   grade_id is already known is keyed by it. Equal cells in the alignment are the same
   cell, so an untouched locked cell, a test cell or the release's markdown is found where
   it is, and anchors everything around it.
3. **Position**: between two anchors, the release's cells still unmatched and the
   submission's cells there are paired in order (same cell type), preferring the pairs
   whose sources are most alike (the solution cell's signature and docstring, a
   check cell the student edited). A pair needs some likeness unless the gap holds
   exactly as many cells of that type on both sides.

A release cell that is not found stays unmatched (``notebook.restore`` restores it).
"""
from __future__ import annotations

import difflib

PLACEHOLDERS = ("# YOUR CODE HERE", "raise NotImplementedError()", "YOUR ANSWER HERE")
MIN_LIKENESS = 0.25
MAX_GAP = 100          # submitted cells considered between two anchors (bounds the grader's work)


def _gid(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    gid = meta.get("grade_id") if isinstance(meta, dict) else None
    return gid if isinstance(gid, str) and gid else None


def normalized(source: str) -> str:
    """A cell's source for comparison: no trailing spaces, no blank lines around it."""
    return "\n".join(line.rstrip() for line in source.replace("\r\n", "\n").split("\n")).strip("\n")


def likeness(release_source: str, submitted_source: str) -> float:
    """How much the submitted cell looks like the release's (0..1): the share of the release
    cell's own lines (placeholders aside) found in it, or their overall similarity."""
    ours = [ln.strip() for ln in release_source.splitlines() if ln.strip() and ln.strip() not in PLACEHOLDERS]
    theirs = {ln.strip() for ln in submitted_source.splitlines()}
    kept = sum(ln in theirs for ln in ours) / len(ours) if ours else 0.0
    ratio = difflib.SequenceMatcher(None, release_source[:1500], submitted_source[:1500], autojunk=False).ratio()
    return max(kept, ratio)


def match(submitted: list, release: list) -> dict[int, str]:
    """``{index in submitted: release grade_id}`` for cells without a known grade_id."""
    rel_gid = [_gid(c) for c in release]
    gids = {g for g in rel_gid if g}
    claimed: dict[str, int] = {}          # release grade_id -> submitted index
    for i, cell in enumerate(submitted):
        g = _gid(cell)
        if g in gids and g not in claimed:
            claimed[g] = i
    # cells with a grade_id of their own (known, duplicated or foreign) are never re-assigned
    known = {i for i, cell in enumerate(submitted) if _gid(cell)}
    found: dict[int, str] = {}
    _by_id(submitted, release, rel_gid, claimed, known, found)
    _by_content(submitted, release, rel_gid, claimed, known, found)
    return found


def _claim(i: int, gid: str, claimed: dict, found: dict) -> None:
    claimed[gid] = i
    found[i] = gid


def _by_id(submitted, release, rel_gid, claimed, known, found) -> None:
    sub_ids = [c.get("id") for c in submitted]
    rel_ids = [c.get("id") for c in release]
    for j, cid in enumerate(rel_ids):
        gid = rel_gid[j]
        if not cid or not gid or gid in claimed or rel_ids.count(cid) != 1 or sub_ids.count(cid) != 1:
            continue
        i = sub_ids.index(cid)
        if i not in known and i not in found and submitted[i].get("cell_type") == release[j].cell_type:
            _claim(i, gid, claimed, found)


def _key(cell, gid: str | None):
    return ("gid", gid) if gid else (cell.get("cell_type"), normalized(cell.get("source", "")))


def _by_content(submitted, release, rel_gid, claimed, known, found) -> None:
    owner = {i: g for g, i in claimed.items()}
    sub_keys = [("gid", owner[i]) if i in owner else ("own", i) if i in known else _key(c, None)
                for i, c in enumerate(submitted)]
    rel_keys = [_key(c, g if g in claimed else None) for c, g in zip(release, rel_gid, strict=True)]
    blocks = difflib.SequenceMatcher(None, sub_keys, rel_keys, autojunk=False).get_matching_blocks()
    anchors = [(-1, -1)]
    for a, b, size in blocks:
        for k in range(size):
            i, j = a + k, b + k
            gid = rel_gid[j]
            if gid and gid not in claimed and i not in known and i not in found:
                _claim(i, gid, claimed, found)
            anchors.append((i, j))
    anchors.append((len(submitted), len(release)))
    for (i0, j0), (i1, j1) in zip(anchors, anchors[1:], strict=False):
        rel = [j for j in range(j0 + 1, j1) if rel_gid[j] and rel_gid[j] not in claimed]
        sub = [i for i in range(i0 + 1, i1) if i not in known and i not in found][:MAX_GAP]
        if rel and sub:
            for i, j in _pair_in_order(submitted, release, sub, rel):
                _claim(i, rel_gid[j], claimed, found)


def _pair_in_order(submitted, release, sub: list[int], rel: list[int]) -> list[tuple[int, int]]:
    """The order-keeping pairing of ``sub`` with ``rel`` that maximises likeness (a small DP)."""
    kinds = {}
    for j in rel:
        kinds.setdefault(release[j].cell_type, [0, 0])[0] += 1
    for i in sub:
        kind = submitted[i].get("cell_type")
        if kind in kinds:
            kinds[kind][1] += 1

    def score(i, j):
        kind = release[j].cell_type
        if submitted[i].get("cell_type") != kind:
            return None
        s = likeness(release[j].source, submitted[i].get("source", ""))
        if s >= MIN_LIKENESS:
            return s
        return 0.01 if kinds[kind][0] == kinds[kind][1] else None   # as many on both sides: position decides

    n, m = len(sub), len(rel)
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    move = [[0] * (m + 1) for _ in range(n + 1)]
    for a in range(n - 1, -1, -1):
        for b in range(m - 1, -1, -1):
            options = [(best[a + 1][b], 1), (best[a][b + 1], 2)]
            s = score(sub[a], rel[b])
            if s is not None:
                options.append((s + best[a + 1][b + 1], 3))
            best[a][b], move[a][b] = max(options)
    pairs, a, b = [], 0, 0
    while a < n and b < m:
        step = move[a][b]
        if step == 3:
            pairs.append((sub[a], rel[b]))
            a, b = a + 1, b + 1
        elif step == 1:
            a += 1
        else:
            b += 1
    return pairs
