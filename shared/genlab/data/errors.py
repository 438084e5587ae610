"""Errors raised by genlab.data.

Every message says what went wrong and how to fix it, so a student never has to read a
traceback from deep inside torch or the standard library.

- ``DataError``: base class; catch it to handle any data problem.
- ``DataUnavailableError``: the data is not where it should be (a missing file, MNIST not
  downloaded). Also a ``FileNotFoundError``, so generic ``except FileNotFoundError``
  handlers still work.
- ``DataFormatError``: the data exists but cannot be read as the expected format (a TSV line
  without a tab, a file that is not UTF-8). Also a ``ValueError``.
"""

from __future__ import annotations

__all__ = ["DataError", "DataUnavailableError", "DataFormatError"]


class DataError(Exception):
    """Base class of every error genlab.data raises about the data itself."""


class DataUnavailableError(DataError, FileNotFoundError):
    """The data could not be found locally (and was not allowed to, or could not, be fetched)."""


class DataFormatError(DataError, ValueError):
    """The data was found but is not in the expected format."""
