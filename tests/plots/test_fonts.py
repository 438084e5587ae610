"""Korean labels render with a Hangul font on a fresh machine."""
import matplotlib
from matplotlib import font_manager
from matplotlib.figure import Figure

from genlab.plots.fonts import HANGUL_FONT, use_hangul_font


def test_hangul_font_is_registered_and_used_as_the_fallback():
    assert use_hangul_font()
    assert HANGUL_FONT in {f.name for f in font_manager.fontManager.ttflist}
    assert matplotlib.rcParams["font.family"][-1] == HANGUL_FONT


def test_hangul_glyphs_resolve_to_nanum_not_a_box(tmp_path):
    use_hangul_font()
    fig = Figure(figsize=(3, 1))
    text = fig.text(0.1, 0.5, "배 (pear, ship, belly)")
    fig.savefig(tmp_path / "hangul.png")  # renders without "Glyph missing" trouble
    path = font_manager.findfont(font_manager.FontProperties(family=[HANGUL_FONT]))
    assert "NanumGothic" in path, path
    assert text.get_fontfamily()[-1] == HANGUL_FONT
