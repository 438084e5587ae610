"""Argument checks shared by the data modules (clear ValueError/TypeError messages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genlab.data.errors import DataFormatError, DataUnavailableError

SPLITS = ("train", "val", "test")


def positive_int(name: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum``; raise a clear error otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r}).")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def positive_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a real number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r}).")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number > 0, got {value}.")
    return float(value)


def fractions(**named: float) -> None:
    """Check that each fraction lies in (0, 1) and that together they leave room for training."""
    for name, value in named.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r}).")
        if not 0.0 < value < 1.0:
            raise ValueError(
                f"{name} must lie strictly between 0 and 1 (a fraction of the data), got {value}."
            )
    total = sum(named.values())
    if total >= 1.0:
        names = " + ".join(named)
        raise ValueError(
            f"{names} = {total:g} leaves nothing for training; keep the sum below 1 "
            "(for example 0.05 each)."
        )


def split_name(split: str) -> str:
    """Return ``split`` if it is one of 'train', 'val', 'test'."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    return split


def seed_int(value: object) -> int:
    """Check a seed: any non-negative int."""
    return positive_int("seed", value, minimum=0)


def generator(*seeds: int) -> torch.Generator:
    """A torch.Generator seeded from a tuple of ints (e.g. ``(seed, epoch)``), collision-free."""
    state = np.random.SeedSequence(list(seeds)).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def read_utf8(path: str | Path, what: str, hint: str = "") -> str:
    """Read a UTF-8 text file, turning the usual failures into DataError messages.

    ``what`` names the expected content in messages (e.g. "text corpus"); ``hint`` is appended
    to the file-not-found message (e.g. how to fall back to built-in data).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DataUnavailableError(
            f"{what} file not found: {str(p)!r} (resolved to {str(p.resolve())!r}). "
            f"Check the path{hint}."
        )
    if not p.is_file():
        raise DataUnavailableError(f"{what} path {str(p)!r} is not a regular file; pass a file path.")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataFormatError(
            f"{what} file {str(p)!r} is not valid UTF-8 (bad byte 0x{raw[err.start]:02x} at "
            f"byte {err.start}, line {line}). Convert it first, e.g. "
            f"`iconv -f latin1 -t utf-8 {p.name} > {p.stem}.utf8{p.suffix}`."
        ) from None
    return text.removeprefix("\ufeff")  # a UTF-8 byte-order mark is not part of the text
