"""The lab 03 solution notebook runs top to bottom in a real Jupyter kernel (small settings)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest

from . import cases

pytestmark = pytest.mark.slow


def test_solution_notebook_executes(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    bin_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", bin_dir + os.pathsep + os.environ.get("PATH", ""))  # kernelspec runs `python`
    monkeypatch.setenv("GENLAB_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(cases.SOLUTION, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=600, allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert text.count("✓") >= 6, "every public check should print a ✓ line"
    assert "test exact match" in text
