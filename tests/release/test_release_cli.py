"""`genlab release`: progress per step, lab selection, and clear errors."""
from __future__ import annotations

import zipfile

from genlab.cli import main


def test_release_one_lab_writes_the_bundle_with_progress(tmp_path, capsys):
    out = tmp_path / "student"
    assert main(["release", "--wheel-url", "https://example.org/genlab.whl", "--labs", "03", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for step in ("[1/4] stubbing the graded parts of 03_transformer", "[2/4]", "[3/4]", "[4/4]", "done:"):
        assert step in printed
    assert [p.name for p in (out / "labs").iterdir()] == ["03_transformer"]
    (wheel,) = (out / "wheel").glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        attention = zf.read("genlab/nn/attention.py").decode()
        vae = zf.read("genlab/nn/vae.py").decode()
    assert "GradedPartError('scaled_dot_product_attention', '03'" in attention
    assert "GradedPartError" not in vae, "only the selected labs' parts are stubbed"
    assert main(["release", "--wheel-url", "u", "--labs", "03", "--out", str(out)]) == 0, "a rerun replaces the bundle"


def test_release_refuses_a_folder_that_is_not_a_bundle_and_an_unknown_lab(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert main(["release", "--wheel-url", "u", "--out", str(tmp_path)]) == 2
    assert "is not a student bundle" in capsys.readouterr().err and (tmp_path / "mine.txt").exists()
    assert main(["release", "--wheel-url", "u", "--labs", "42", "--out", str(tmp_path / "new")]) == 2
    assert "no lab '42' with a release; known labs: 00_precision" in capsys.readouterr().err
