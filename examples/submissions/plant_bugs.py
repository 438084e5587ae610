"""Rebuild ``examples/submissions/03_transformer/transformer.ipynb``: a lab-03 submission as a
student hands it in, with three realistic bugs planted.

The student's answers are the solution's code (nbgrader's ``### BEGIN/END SOLUTION`` lines
dropped) written into the release notebook, then three cells get a bug that students really
write (the same ones as lab 03's mutants in ``tests/lab03/cases.py``):

1. ``scaled_dot_product_attention`` fills masked scores with ``-1e9``: overflows in float16.
2. ``causal_mask`` uses ``.tril(-1)``: a query may not attend to itself (the diagonal).
3. ``MultiHeadAttention.merge_heads`` reshapes without ``transpose(1, 2)``: heads and time
   steps are mixed.

    python examples/submissions/plant_bugs.py     # after lab 03's solution changed

``genlab demo`` grades the notebook this writes and prints its feedback.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = ROOT / "solutions/03_transformer/transformer.ipynb"
RELEASE = ROOT / "labs/03_transformer/transformer.ipynb"
OUT = Path(__file__).resolve().parent / "03_transformer" / "transformer.ipynb"

#: grade_id -> (text in the solution's answer, what the student wrote instead)
BUGS = {
    "scaled_dot_product_attention": (
        ("        # the dtype's own minimum: safe in float16, unlike -1e9\n", ""),
        ("torch.finfo(scores.dtype).min", "-1e9"),
    ),
    "masks": (("dtype=torch.bool).tril()", "dtype=torch.bool).tril(-1)"),),
    "multi_head_attention": (
        ("return x.transpose(1, 2).reshape(B, T, H * d_head)", "return x.reshape(B, T, H * d_head)"),
    ),
}


def answer(source: str) -> str:
    """A solution cell as a student writes it: the nbgrader solution markers removed."""
    keep = [line for line in source.splitlines() if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
    return "\n".join(keep)


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def build() -> nbformat.NotebookNode:
    """The release notebook with every graded cell answered and the ``BUGS`` planted."""
    solution = {grade_id(c): c for c in nbformat.read(SOLUTION, as_version=4).cells if grade_id(c)}
    notebook = nbformat.read(RELEASE, as_version=4)
    for cell in notebook.cells:
        gid = grade_id(cell)
        if not (gid and cell.metadata["nbgrader"].get("solution")):
            continue
        source = answer(solution[gid].source)
        for old, new in BUGS.get(gid, ()):
            if old not in source:
                raise SystemExit(f"bug for {gid!r}: {old!r} is no longer in the solution cell; update BUGS")
            source = source.replace(old, new)
        cell.source = source
    return notebook


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(build(), OUT)
    print(f"wrote {OUT.relative_to(ROOT)}")
