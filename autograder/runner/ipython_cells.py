"""A code cell's source as the Python a Jupyter kernel would run: IPython's own transformer.

``to_python(source)`` returns ``source`` unchanged when it already is Python (most cells,
and then IPython is never imported); otherwise it applies
``IPython.core.inputtransformer2.TransformerManager().transform_cell``, the code Jupyter's
kernel uses, so ``name?``, ``x = !ls``, ``%matplotlib inline``, ``%%time``, ``%%capture``,
``%%writefile``, prompts pasted from a console (``>>>``, ``In [1]:``) and an indented
first line all mean what they mean in Jupyter. The magics become ``get_ipython()`` calls
that the worker answers (``worker_ipython.py``).

Line numbers are kept: IPython drops leading blank lines, which are put back, and every
line magic stays on its line; a cell magic's body is run by the worker from the cell's
second line on. A cell that is neither Python nor IPython is returned as it is, so the
worker reports its syntax error where the student wrote it.
"""
from __future__ import annotations

import ast
import functools

_FLAGS = ast.PyCF_ONLY_AST | getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)


def is_python(source: str) -> bool:
    """Whether ``source`` compiles as Python (top-level ``await`` allowed, as in Jupyter)."""
    try:
        compile(source, "<cell>", "exec", flags=_FLAGS, dont_inherit=True)
        return True
    except (SyntaxError, ValueError):
        return False


@functools.cache
def _manager():
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


def to_python(source: str) -> str:
    """The Python that IPython runs for the cell ``source`` (see the module doc)."""
    if is_python(source):
        return source
    lines = source.splitlines(True)
    blank = 0
    while blank < len(lines) and not lines[blank].strip():
        blank += 1
    try:
        python = _manager().transform_cell("".join(lines[blank:]))
    except Exception:   # IPython could not make sense of it either: the worker reports the error
        return source
    python = "\n" * blank + python
    return python if is_python(python) else source
