"""Translation metrics: exact match, token accuracy, and BLEU against sacrebleu and by hand."""
import math

import pytest
import sacrebleu
import torch

from genlab.metrics.translation import (
    corpus_bleu,
    exact_match,
    exact_match_accuracy,
    ids_to_text,
    sentence_bleu,
    strip_specials,
    token_accuracy,
)

PAD, BOS, EOS = 0, 1, 2
ITOS = ["<pad>", "<bos>", "<eos>", *"0123456789-"]


def _ids(text: str) -> list[int]:
    return [ITOS.index(ch) for ch in text]


def _rows(*texts, bos=False, pad_to=14, after_eos=PAD):
    out = []
    for t in texts:
        row = ([BOS] if bos else []) + _ids(t) + [EOS]
        out.append(row + [after_eos] * (pad_to - len(row)))
    return torch.tensor(out)


def test_decoding_stops_at_the_first_eos_and_drops_specials():
    pred = _rows("2021-03-03", "1999", after_eos=7)  # garbage after <eos> is ignored
    assert strip_specials(pred, EOS, PAD, BOS)[1] == _ids("1999")
    assert ids_to_text(pred, ITOS, EOS, PAD, BOS) == ["2021-03-03", "1999"]
    assert ids_to_text(_rows("12", bos=True), ITOS, EOS, PAD, BOS) == ["12"]
    with pytest.raises(TypeError, match="integers"):
        ids_to_text(pred.float(), ITOS, EOS, PAD)


def test_exact_match_and_token_accuracy():
    target = _rows("2021-03-03", "1999-12-25", "2000-01-01", bos=True)
    pred = _rows("2021-03-03", "1999-12-24", "2000-01", after_eos=5)
    assert exact_match(pred, target, EOS, PAD, BOS).tolist() == [True, False, False]
    assert exact_match_accuracy(pred, target, EOS, PAD, BOS) == pytest.approx(1 / 3)
    correct, total = token_accuracy(pred, target, EOS, PAD, BOS)
    assert total == 30 and correct == 10 + 9 + 7  # the short one misses its last 3 characters
    too_long = _rows("2021-03-031")
    assert not bool(exact_match(too_long, target[:1], EOS, PAD, BOS)[0])


def test_corpus_bleu_is_sacrebleus_on_the_decoded_strings():
    hyps = ["2021-03-03", "1999-12-24", "2000-10-01"]
    refs = ["2021-03-03", "1999-12-25", "2000-01-01"]
    for tokenize in ("char", "13a"):
        want = sacrebleu.corpus_bleu(hyps, [refs], tokenize=tokenize).score
        assert math.isclose(corpus_bleu(hyps, refs, tokenize=tokenize), want)
    assert corpus_bleu(refs, refs, tokenize="char") == pytest.approx(100.0)


def test_char_bleu_by_hand():
    """One hypothesis, 10 characters with one wrong: the n-gram precisions are easy to count."""
    hyp, ref = "2021-03-04", "2021-03-03"
    # char tokens (10): 9 of 10 unigrams match, 8/9 bigrams, 7/8 trigrams, 6/7 4-grams; same length
    precisions = [9 / 10, 8 / 9, 7 / 8, 6 / 7]
    want = 100 * math.exp(sum(math.log(p) for p in precisions) / 4)
    assert corpus_bleu([hyp], [ref], tokenize="char") == pytest.approx(want, rel=1e-6)


def test_short_outputs_and_the_two_smoothings():
    """sacrebleu's known traps: fewer than four tokens give no 4-gram (sacrebleu #114), and
    sentence_bleu smooths while corpus_bleu does not (#64)."""
    assert corpus_bleu(["2021"], ["2021"], tokenize="13a") == 0.0  # a perfect 1-token output scores 0
    assert corpus_bleu(["2021"], ["2021"], tokenize="char") == pytest.approx(100.0)  # 4 characters: 4-grams exist
    assert sentence_bleu("March 3", "March 3rd") > 0.0  # smoothed
    hyps = ["오늘 날씨가 어때", "날씨가 오늘 어때"]
    refs = ["오늘 날씨가 어때", "오늘 날씨가 어때"]
    per_sentence = sum(sentence_bleu(h, r) for h, r in zip(hyps, refs, strict=True)) / 2
    assert corpus_bleu(hyps, refs) != pytest.approx(per_sentence)
    assert sentence_bleu(hyps[1], refs[1]) < 100.0  # the same meaning, reordered, is penalised


def test_bleu_refuses_token_ids_and_mismatched_lists():
    with pytest.raises(TypeError, match="decode token ids first"):
        corpus_bleu([[3, 4, 5]], ["2021"])
    with pytest.raises(ValueError, match="one each"):
        corpus_bleu(["a", "b"], ["a"])
