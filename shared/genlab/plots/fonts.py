"""Real Hangul in every figure, on any machine.

Matplotlib's default font (DejaVu Sans) has no Hangul, so Korean labels render as empty
boxes. The NanumGothic files shipped by the ``koreanize-matplotlib`` package (a genlab
dependency, SIL Open Font License) are registered with matplotlib and added *after* DejaVu
Sans in the font family, so Latin text keeps its look and Hangul falls back to Nanum. The
package itself is not imported (it calls ``distutils``, gone in Python 3.12); only its font
files are used.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib
from matplotlib import font_manager

__all__ = ["HANGUL_FONT", "use_hangul_font"]

HANGUL_FONT = "NanumGothic"


def _font_dir() -> Path | None:
    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "fonts"
    return folder if folder.is_dir() else None


def use_hangul_font() -> bool:
    """Register NanumGothic and make it the Hangul fallback; False if the font is not installed."""
    known = {f.name for f in font_manager.fontManager.ttflist}
    if HANGUL_FONT not in known:
        folder = _font_dir()
        if folder is None:
            return False
        for path in sorted(folder.glob("*.ttf")):
            font_manager.fontManager.addfont(str(path))
    family = [f for f in matplotlib.rcParams["font.family"] if f != HANGUL_FONT]
    if family == ["sans-serif"]:
        family = ["DejaVu Sans"]
    matplotlib.rcParams["font.family"] = [*family, HANGUL_FONT]
    matplotlib.rcParams["axes.unicode_minus"] = False  # Nanum has no U+2212 minus sign
    return True
