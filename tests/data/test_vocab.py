"""Vocab: ids of specials, exact round trips, unknown tokens, frequency caps."""

import pytest
import torch

from genlab.data import Vocab, word_tokenize
from genlab.data.text import default_corpus

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


def test_specials_come_first_with_fixed_ids():
    v = Vocab("hello", specials=SPECIALS)
    assert (v.pad_id, v.bos_id, v.eos_id, v.unk_id) == (0, 1, 2, 3)
    assert v.itos[:4] == list(SPECIALS)
    assert v.itos[4:] == ["h", "e", "l", "o"]  # order kept, duplicate "l" dropped
    assert len(v) == 8
    assert all(v.stoi[t] == i for i, t in enumerate(v.itos))


def test_missing_special_property_says_so():
    v = Vocab("ab", specials=("<pad>",))
    assert v.pad_id == 0
    with pytest.raises(AttributeError, match="<eos>"):
        _ = v.eos_id


def test_char_round_trip_on_every_symbol_of_the_default_corpus():
    corpus = default_corpus()
    v = Vocab(sorted(set(corpus)))
    sample = corpus[:20000] + "".join(v.itos)  # includes every symbol at least once
    ids = v.encode(sample)
    assert ids.dtype == torch.long and ids.shape == (len(sample),)
    assert v.decode(ids) == sample


def test_word_round_trip_joins_with_spaces():
    v = Vocab(["the", "cat", "sat", "."], specials=SPECIALS, sep=" ")
    ids = v.encode("the cat sat .")
    assert ids.tolist() == [4, 5, 6, 7]
    assert v.decode(ids) == "the cat sat ."
    assert v.encode(["cat", "the"]).tolist() == [5, 4]
    assert v.encode("the cat sat.").tolist() == [4, 5, 6, 7]  # punctuation is its own token


def test_word_tokenize_splits_punctuation_keeps_apostrophes():
    assert word_tokenize("Don't go, Tom!") == ["Don't", "go", ",", "Tom", "!"]
    assert word_tokenize("  Va  !  ") == ["Va", "!"]
    assert word_tokenize("오늘 날씨가 어때?") == ["오늘", "날씨가", "어때", "?"]


def test_bos_eos_flags_and_skip_specials():
    v = Vocab("ab", specials=SPECIALS)
    ids = v.encode("ab", bos=True, eos=True)
    assert ids.tolist() == [1, 4, 5, 2]
    assert v.decode(ids) == "<bos>ab<eos>"
    assert v.decode([1, 4, 3, 5, 2, 0, 0], skip_specials=True) == "a<unk>b"


def test_unknown_tokens_map_to_unk_or_raise():
    with_unk = Vocab("ab", specials=SPECIALS)
    assert with_unk.encode("azb").tolist() == [4, 3, 5]
    without = Vocab("ab")
    with pytest.raises(ValueError, match="'z'.*not in the vocabulary"):
        without.encode("azb")


@pytest.mark.parametrize(
    ("ids", "error"),
    [([0, 7], ValueError), (torch.zeros(2, 2, dtype=torch.long), ValueError), (torch.tensor([0.5]), TypeError)],
)
def test_decode_rejects_bad_ids(ids, error):
    with pytest.raises(error):
        Vocab("abc").decode(ids)


def test_from_counts_keeps_most_frequent_with_deterministic_ties():
    counts = {"b": 3, "a": 3, "c": 5, "d": 1, "e": 1}
    v = Vocab.from_counts(counts, specials=SPECIALS, max_size=7)
    assert len(v) == 7
    assert v.itos[4:] == ["c", "a", "b"]  # by count, then alphabetically
    assert v.encode(["d"]).tolist() == [v.unk_id]
    # same result whatever the dict order
    assert Vocab.from_counts(dict(reversed(list(counts.items()))), SPECIALS, 7) == v
    assert len(Vocab.from_counts(counts, SPECIALS)) == 4 + 5
    with pytest.raises(ValueError, match="max_size"):
        Vocab.from_counts(counts, SPECIALS, max_size=4)


def test_bad_construction_is_reported():
    with pytest.raises(TypeError, match="tuple"):
        Vocab("ab", specials="<pad>")
    with pytest.raises(ValueError, match="duplicate"):
        Vocab("ab", specials=("<pad>", "<pad>"))
    with pytest.raises(ValueError, match="separator"):
        Vocab(["a b"], sep=" ")
