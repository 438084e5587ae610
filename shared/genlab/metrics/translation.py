"""Scores for translation outputs: exact sequence match, token (character) accuracy, BLEU.

Predictions are the generated tokens ``(B, L)`` (no <bos>; first <eos>, then padding);
references are target rows ``(B, T)``, with or without a leading <bos>. Everything after
the first <eos> of a row is ignored.

BLEU (BiLingual Evaluation Understudy) is computed by sacrebleu on the decoded strings,
never on token ids. ``tokenize`` picks how sacrebleu splits those strings into the tokens
whose n-grams it counts: ``"char"`` (every character, spaces dropped) suits short outputs
such as ISO dates, ``"13a"`` (words and punctuation, sacrebleu's default) suits sentences,
``"ko-mecab"`` needs MeCab and is the standard for Korean.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "truncate_after_eos",
    "strip_specials",
    "ids_to_text",
    "exact_match",
    "exact_match_accuracy",
    "token_accuracy",
    "corpus_bleu",
    "sentence_bleu",
]


def truncate_after_eos(seq: Tensor, eos_id: int, pad_id: int) -> Tensor:
    """Replace every token after the first <eos> of each row by <pad>: ``(B, L) -> (B, L)``."""
    is_eos = seq == eos_id
    after = (is_eos.long().cumsum(dim=1) - is_eos.long()) > 0  # strictly after the first eos
    return seq.masked_fill(after, pad_id)


def _rows(ids) -> list[list[int]]:
    t = torch.as_tensor(ids)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise TypeError(f"token ids must be integers, got {t.dtype}.")
    if t.dim() != 2:
        raise ValueError(f"token ids must have shape (B, L), got {tuple(t.shape)}.")
    return t.tolist()


def strip_specials(ids, eos_id: int, pad_id: int, bos_id: int | None = None) -> list[list[int]]:
    """Each row of ``ids (B, L)`` up to (not including) its first <eos>, without <pad>/<bos>."""
    out = []
    for row in _rows(ids):
        kept = []
        for i in row:
            if i == eos_id:
                break
            if i != pad_id and i != bos_id:
                kept.append(i)
        out.append(kept)
    return out


def ids_to_text(ids, itos: Sequence[str], eos_id: int, pad_id: int, bos_id: int | None = None,
                sep: str = "") -> list[str]:
    """Decode ``ids (B, L)`` to strings: tokens before the first <eos>, specials dropped,
    joined with ``sep`` ("" for characters, " " for words)."""
    return [sep.join(itos[i] for i in row) for row in strip_specials(ids, eos_id, pad_id, bos_id)]


def _aligned(pred: Tensor, target: Tensor, eos_id: int, pad_id: int, bos_id: int | None) -> tuple[Tensor, Tensor]:
    if bos_id is not None and target.shape[1] and bool((target[:, 0] == bos_id).all()):
        target = target[:, 1:]
    L = max(pred.shape[1], target.shape[1])
    pred = F.pad(truncate_after_eos(pred, eos_id, pad_id), (0, L - pred.shape[1]), value=pad_id)
    target = F.pad(truncate_after_eos(target, eos_id, pad_id), (0, L - target.shape[1]), value=pad_id)
    return pred, target


def exact_match(pred: Tensor, target: Tensor, eos_id: int, pad_id: int, bos_id: int | None = None) -> Tensor:
    """Per row: the whole sequence up to and including the first <eos> is right. Bool ``(B,)``.

    pred ``(B, L1)``; target ``(B, L2)``, its leading <bos> skipped when ``bos_id`` is given.
    """
    pred, target = _aligned(pred, target, eos_id, pad_id, bos_id)
    return (pred == target).all(dim=1)


def exact_match_accuracy(pred: Tensor, target: Tensor, eos_id: int, pad_id: int, bos_id: int | None = None) -> float:
    """The share of rows that are exactly right."""
    return float(exact_match(pred, target, eos_id, pad_id, bos_id).float().mean())


def token_accuracy(pred: Tensor, target: Tensor, eos_id: int, pad_id: int, bos_id: int | None = None
                   ) -> tuple[int, int]:
    """``(correct, total)`` over the reference tokens (specials excluded), position by position.

    A reference token counts as correct when the prediction has the same token at the same
    position; a prediction that stopped early gets the missing positions wrong. For dates
    this is the character accuracy.
    """
    pred, target = _aligned(pred, target, eos_id, pad_id, bos_id)
    real = (target != pad_id) & (target != eos_id)
    if bos_id is not None:
        real &= target != bos_id
    return int(((pred == target) & real).sum()), int(real.sum())


def _check_strings(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    for name, items in (("hypotheses", hypotheses), ("references", references)):
        if isinstance(items, str) or not all(isinstance(s, str) for s in items):
            raise TypeError(f"{name} must be a list of strings (one per sentence); decode token ids first.")
    if len(hypotheses) != len(references):
        raise ValueError(f"got {len(hypotheses)} hypotheses but {len(references)} references; one each per sentence.")


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str], tokenize: str = "13a") -> float:
    """Corpus BLEU (0-100) of one hypothesis per sentence against one reference each, by sacrebleu.

    n-gram matches and lengths are summed over the whole corpus before the geometric mean and
    the brevity penalty, so one short sentence does not zero the score.
    """
    import sacrebleu

    _check_strings(hypotheses, references)
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], tokenize=tokenize).score)


def sentence_bleu(hypothesis: str, reference: str, tokenize: str = "13a") -> float:
    """BLEU (0-100) of one sentence, by sacrebleu (with its default exponential smoothing).

    Averaging this over sentences is not corpus BLEU: the smoothing and the per-sentence
    brevity penalty give a different number.
    """
    import sacrebleu

    _check_strings([hypothesis], [reference])
    return float(sacrebleu.sentence_bleu(hypothesis, [reference], tokenize=tokenize).score)
