"""Run-size switches shared by the lab notebooks.

CI executes every solution notebook top to bottom; it sets ``GENLAB_SMALL=1`` so that the
training cells take seconds instead of minutes. A notebook asks once::

    from genlab.settings import small_settings, pick
    SMALL = small_settings()
    max_steps = pick(full=1500, small=20)
"""
from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

ENV_VAR = "GENLAB_SMALL"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def small_settings() -> bool:
    """True when ``GENLAB_SMALL`` asks for tiny runs (``1``, ``true``, ``yes``, ``on``).

    An unrecognised value is an error rather than a silent guess.
    """
    raw = os.environ.get(ENV_VAR, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"{ENV_VAR}={raw!r} is not understood; set it to 1 (small runs) or 0 (full runs).")


def pick(full: T, small: T) -> T:
    """``small`` under ``GENLAB_SMALL=1``, otherwise ``full``."""
    return small if small_settings() else full
