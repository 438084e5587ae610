"""ParallelTextDataModule: TSV parsing, malformed lines, grouped splits, capped vocabularies."""

from collections import Counter

import pytest
import torch

from genlab.data import (
    DataFormatError,
    DataUnavailableError,
    PairBatch,
    ParallelTextDataModule,
    word_tokenize,
)

ATTRIBUTION = "CC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #1158250 (Wittydev)"


def write_tsv(tmp_path, lines, name="pairs.tsv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path):
    """60 sources (ten of them with three translations each), with an attribution column."""
    lines = []
    for i in range(60):
        src = f"I see {i} cats ."
        for j in range(3 if i < 10 else 1):
            lines.append(f"{src}\tJe vois {i} chats{' !' * j} .\t{ATTRIBUTION}")
    lines.insert(5, "")  # blank lines are skipped
    return write_tsv(tmp_path, lines), lines


def make(path, **kw):
    kw = {"batch_size": 8, "val_fraction": 0.2, "test_fraction": 0.2, **kw}
    return ParallelTextDataModule(path, **kw)


def test_attributes_before_setup_and_specials(corpus):
    path, _ = corpus
    dm = make(path)
    for v in (dm.src_vocab, dm.tgt_vocab):
        assert v.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert (dm.pad_id, dm.bos_id, dm.eos_id, dm.unk_id) == (0, 1, 2, 3)
    assert dm.src_vocab_size == len(dm.src_vocab)
    assert dm.max_src_len == 5 + 1  # "I see 12 cats ." + <eos>
    assert dm.max_tgt_len == 7 + 2  # "Je vois 1 chats ! ! ." + <bos> <eos>


def test_every_pair_lands_in_exactly_one_split_and_sources_never_leak(corpus):
    path, lines = corpus
    dm = make(path)
    expected = Counter(tuple(line.split("\t")[:2]) for line in lines if line)
    got = Counter(p for s in ("train", "val", "test") for p in dm.pairs(s))
    assert got == expected  # extra columns ignored, nothing lost or duplicated
    sources = {s: {src for src, _ in dm.pairs(s)} for s in ("train", "val", "test")}
    assert not (sources["train"] & sources["val"] or sources["train"] & sources["test"]
                or sources["val"] & sources["test"])
    assert len(sources["val"]) == len(sources["test"]) == 12  # 20 % of 60 distinct sources


def test_same_seed_same_split_other_seed_other_split(corpus):
    path, _ = corpus
    a, b, c = make(path, seed=0), make(path, seed=0), make(path, seed=1)
    assert a.pairs("val") == b.pairs("val") and a.src_vocab == b.src_vocab
    assert a.pairs("val") != c.pairs("val")
    ba, bb = next(iter(a.train_dataloader())), next(iter(b.train_dataloader()))
    assert all(torch.equal(x, y) for x, y in zip(ba, bb, strict=True))


def test_batches_decode_back_to_the_tokenized_pairs(corpus):
    path, _ = corpus
    dm = make(path)
    b = next(iter(dm.test_dataloader()))
    assert isinstance(b, PairBatch) and b.src.dtype == torch.long
    assert b.src.shape == (8, int(b.src_lengths.max())) and b.tgt.shape == (8, int(b.tgt_lengths.max()))
    pairs = dm.pairs("test")[:8]
    # test tokens may be <unk> (vocab is built from train), so compare through the vocab
    expected = [dm.tgt_vocab.decode(dm.tgt_vocab.encode(word_tokenize(t))) for _, t in pairs]
    assert dm.decode_target(b.tgt) == expected
    assert (b.tgt[:, 0] == dm.bos_id).all()
    src = pairs[0][0]
    assert torch.equal(dm.src_vocab.encode(src, eos=True), dm.encode_source(src))  # same tokenizer
    assert b.tgt[torch.arange(8), b.tgt_lengths - 1].eq(dm.eos_id).all()


def test_vocab_comes_from_train_only(tmp_path):
    lines = [f"w{i} common\tm{i} commun" for i in range(30)]
    dm = make(write_tsv(tmp_path, lines))
    train_tokens = {t for s, _ in dm.pairs("train") for t in s.split()}
    val_only = {t for s, _ in dm.pairs("val") for t in s.split()} - train_tokens
    assert val_only and not (val_only & set(dm.src_vocab.itos))
    src, _ = dm.pairs("val")[0]
    assert dm.unk_id in dm.encode_source(src).tolist()


def test_max_vocab_keeps_the_most_frequent_tokens(tmp_path):
    lines = ["a a a b b c\tx"] + [f"a b d{i}\ty{i}" for i in range(20)]
    dm = make(write_tsv(tmp_path, lines), max_vocab=6, val_fraction=0.1, test_fraction=0.1)
    assert len(dm.src_vocab) == 6 and dm.src_vocab_size == 6
    assert dm.src_vocab.itos[4:6] == ["a", "b"]
    assert dm.encode_source("a zzz").tolist() == [4, dm.unk_id, dm.eos_id]
    with pytest.raises(ValueError, match="max_vocab"):
        make(write_tsv(tmp_path, lines), max_vocab=4)


def test_char_tokens_and_lowercase(tmp_path):
    lines = [f"AB{i}\tcd{i}" for i in range(20)]
    dm = make(write_tsv(tmp_path, lines), tokens="char", lowercase=True)
    assert "A" not in dm.src_vocab and "a" in dm.src_vocab
    assert all(s.islower() or s[2:].isdigit() for s, _ in dm.pairs("train"))
    src, tgt = dm.pairs("train")[0]
    assert dm.decode_source(dm.encode_source(src)) == src  # chars join without spaces
    assert dm.max_src_len == 4 + 1


def test_tatoeba_four_column_export_with_columns(tmp_path):
    lines = [f"{100 + i}\tHello {i}\t{900 + i}\tBonjour {i}" for i in range(20)]
    dm = make(write_tsv(tmp_path, lines), columns=(1, 3))
    assert ("Hello 0", "Bonjour 0") in [p for s in ("train", "val", "test") for p in dm.pairs(s)]


def test_line_without_tab_names_file_and_line(tmp_path):
    lines = ["Go.\tVa !", "", "Hi.\tSalut !", "Run! Cours !", "Who?\tQui ?"]
    path = write_tsv(tmp_path, lines, name="broken.tsv")
    with pytest.raises(DataFormatError, match=r"broken\.tsv:4: line has no tab") as info:
        make(path)
    assert isinstance(info.value, ValueError)


def test_empty_side_names_file_and_line(tmp_path):
    path = write_tsv(tmp_path, ["Go.\tVa !", "Hi.\t  \tattribution"], name="half.tsv")
    with pytest.raises(DataFormatError, match=r"half\.tsv:2: the target side is empty"):
        make(path)
    path = write_tsv(tmp_path, ["\tVa !"], name="nosrc.tsv")
    with pytest.raises(DataFormatError, match=r"nosrc\.tsv:1: the source side is empty"):
        make(path)


def test_missing_file_non_utf8_and_too_small(tmp_path):
    with pytest.raises(DataUnavailableError, match="missing.tsv"):
        make(tmp_path / "missing.tsv")
    bad = tmp_path / "latin.tsv"
    bad.write_bytes("caf\u00e9\tcoffee\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match="UTF-8"):
        make(bad)
    with pytest.raises(DataFormatError, match="too few"):
        make(write_tsv(tmp_path, ["a\tb", "c\td"]))
    with pytest.raises(DataFormatError, match="no source<TAB>target lines"):
        make(write_tsv(tmp_path, ["", "  "]))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [({"tokens": "bpe"}, "tokens"), ({"val_fraction": 1.0}, "val_fraction"),
     ({"batch_size": 0}, "batch_size"), ({"columns": (1, 1)}, "columns")],
)
def test_bad_arguments_are_rejected(corpus, kwargs, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        make(corpus[0], **kwargs)
