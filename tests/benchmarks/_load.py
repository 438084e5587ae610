"""Import a script from benchmarks/ (not a package) as a module, by file path."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str):
    """The module ``benchmarks/<name>.py``, freshly imported.

    ``benchmarks/`` goes on ``sys.path`` first, as ``python benchmarks/<name>.py`` puts it there,
    so that the scripts' ``import common`` (``benchmarks/common.py``) works here too.
    """
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
