"""No line of ``autograder/`` in a student-facing output, even when a student echoes one.

The grader's code that runs beside the submission (the probes, and the worker's own files,
``sandbox.WORKER_FILES``) is readable by the submission while it runs: a student function
can find a probe's source through ``linecache``, ``inspect`` or its frames, and raise it,
print it or return it. ``Redactor`` knows every line of that code (and of the lab's hidden
test files and probes) and replaces any line of a student-facing text that contains one,
compared with whitespace collapsed, by ``REMOVED``.

A source line counts when it has at least ``MIN_CHARS`` characters besides spaces; lines
shorter than ``MIN_CONTAINED`` must match a whole text line, longer ones are found anywhere
in it. Import statements are left out: they are not the grader's logic, and a student's
own ``import torch`` quoted in an error location must stay readable.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

REMOVED = "[a line was removed here: it quoted the grader's own code]"
MIN_CHARS = 8
MIN_CONTAINED = 24
_IMPORT = re.compile(r"^(from\s+[\w.]+\s+)?import\s+[\w., ()*]+(\s+as\s+\w+)?$")


def _norm(line: str) -> str:
    return " ".join(line.split())


class Redactor:
    """The lines of some source files, and ``redact(text)`` that removes them from a text."""

    def __init__(self, files: Iterable[Path]):
        self.whole: set[str] = set()
        self.by_prefix: dict[str, set[str]] = {}
        for path in files:
            try:
                source = Path(path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for line in source.splitlines():
                self._add(_norm(line))

    def _add(self, line: str) -> None:
        if len(line.replace(" ", "")) < MIN_CHARS or _IMPORT.match(line):
            return
        if len(line) < MIN_CONTAINED:
            self.whole.add(line)
        else:
            self.by_prefix.setdefault(line[:MIN_CONTAINED], set()).add(line)

    def quotes_source(self, line: str) -> bool:
        """Whether ``line`` is, or contains, one of the source lines."""
        line = _norm(line)
        if line in self.whole:
            return True
        index = self.by_prefix
        for pos in range(len(line) - MIN_CONTAINED + 1):
            found = index.get(line[pos:pos + MIN_CONTAINED])
            if found and any(line.startswith(candidate, pos) for candidate in found):
                return True
        return False

    def redact(self, text: str) -> str:
        """``text`` with every line that quotes a source line replaced by ``REMOVED``."""
        if not text:
            return text
        lines = text.split("\n")
        out = [REMOVED if self.quotes_source(line) else line for line in lines]
        return text if out == lines else "\n".join(out)


def grader_files(lab) -> list[Path]:
    """What the submission could quote: the probes (shared and the lab's), the worker's own
    files, and the lab's hidden tests and ``lab.toml``."""
    from .lab import SHARED_PROBES
    from .sandbox import HERE, WORKER_FILES

    files = [HERE / name for name in WORKER_FILES]
    files += sorted(SHARED_PROBES.glob("*.py"))
    files += sorted((lab.folder / "probes").glob("*.py")) + lab.test_files() + [lab.folder / "lab.toml"]
    return files
