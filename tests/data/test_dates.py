"""DatesDataModule: every format parses back to its ISO target, no source leaks across splits."""

import datetime as dt
import re

import pytest
import torch

from genlab.data import DATE_FORMATS, DatesDataModule, PairBatch, format_date
from genlab.data.dates import FIRST_DATE, LAST_DATE, ordinal

# An independent oracle: English names written out here, regexes per format.
MONTHS = "January February March April May June July August September October November December".split()
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
M = "|".join(MONTHS)
MON = "|".join(m[:3] for m in MONTHS)
WD = "|".join(DAYS)
WDA = "|".join(d[:3] for d in DAYS)
SUFFIX = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}


def _year2(yy):
    return 1900 + yy if yy >= 50 else 2000 + yy


PARSERS = {
    "D MMMM YYYY": rf"(?P<d>[1-9]\d?) (?P<month>{M}) (?P<y>\d{{4}})",
    "MMM D, YYYY": rf"(?P<mon>{MON}) (?P<d>[1-9]\d?), (?P<y>\d{{4}})",
    "MM/DD/YY": r"(?P<m>\d\d)/(?P<d>\d\d)/(?P<yy>\d\d)",
    "dddd, MMMM Do YYYY": rf"(?P<wd>{WD}), (?P<month>{M}) (?P<d>[1-9]\d?)(?P<sfx>st|nd|rd|th) (?P<y>\d{{4}})",
    "YYYY년 M월 D일": r"(?P<y>\d{4})년 (?P<m>[1-9]\d?)월 (?P<d>[1-9]\d?)일",
    "D.M.YYYY": r"(?P<d>[1-9]\d?)\.(?P<m>[1-9]\d?)\.(?P<y>\d{4})",
    "MMMM D YYYY": rf"(?P<month>{M}) (?P<d>[1-9]\d?) (?P<y>\d{{4}})",
    "DD MMM YYYY": rf"(?P<d>\d\d) (?P<mon>{MON}) (?P<y>\d{{4}})",
    "the Do of MMMM, YYYY": rf"the (?P<d>[1-9]\d?)(?P<sfx>st|nd|rd|th) of (?P<month>{M}), (?P<y>\d{{4}})",
    "ddd, D MMM YYYY": rf"(?P<wda>{WDA}), (?P<d>[1-9]\d?) (?P<mon>{MON}) (?P<y>\d{{4}})",
}


def parse(src):
    """Every (format, date) reading of ``src`` that is internally consistent."""
    readings = []
    for name, pattern in PARSERS.items():
        m = re.fullmatch(pattern, src)
        if not m:
            continue
        g = m.groupdict()
        year = int(g["y"]) if g.get("y") else _year2(int(g["yy"]))
        if g.get("month"):
            month = MONTHS.index(g["month"]) + 1
        elif g.get("mon"):
            month = [x[:3] for x in MONTHS].index(g["mon"]) + 1
        else:
            month = int(g["m"])
        try:
            date = dt.date(year, month, int(g["d"]))
        except ValueError:
            continue
        if g.get("sfx") and g["sfx"] != SUFFIX.get(date.day, "th"):
            continue
        if g.get("wd") and g["wd"] != DAYS[date.weekday()]:
            continue
        if g.get("wda") and g["wda"] != DAYS[date.weekday()][:3]:
            continue
        readings.append((name, date))
    return readings


@pytest.fixture(scope="module")
def dm():
    return DatesDataModule(n_train=3000, n_val=300, n_test=300, batch_size=32, seed=0)


def test_the_spec_examples_are_produced():
    d = dt.date(2021, 3, 3)
    examples = {format_date(d, f) for f in DATE_FORMATS}
    assert len(DATE_FORMATS) >= 8 and len(examples) == len(DATE_FORMATS)
    for s in ["3 March 2021", "Mar 3, 2021", "03/03/21", "Wednesday, March 3rd 2021", "2021년 3월 3일"]:
        assert s in examples
    assert format_date(dt.date(1999, 12, 31), "ddd, D MMM YYYY") == "Fri, 31 Dec 1999"
    with pytest.raises(ValueError, match="unknown date format"):
        format_date(d, "YYYY")


@pytest.mark.parametrize(("day", "text"), [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"),
                                          (12, "12th"), (13, "13th"), (21, "21st"), (22, "22nd"),
                                          (23, "23rd"), (30, "30th"), (31, "31st")])
def test_ordinal_suffixes(day, text):
    assert ordinal(day) == text


def test_every_pair_parses_back_to_its_target_and_nothing_else(dm):
    used = set()
    for split in ("train", "val", "test"):
        for src, tgt in dm.pairs(split):
            readings = parse(src)
            assert readings, f"{src!r} matches no known format"
            assert {d for _, d in readings} == {dt.date.fromisoformat(tgt)}, (src, tgt, readings)
            assert re.fullmatch(r"\d{4}-\d\d-\d\d", tgt)
            assert FIRST_DATE <= dt.date.fromisoformat(tgt) <= LAST_DATE
            used |= {name for name, _ in readings}
    assert used == set(DATE_FORMATS)  # all formats occur, Korean included
    assert any("년" in s for s, _ in dm.pairs("train"))


def test_each_format_round_trips_on_edge_dates():
    for d in [FIRST_DATE, LAST_DATE, dt.date(2000, 2, 29), dt.date(1968, 7, 1), dt.date(2011, 11, 11)]:
        for name in DATE_FORMATS:
            assert (name, d) in parse(format_date(d, name)), (name, d)


def test_no_source_string_in_two_splits(dm):
    srcs = {s: [p[0] for p in dm.pairs(s)] for s in ("train", "val", "test")}
    assert [len(v) for v in srcs.values()] == [3000, 300, 300]
    all_srcs = sum(srcs.values(), [])
    assert len(set(all_srcs)) == len(all_srcs)


def test_vocab_and_max_lengths_cover_every_possible_source(dm):
    """Brute force over the whole date range: no unknown char, nothing longer than max_src_len."""
    chars, longest = set(), 0
    d = FIRST_DATE
    while d <= LAST_DATE:
        for fn in DATE_FORMATS.values():
            s = fn(d)
            chars.update(s)
            longest = max(longest, len(s))
        d += dt.timedelta(days=1)
    assert chars <= set(dm.src_vocab.itos)
    assert dm.max_src_len == longest + 1  # + <eos>
    assert dm.max_tgt_len == 12


def test_specials_are_shared_and_sizes_exist_before_setup():
    dm = DatesDataModule(n_train=10, n_val=5, n_test=5)
    for v in (dm.src_vocab, dm.tgt_vocab):
        assert (v.pad_id, v.bos_id, v.eos_id) == (0, 1, 2)
    assert (dm.pad_id, dm.bos_id, dm.eos_id) == (0, 1, 2)
    assert dm.src_vocab_size == len(dm.src_vocab) and dm.tgt_vocab_size == len(dm.tgt_vocab) == 3 + 11


def test_batches_have_the_documented_layout(dm):
    b = next(iter(dm.val_dataloader()))
    assert isinstance(b, PairBatch)
    B = 32
    assert b.src.shape[0] == b.tgt.shape[0] == B and all(t.dtype == torch.long for t in b)
    assert b.src.shape[1] == b.src_lengths.max() <= dm.max_src_len
    assert b.tgt.shape[1] == b.tgt_lengths.max() == dm.max_tgt_len
    pairs = dm.pairs("val")[:B]  # val is not shuffled
    for i, (src, tgt) in enumerate(pairs):
        n, m = int(b.src_lengths[i]), int(b.tgt_lengths[i])
        assert n == len(src) + 1 and m == len(tgt) + 2
        assert b.src[i, n - 1] == dm.eos_id and (b.src[i, n:] == dm.pad_id).all()
        assert b.tgt[i, 0] == dm.bos_id and b.tgt[i, m - 1] == dm.eos_id
        assert dm.src_vocab.decode(b.src[i, : n - 1]) == src
    assert dm.decode_target(b.tgt) == [t for _, t in pairs]
    assert dm.decode_source(b.src) == [s for s, _ in pairs]


def test_decode_target_stops_at_eos():
    dm = DatesDataModule(n_train=10, n_val=5, n_test=5)
    ids = [1] + dm.tgt_vocab.encode("2021").tolist() + [2] + dm.tgt_vocab.encode("99").tolist() + [0]
    assert dm.decode_target(ids) == "2021"
    assert dm.decode_target(torch.tensor(dm.tgt_vocab.encode("1-2").tolist())) == "1-2"  # no bos/eos


def test_seeded_and_deterministic():
    small = dict(n_train=200, n_val=20, n_test=20, batch_size=16)
    a, b, c = DatesDataModule(seed=3, **small), DatesDataModule(seed=3, **small), DatesDataModule(seed=4, **small)
    assert a.pairs("train") == b.pairs("train") and a.pairs("test") == b.pairs("test")
    assert a.pairs("train") != c.pairs("train")
    ba, bb = next(iter(a.train_dataloader())), next(iter(b.train_dataloader()))
    assert all(torch.equal(x, y) for x, y in zip(ba, bb, strict=True))
    assert len(a.dataset("train")) == 200  # dataset access works without an explicit setup()


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [({"n_train": 0}, "n_train"), ({"n_val": -3}, "n_val"), ({"n_train": 10**6}, "too many"),
     ({"batch_size": 0}, "batch_size"), ({"seed": -1}, "seed")],
)
def test_bad_arguments_are_rejected(kwargs, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        DatesDataModule(**kwargs)
