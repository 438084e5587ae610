"""Every lab's notebooks: the release is generated from the solution, the structure the grader
relies on holds, and the solution runs top to bottom in a real Jupyter kernel (small settings)."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

from genlab.labs import generate_release

from .harness import all_labs, nbgrader_meta

LABS = [pytest.param(lab, id=lab.name) for lab in all_labs()]
HEAVY = re.compile(r"\b(Trainer|make_trainer|\.fit\(|generate\(|plots\.|Figure\(|loss_figure)")


def _comparable(nb):
    return [(c.cell_type, c.source, nbgrader_meta(c), c.metadata.get("tags", []),
             c.metadata.get("editable"), c.metadata.get("deletable")) for c in nb.cells]


@pytest.mark.parametrize("lab", LABS)
def test_release_is_generated_from_the_solution(lab, tmp_path):
    """Regenerating labs/<lab> from solutions/ gives the committed release (run `genlab labs`)."""
    written = generate_release(lab.name, dest=tmp_path / lab.name)
    fresh = [p for p in written if p.name == lab.release.name]
    assert fresh, f"the release of {lab.name} has no {lab.release.name}"
    release = nbformat.read(lab.release, as_version=4)
    assert _comparable(nbformat.read(fresh[0], as_version=4)) == _comparable(release), (
        f"labs/{lab.name} is out of date with solutions/{lab.name}: run `genlab labs {lab.name}`")
    assert fresh[0].read_bytes() == lab.release.read_bytes(), "same cells, different bytes: regenerate the release"
    again = generate_release(lab.name, dest=tmp_path / "again")
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in written], "generation is not deterministic"


@pytest.mark.parametrize("lab", LABS)
def test_no_outputs_committed(lab):
    for path in (lab.solution, lab.release):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, (path.name, nbgrader_meta(cell))


@pytest.mark.parametrize("lab", LABS)
def test_graded_cells_lose_their_solutions_and_are_followed_by_a_check(lab):
    solution, release = lab.read_solution(), nbformat.read(lab.release, as_version=4)
    rel = {nbgrader_meta(c).get("grade_id"): c for c in release.cells}
    cells = solution.cells
    for i, cell in enumerate(cells):
        meta = nbgrader_meta(cell)
        if not meta.get("solution"):
            continue
        grade_id = meta["grade_id"]
        assert meta["grade"] is False and meta["locked"] is False, grade_id
        assert "### BEGIN SOLUTION" in cell.source, grade_id
        stub = rel[grade_id].source
        assert "BEGIN SOLUTION" not in stub and "raise NotImplementedError()" in stub, grade_id
        outside = re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "", cell.source, flags=re.S)
        for signature in re.findall(r"^[ \t]*(?:def|class) .*$", outside, flags=re.M):
            assert signature in stub, (grade_id, signature)  # the signatures a student keeps survive
        check = cells[i + 1]
        assert nbgrader_meta(check).get("grade_id") == f"check_{grade_id}", grade_id
        assert nbgrader_meta(check).get("locked") is True and check.metadata.get("tags") == ["check"], grade_id
        assert "checks.check_" in check.source, grade_id


@pytest.mark.parametrize("lab", LABS)
def test_code_cells_are_nbgrader_cells_and_heavy_cells_are_tagged(lab):
    ids = []
    for cell in lab.read_solution().cells:
        if cell.cell_type != "code":
            continue
        meta = nbgrader_meta(cell)
        assert meta.get("grade_id"), cell.source[:80]
        ids.append(meta["grade_id"])
        assert meta.get("solution") or meta.get("locked"), meta["grade_id"]
        if HEAVY.search(cell.source) and not meta.get("solution"):
            assert set(cell.metadata.get("tags", [])) & {"training", "plotting"}, meta["grade_id"]
    assert len(ids) == len(set(ids)), "duplicate grade_id"


@pytest.mark.parametrize("lab", LABS)
def test_lab_toml_skips_heavy_cells_and_has_hidden_tests(lab):
    """(Blocked references are checked for every lab by tests/autograder/test_blocked_references.py.)"""
    assert {"training", "plotting", "check"} <= set(lab.lab.skip_tags)
    assert lab.lab.test_files(), f"{lab.name} has no hidden tests"


@pytest.mark.slow
@pytest.mark.parametrize("lab", LABS)
def test_solution_notebook_executes(lab, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    bin_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", bin_dir + os.pathsep + os.environ.get("PATH", ""))  # kernelspec runs `python`
    monkeypatch.setenv("GENLAB_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = lab.read_solution()
    client = NotebookClient(nb, kernel_name="python3", timeout=600, allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    checks = sum(1 for c in nb.cells if "check" in c.metadata.get("tags", []))
    assert text.count("✓") >= checks, "every public check should print a ✓ line"
    assert "Traceback" not in text
