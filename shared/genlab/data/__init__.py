"""genlab.data: LightningDataModules for the labs, offline by default, seeded, deterministic.

- ``CharTextDataModule``: character-level text (CPython's pydoc topics by default).
- ``DatesDataModule``: synthetic human date -> ISO date translation.
- ``ParallelTextDataModule``: a user's TSV translation corpus.
- ``DigitsDataModule``: sklearn's 8x8 digits, or MNIST on request.
- ``RingDataModule``: a ring of 2-D Gaussians (GAN toy data).
- ``RecallTask``: a synthetic recall-at-distance task (how far back an RNN remembers).
- ``Vocab``, ``PairBatch``, ``collate_pairs`` and the errors ``DataError``,
  ``DataUnavailableError``, ``DataFormatError``.
"""

from genlab.data.batches import PairBatch, collate_pairs
from genlab.data.dates import DATE_FORMATS, DatesDataModule, format_date
from genlab.data.digits import DigitsDataModule
from genlab.data.errors import DataError, DataFormatError, DataUnavailableError
from genlab.data.pairs import PairDataModule
from genlab.data.parallel import ParallelTextDataModule
from genlab.data.recall import RecallTask, recall_accuracy, train_recall
from genlab.data.ring import RingDataModule
from genlab.data.text import CharTextDataModule
from genlab.data.vocab import Vocab, word_tokenize

__all__ = [
    "CharTextDataModule",
    "DATE_FORMATS",
    "DataError",
    "DataFormatError",
    "DataUnavailableError",
    "DatesDataModule",
    "DigitsDataModule",
    "PairBatch",
    "PairDataModule",
    "ParallelTextDataModule",
    "RecallTask",
    "RingDataModule",
    "Vocab",
    "collate_pairs",
    "format_date",
    "recall_accuracy",
    "train_recall",
    "word_tokenize",
]
