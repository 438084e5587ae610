"""Start-up work a grading process can skip, shared by ``grade_one``, the fork server and ``genlab grade``.

* ``skip_unused_imports``: jsonschema (pulled in by nbformat) compiles a grammar for IRI string
  formats when it is imported (1.5 s here, 3.7 s under load); notebooks never use that format,
  and jsonschema checks it only if the module imports, so it is kept out.
* ``freeze_heap``: after a server has imported torch and the runner, its objects go to the
  permanent generation (``gc.freeze``). Every child it forks then collects only its own objects:
  pytest's two ``gc.collect()`` calls at the end of a session cost 0.28 s per submission before.
"""
from __future__ import annotations

import gc
import sys

__all__ = ["skip_unused_imports", "freeze_heap"]


def skip_unused_imports() -> None:
    """Make ``import rfc3987_syntax`` fail fast (jsonschema then skips the IRI format checker)."""
    sys.modules.setdefault("rfc3987_syntax", None)


def freeze_heap() -> None:
    """Move every object alive now out of the collector's reach; call it just before serving forks."""
    gc.collect()
    gc.freeze()
