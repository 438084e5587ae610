"""Student-derived text, made safe for every output: cleaned, capped, then escaped per format.

Everything a submission can influence (exception names and messages, cell labels, object
reprs, printed output, file names, nbgrader metadata) passes through here before it
reaches ``results.json``, ``feedback.md``, ``grades.csv``, the instructor's terminal or
the gradebook.

* ``clean(text, limit)``: any value to ``str``; terminal escape sequences (CSI, OSC, ...),
  other control characters (tab and newline kept), bidirectional overrides and lone
  surrogates removed; newlines normalised; at most ``limit`` characters, with a marker
  saying how much was cut.
* ``one_line(text, limit)``: ``clean`` with newlines and tabs shown as ``⏎`` and spaces,
  for places where a line break would start a new row or a fake line.
* ``md_inline(text)``: inline Markdown that renders as the literal text (no headings,
  emphasis, links, HTML).
* ``md_block(text)``: a fenced block that no backtick run inside can close.
* ``csv_cell(text)``: one line, with a leading ``= + - @`` neutralised (spreadsheet formulas).
"""
from __future__ import annotations

import re

# ESC-introduced sequences: CSI (ESC [ ... final), OSC/DCS/SOS/PM/APC (ESC ] ... BEL or ST),
# and two-character escapes; plus the 8-bit CSI (U+009B).
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_].*?(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]",
    re.DOTALL,
)
# C0 and C1 controls except \t and \n; DEL; bidi embeddings, overrides and isolates; BOM.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\ufeff]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]#|~>])")
_MD_LEADING = re.compile(r"^(\s*)([-+=]|\d+[.)])")

MESSAGE = 2000      # one test's message
ISSUE = 400         # one notebook issue
NAME = 200          # a name: exception type, cell label, object type


def clean(text, limit: int = MESSAGE) -> str:
    """``text`` as safe plain text of at most ``limit`` characters (see the module doc)."""
    if not isinstance(text, str):
        try:
            text = str(text)
        except Exception:
            text = f"<{type(text).__name__}>"
    if len(text) > 4 * limit + 4096:   # do not clean megabytes only to cut them
        text = text[: 4 * limit + 4096]
    text = _SURROGATES.sub("\ufffd", text)
    text = _ESCAPES.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROLS.sub("", text)
    return cap(text, limit)


def cap(text: str, limit: int) -> str:
    """At most ``limit`` characters; a longer text ends with a marker naming what was cut."""
    if len(text) <= limit:
        return text
    marker = f" …[{len(text) - limit} more characters cut]"
    keep = max(0, limit - len(marker))
    return text[:keep] + marker[: limit - keep]


def one_line(text, limit: int = ISSUE) -> str:
    """``clean`` text on a single line: line breaks shown as ``⏎``, tabs as spaces."""
    text = clean(text, 4 * limit)
    text = re.sub(r"\s*\n\s*", " ⏎ ", text.strip()).replace("\t", " ")
    return cap(text, limit)


def md_inline(text) -> str:
    """Text that renders literally inside a Markdown paragraph or list item: no emphasis,
    code, links, headings, tables, HTML or autolinked URLs."""
    text = one_line(text, 10**6)
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = text.replace("://", ":\\/\\/").replace("www.", "www\\.")
    return _MD_LEADING.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


def md_block(text) -> str:
    """A fenced code block (``text`` kept verbatim, rendered as code) that nothing inside closes."""
    text = clean(text, 10**7).rstrip()
    longest = max((len(m) for m in re.findall(r"`{3,}|~{3,}", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def csv_cell(text, limit: int = 4000) -> str:
    """One line for a CSV cell; a leading ``= + - @`` gets a ``'`` so no spreadsheet runs it."""
    text = one_line(text, limit)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def terminal(text, limit: int = 200) -> str:
    """One line for the instructor's terminal (no escape sequences, no line breaks)."""
    return one_line(text, limit)
