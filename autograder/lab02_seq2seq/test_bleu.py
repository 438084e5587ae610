"""Part 5: corpus_bleu(pred_ids, ref_ids, itos, tokenize="char", sep="") -> float, by sacrebleu."""
import pytest
import torch

from autograder import kit
from genlab.checks import lab02_bugs as bugs

DATES = ["<pad>", "<bos>", "<eos>", *"0123456789-"]
WORDS = ["<pad>", "<bos>", "<eos>", "<unk>", "i", "like", "tea", "music", "tom", "is", "a", "student", ".", "?", "are",
         "you", "how"]


def _encode(texts, itos, bos=False, after_eos=0, width=None, sep=""):
    rows = []
    for t in texts:
        tokens = t.split(sep) if sep else list(t)
        rows.append(([1] if bos else []) + [itos.index(x) for x in tokens if x] + [2])
    width = width or max(len(r) for r in rows) + 2
    return torch.tensor([r + [after_eos] * (width - len(r)) for r in rows])


def _score(submission, pred, ref, itos, tokenize, sep):
    fn = submission.function("corpus_bleu")
    got = kit.call(fn, pred, ref, itos, tokenize, sep, context=f"corpus_bleu(..., tokenize={tokenize!r}, sep={sep!r})")
    kit.fail_if(bugs.name_bleu_bug(got, pred, ref, itos, tokenize, sep), f"corpus_bleu (tokenize={tokenize!r})")
    return got


@pytest.mark.points(3)
def test_dates_with_character_tokens(submission):
    """Equal to sacrebleu's corpus BLEU on the decoded dates (tokenize='char'); junk after <eos> ignored."""
    pred = _encode(["1975-06-07", "2008-08-18", "2002-03-5", "1970-05-03", "19-02-07"], DATES, after_eos=7)
    ref = _encode(["1975-06-07", "2008-08-18", "2002-03-05", "1970-03-05", "1967-02-07"], DATES, bos=True)
    _score(submission, pred, ref, DATES, "char", "")


@pytest.mark.points(3)
def test_words_with_the_13a_tokenizer(submission):
    """Word vocabularies joined with spaces, scored with sacrebleu's 13a."""
    pred = _encode(["i like tea .", "tom is a student", "how are you ?", "i like music ."], WORDS, after_eos=5,
                   sep=" ")
    ref = _encode(["i like tea .", "tom is a student .", "how are you ?", "i like tea ."], WORDS, bos=True, sep=" ")
    _score(submission, pred, ref, WORDS, "13a", " ")


@pytest.mark.points(2)
def test_returns_a_float_on_the_0_to_100_scale(submission):
    """A perfect corpus scores 100.0, as a Python float."""
    ref = _encode(["2021-03-03", "1999-12-25"], DATES, bos=True)
    pred = _encode(["2021-03-03", "1999-12-25"], DATES)
    got = _score(submission, pred, ref, DATES, "char", "")
    if not isinstance(got, float) or abs(got - 100.0) > 1e-6:
        raise AssertionError(f"a perfect corpus should score 100.0 (a float), got {kit.describe(got)}.")


@pytest.mark.points(3)
def test_short_and_empty_outputs(submission):
    """Outputs of a few characters, and one that is only <eos>, are scored like sacrebleu scores them."""
    pred = torch.tensor([[2, 0, 0, 0, 0], [5, 3, 2, 0, 0], [4, 12, 12, 12, 2]])
    ref = _encode(["2021-03-03", "20", "1999"], DATES, bos=True)
    _score(submission, pred, ref, DATES, "char", "")
    _score(submission, pred, ref, DATES, "13a", "")


@pytest.mark.points(1)
def test_ids_left_alone(submission):
    """pred_ids and ref_ids come back unchanged (in the worker, on the very tensors passed), and
    autograd is left on. (The score is a float: the state check compares tensors, so it sees nothing here.)"""
    pred = _encode(["1975-06-07", "2008-08-1"], DATES, after_eos=7)
    ref = _encode(["1975-06-07", "2008-08-18"], DATES, bos=True)
    kit.expect_contract(submission, "corpus_bleu", (pred, ref, DATES, "char", ""), "corpus_bleu",
                        names=("pred_ids", "ref_ids", "itos", "tokenize", "sep"), check_grads=False)
