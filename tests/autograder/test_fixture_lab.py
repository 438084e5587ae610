"""The fixture lab's committed notebooks are exactly what nbgrader's preprocessors build."""
import importlib.util

import nbformat

from .conftest import FIXTURE, RELEASE, SOURCE


def _builder():
    spec = importlib.util.spec_from_file_location("fixture_make_release", FIXTURE / "make_release.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_source_and_release_do_not_drift():
    builder = _builder()
    source = nbformat.read(SOURCE, as_version=4)
    assert nbformat.writes(builder.build_source()) == nbformat.writes(source), (
        "source/fixture.ipynb differs from make_release.py: run it to regenerate"
    )
    release = nbformat.read(RELEASE, as_version=4)
    assert nbformat.writes(builder.build_release(source)) == nbformat.writes(release), (
        "release/fixture.ipynb is not nbgrader's release of source/fixture.ipynb: run make_release.py"
    )


def test_release_cleared_solutions_and_kept_checksums():
    release = nbformat.read(RELEASE, as_version=4)
    text = "\n".join(c.source for c in release.cells)
    assert "BEGIN SOLUTION" not in text and "raise NotImplementedError()" in text
    checks = [c for c in release.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert checks and all(c.metadata.nbgrader.get("checksum") for c in checks)
