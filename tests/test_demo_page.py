"""genlab.demo.page: index.html drawn from a fake demo folder (every figure referenced by a
relative path, text escaped, a missing figure said to be missing) and, where chromium is
installed, rendered in a real headless browser and screenshotted."""
import shutil
import subprocess

import pytest

from genlab.demo import grade, page, summary

HOSTILE = '<script>alert("x")</script>'


def _png(path, color):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    ax = fig.add_subplot()
    ax.imshow([[0, 1], [1, 0]], cmap=color)
    ax.set_title(path.stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=60)


def fake_run(out):
    """A demo folder as genlab demo leaves it: two models' figures, a text figure, feedback."""
    _png(out / "vae/version_0/figures/latent_grid.png", "viridis")
    _png(out / "gpt/version_0/figures/attention.png", "magma")
    (out / "gpt/version_0/figures/samples.txt").write_text(f"T=0.8: def f(x): {HOSTILE}\n", encoding="utf-8")
    feedback = out / "grades/03_transformer/example/feedback.md"
    feedback.parent.mkdir(parents=True)
    feedback.write_text(f"# Feedback\n- ✗ masks: {HOSTILE} & <b>tril(-1)</b>\n", encoding="utf-8")
    row = dict(steps_planned=10, steps_done=10, wall_s=1.0, cpu_s=1.5, parameters=1000, stopped_by_time=False)
    grades = [grade.GradeResult("03_transformer", "solution", 100, 100, None, "full"),
              grade.GradeResult("03_transformer", "release", 3, 100, None, "zero"),
              grade.GradeResult("03_transformer", "example", 72, 100, "grades/03_transformer/example/feedback.md",
                                None)]
    data = {"command": "genlab demo", "total_seconds": 12.0, "grading_seconds": {"03_transformer": 14.0},
            "training": [
                {**row, "model": "vae", "metrics": {"val_nelbo": 21.5}, "run_dir": "vae/version_0",
                 "figures": ["vae/version_0/figures/latent_grid.png", "vae/version_0/figures/gone.png"]},
                {**row, "model": "gpt", "metrics": {"val_loss": 2.1}, "run_dir": "gpt/version_0",
                 "figures": ["gpt/version_0/figures/attention.png", "gpt/version_0/figures/samples.txt"]}],
            "grading": [g.as_dict() for g in grades]}
    summary.write_summary(out, data)
    return data


def test_page_shows_every_figure_by_relative_path_and_escapes_text(tmp_path):
    fake_run(tmp_path)
    html = page.write_page(tmp_path).read_text(encoding="utf-8")
    assert '<img src="vae/version_0/figures/latent_grid.png"' in html
    assert '<img src="gpt/version_0/figures/attention.png"' in html
    assert str(tmp_path) not in html  # relative paths only: the folder can be moved
    assert "<script>" not in html and "<b>tril" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html  # from samples.txt and the feedback
    assert "&amp; &lt;b&gt;tril(-1)&lt;/b&gt;" in html
    assert 'class="missing">missing: vae/version_0/figures/gone.png' in html
    assert '<img src="vae/version_0/figures/gone.png"' not in html
    assert "val_nelbo 21.5" in html and "1,000" in html
    assert 'class="good"><a href="grades/03_transformer/example/feedback.md">72/100' not in html  # no verdict
    assert "3/100 ✗ unexpected" in html and "100/100 ✓" in html


def test_hostile_model_and_lab_names_are_escaped(tmp_path):
    data = fake_run(tmp_path)
    data["training"][0]["model"] = HOSTILE
    data["grading"][0]["lab"] = HOSTILE
    html = page.render_page(tmp_path, data)
    assert "<script>" not in html


def test_a_missing_feedback_file_is_said_not_crashed(tmp_path):
    data = fake_run(tmp_path)
    (tmp_path / "grades/03_transformer/example/feedback.md").unlink()
    assert "no feedback file" in page.render_page(tmp_path, data)


def test_an_empty_summary_gives_a_page_that_says_so(tmp_path):
    assert "Nothing trained or graded yet" in page.render_page(tmp_path, {})


def test_long_text_figures_are_cut(tmp_path, monkeypatch):
    data = fake_run(tmp_path)
    monkeypatch.setattr(page, "MAX_TEXT_CHARS", 10)
    assert "… (cut; the whole file: samples.txt)" in page.render_page(tmp_path, data)


def _chromium():
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def _screenshot(index, shot):
    run = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          f"--screenshot={shot}", "--window-size=1200,1400", index.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert shot.is_file(), f"chromium wrote no screenshot (exit {run.returncode}): {run.stderr[-2000:]}"
    from PIL import Image

    return Image.open(shot).convert("RGB")


def _viridis_yellow(image) -> int:
    """Pixels of the yellow end of viridis: only the fake latent grid figure has them."""
    return sum(n for n, (r, g, b) in image.getcolors(maxcolors=1 << 22) if r > 200 and g > 180 and b < 90)


@pytest.mark.skipif(_chromium() is None, reason="needs chromium (apt-get install chromium); CI has none")
def test_page_renders_with_its_figures_in_a_headless_browser(tmp_path):
    fake_run(tmp_path / "demo")
    image = _screenshot(page.write_page(tmp_path / "demo"), tmp_path / "shot.png")
    assert image.size == (1200, 1400)
    colors = image.getcolors(maxcolors=1 << 22)
    assert colors is not None and len(colors) > 50, "the screenshot is (nearly) uniform: nothing rendered"
    assert _viridis_yellow(image) > 1000, "the latent grid figure did not load (no viridis yellow on the page)"
    # the same page, its <img> links now broken (the files gone): the check above sees it
    for png in (tmp_path / "demo").rglob("*.png"):
        png.unlink()
    broken = _screenshot(tmp_path / "demo/index.html", tmp_path / "broken.png")
    assert _viridis_yellow(broken) == 0
