"""Build the fixture lab's notebooks: the nbgrader source (= solution) and the student release.

    python tests/autograder/fixture_lab/make_release.py      # rewrites source/ and release/

The release is produced by nbgrader's own generate_assignment preprocessors (lock cells,
clear solutions and outputs, compute checksums). The cells are kept ruff-clean: ``ruff --fix``
rewrites notebooks, which would make the release disagree with its checksums. ``tests/autograder/test_fixture_lab.py``
checks that the committed notebooks match what this script builds.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "source" / "fixture.ipynb"
RELEASE = HERE / "release" / "fixture.ipynb"


def _meta(grade_id, *, solution=False, grade=False, locked=False, points=None, tags=None):
    meta = {"nbgrader": {"grade_id": grade_id, "solution": solution, "grade": grade, "locked": locked,
                         "schema_version": 3}}
    if grade:
        meta["nbgrader"]["points"] = points
    if tags:
        meta["tags"] = list(tags)
    return meta


def build_source() -> nbformat.NotebookNode:
    """The instructor's notebook: solutions between nbgrader's markers."""
    cells = [
        new_markdown_cell("# Fixture lab\n\nA tiny lab used to test the autograder.",
                          metadata=_meta("intro", locked=True)),
        new_code_cell("import torch", metadata=_meta("imports", locked=True)),
        new_markdown_cell("## 1. `add(a, b)`\n\nReturn the sum of `a` and `b` (numbers or tensors)."),
        new_code_cell(
            'def add(a, b):\n    """Return a + b."""\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION',
            metadata=_meta("add", solution=True),
        ),
        new_code_cell(
            'assert add(1, 2) == 3, "add(1, 2) should be 3"\nprint("add looks right")',
            metadata=_meta("check_add", grade=True, locked=True, points=1),
        ),
        new_markdown_cell("## 2. `softmax(x)`\n\nSoftmax over the last dimension, written by hand "
                          "(`F.softmax` and `torch.softmax` are not allowed)."),
        new_code_cell(
            'def softmax(x):\n    """Softmax over the last dimension: (..., n) -> (..., n)."""\n'
            "    ### BEGIN SOLUTION\n"
            "    shifted = x - x.max(dim=-1, keepdim=True).values\n"
            "    e = shifted.exp()\n"
            "    return e / e.sum(dim=-1, keepdim=True)\n"
            "    ### END SOLUTION",
            metadata=_meta("softmax", solution=True),
        ),
        new_code_cell(
            "_p = softmax(torch.tensor([[0.0, 0.0]]))\n"
            'assert torch.allclose(_p, torch.tensor([[0.5, 0.5]])), "equal scores should give equal weights"\n'
            'print("softmax looks right")',
            metadata=_meta("check_softmax", grade=True, locked=True, points=1),
        ),
        new_markdown_cell("## 3. `Counter`\n\nA counter that starts at `start`; `increment(by=1)` adds "
                          "`by` and returns the new count."),
        new_code_cell(
            "class Counter:\n"
            '    """Counts up from `start`."""\n\n'
            "    def __init__(self, start=0):\n"
            "        ### BEGIN SOLUTION\n"
            "        self.count = start\n"
            "        ### END SOLUTION\n\n"
            "    def increment(self, by=1):\n"
            '        """Add `by` to the count and return the new count."""\n'
            "        ### BEGIN SOLUTION\n"
            "        self.count += by\n"
            "        return self.count\n"
            "        ### END SOLUTION",
            metadata=_meta("counter", solution=True),
        ),
        new_markdown_cell("## 4. Training\n\nThis cell trains for a very long time; the grader skips it."),
        new_code_cell(
            "# Far too slow for the grader, which skips cells tagged `training`.\n"
            "import time\n\nwhile True:\n    time.sleep(1)",
            metadata=_meta("train", locked=True, tags=["training"]),
        ),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):  # stable ids, so the files do not churn
        cell["id"] = f"cell-{i:02d}"
    return nb


def build_release(source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Run nbgrader's generate_assignment preprocessors (those that need no database)."""
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearHiddenTests,
        ClearMarkScheme,
        ClearOutput,
        ClearSolutions,
        ComputeChecksums,
        LockCells,
    )

    nb = nbformat.from_dict(nbformat.reads(nbformat.writes(source), as_version=4))
    resources = {"nbgrader": {"assignment": "fixture", "notebook": "fixture"}}
    for cls in (LockCells, ClearSolutions, ClearOutput, CheckCellMetadata, ComputeChecksums,
                ClearHiddenTests, ClearMarkScheme, ComputeChecksums, CheckCellMetadata):
        nb, resources = cls().preprocess(nb, resources)
    return nb


def main() -> int:
    source = build_source()
    SOURCE.parent.mkdir(exist_ok=True)
    RELEASE.parent.mkdir(exist_ok=True)
    nbformat.write(source, SOURCE)
    nbformat.write(build_release(nbformat.read(SOURCE, as_version=4)), RELEASE)
    print(f"wrote {SOURCE.relative_to(HERE)} and {RELEASE.relative_to(HERE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
