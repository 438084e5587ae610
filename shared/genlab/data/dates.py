"""DatesDataModule: synthetic date translation, human-written date -> ISO ``YYYY-MM-DD``.

A small, fully offline seq2seq task (about the size of a toy translation corpus) that an
attention model learns in minutes on a CPU. Sources come in ten formats, e.g. for
2021-03-03 (a Wednesday):

    3 March 2021                 D MMMM YYYY
    Mar 3, 2021                  MMM D, YYYY
    03/03/21                     MM/DD/YY  (US order, two-digit year)
    Wednesday, March 3rd 2021    dddd, MMMM Do YYYY
    2021년 3월 3일                YYYY년 M월 D일  (Korean)
    3.3.2021                     D.M.YYYY  (European order)
    March 3 2021                 MMMM D YYYY
    03 Mar 2021                  DD MMM YYYY
    the 3rd of March, 2021       the Do of MMMM, YYYY
    Wed, 3 Mar 2021              ddd, D MMM YYYY

Dates lie in 1950-01-01 .. 2049-12-31, so a two-digit year is unambiguous (50-99 -> 19xx,
00-49 -> 20xx) and every source string has exactly one correct target.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cache

import numpy as np

from genlab.data import _checks
from genlab.data.pairs import PairDataModule
from genlab.data.vocab import BOS, EOS, PAD, Vocab

__all__ = ["DatesDataModule", "DATE_FORMATS", "FIRST_DATE", "LAST_DATE", "format_date", "ordinal"]

FIRST_DATE = dt.date(1950, 1, 1)
LAST_DATE = dt.date(2049, 12, 31)

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def ordinal(day: int) -> str:
    """1 -> '1st', 2 -> '2nd', 3 -> '3rd', 11 -> '11th', 22 -> '22nd', ..."""
    if 10 <= day % 100 <= 20:
        return f"{day}th"
    return f"{day}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"


def _month(d: dt.date) -> str:
    return MONTHS[d.month - 1]


def _mon(d: dt.date) -> str:
    return MONTHS[d.month - 1][:3]


DATE_FORMATS: dict[str, Callable[[dt.date], str]] = {
    "D MMMM YYYY": lambda d: f"{d.day} {_month(d)} {d.year}",
    "MMM D, YYYY": lambda d: f"{_mon(d)} {d.day}, {d.year}",
    "MM/DD/YY": lambda d: f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}",
    "dddd, MMMM Do YYYY": lambda d: f"{WEEKDAYS[d.weekday()]}, {_month(d)} {ordinal(d.day)} {d.year}",
    "YYYY년 M월 D일": lambda d: f"{d.year}년 {d.month}월 {d.day}일",
    "D.M.YYYY": lambda d: f"{d.day}.{d.month}.{d.year}",
    "MMMM D YYYY": lambda d: f"{_month(d)} {d.day} {d.year}",
    "DD MMM YYYY": lambda d: f"{d.day:02d} {_mon(d)} {d.year}",
    "the Do of MMMM, YYYY": lambda d: f"the {ordinal(d.day)} of {_month(d)}, {d.year}",
    "ddd, D MMM YYYY": lambda d: f"{WEEKDAYS[d.weekday()][:3]}, {d.day} {_mon(d)} {d.year}",
}
"""Format name -> function turning a ``datetime.date`` into that human-written string."""

_FORMAT_NAMES = tuple(DATE_FORMATS)
_N_DAYS = (LAST_DATE - FIRST_DATE).days + 1


def format_date(date: dt.date, fmt: str) -> str:
    """``date`` written in the format named ``fmt`` (a key of ``DATE_FORMATS``)."""
    if fmt not in DATE_FORMATS:
        raise ValueError(f"unknown date format {fmt!r}; choose one of {list(DATE_FORMATS)}.")
    return DATE_FORMATS[fmt](date)


@cache
def _source_alphabet() -> tuple[tuple[str, ...], int]:
    """(every character any source can contain, the longest source length).

    One leap year suffices: it holds every month/day pair, every weekday in every month at a
    two-digit day, and so the longest name combinations; the only other characters that vary
    with the year are digits, added explicitly.
    """
    chars, longest = set("0123456789"), 0
    for offset in range(366):
        d = dt.date(2000, 1, 1) + dt.timedelta(days=offset)
        for fn in DATE_FORMATS.values():
            s = fn(d)
            chars.update(s)
            longest = max(longest, len(s))
    return tuple(sorted(chars)), longest


class DatesDataModule(PairDataModule):
    """Human date -> ISO date pairs, batched as ``PairBatch``.

    Args:
        n_train, n_val, n_test: number of pairs in each split (>= 1 each). Every source
            string is unique across all splits (the same *date* may occur in two splits
            written in different formats; the same *string* never does).
        batch_size: pairs per batch.
        seed: seeds the pool of pairs and the training shuffle.
        num_workers: DataLoader workers.

    Attributes (ready after ``__init__``):
        src_vocab, tgt_vocab: char Vocabs with <pad>=0, <bos>=1, <eos>=2. The source vocab
            holds every character any format can produce, so no source ever hits an unknown
            character; the target vocab is digits and '-'.
        src_vocab_size, tgt_vocab_size, pad_id, bos_id, eos_id.
        max_src_len: longest possible src row (source chars + <eos>) for any date/format.
        max_tgt_len: 12 = <bos> + 10 chars + <eos>.
    Batches: ``PairBatch(src (B,S), src_lengths (B,), tgt (B,T), tgt_lengths (B,))``, all
    LongTensor; ``pairs(split)`` gives the raw strings.
    """

    def __init__(
        self,
        n_train: int = 20000,
        n_val: int = 1000,
        n_test: int = 1000,
        batch_size: int = 64,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.n_train = _checks.positive_int("n_train", n_train)
        self.n_val = _checks.positive_int("n_val", n_val)
        self.n_test = _checks.positive_int("n_test", n_test)
        total = self.n_train + self.n_val + self.n_test
        limit = (_N_DAYS * len(DATE_FORMATS)) // 2
        if total > limit:
            raise ValueError(
                f"n_train + n_val + n_test = {total} is too many: there are only "
                f"{_N_DAYS * len(DATE_FORMATS)} distinct source strings and at most {limit} are "
                "drawn; lower the split sizes."
            )
        self.batch_size = _checks.positive_int("batch_size", batch_size)
        self.seed = _checks.seed_int(seed)
        self.num_workers = _checks.positive_int("num_workers", num_workers, minimum=0)
        self.save_hyperparameters()

        alphabet, longest = _source_alphabet()
        self.src_vocab = Vocab(alphabet, specials=(PAD, BOS, EOS))
        self.tgt_vocab = Vocab("0123456789-", specials=(PAD, BOS, EOS))
        self.formats = _FORMAT_NAMES
        self._init_sizes(max_src_tokens=longest, max_tgt_tokens=len("YYYY-MM-DD"))
        self._pool: list[tuple[str, str]] | None = None

    def _draw_pool(self) -> list[tuple[str, str]]:
        """``n_train + n_val + n_test`` pairs with distinct sources, in seeded random order."""
        total = self.n_train + self.n_val + self.n_test
        rng = np.random.default_rng(self.seed)
        seen: set[str] = set()
        pool: list[tuple[str, str]] = []
        while len(pool) < total:
            days = rng.integers(0, _N_DAYS, size=total)
            fmts = rng.integers(0, len(_FORMAT_NAMES), size=total)
            for day, f in zip(days.tolist(), fmts.tolist(), strict=True):
                date = FIRST_DATE + dt.timedelta(days=day)
                src = DATE_FORMATS[_FORMAT_NAMES[f]](date)
                if src not in seen:
                    seen.add(src)
                    pool.append((src, date.isoformat()))
                    if len(pool) == total:
                        break
        return pool

    def pairs(self, split: str) -> list[tuple[str, str]]:
        """(source, ISO target) strings of ``split``: e.g. ("Mar 3, 2021", "2021-03-03")."""
        _checks.split_name(split)
        if self._pool is None:
            self._pool = self._draw_pool()
        a, b = self.n_train, self.n_train + self.n_val
        sl = {"train": slice(0, a), "val": slice(a, b), "test": slice(b, None)}[split]
        return self._pool[sl]
