"""ParallelTextDataModule: a user-supplied translation corpus in TSV form.

File format: one pair per line, ``source<TAB>target``, UTF-8. This is the shape of the
Tatoeba-derived files from manythings.org/anki (e.g. ``fra.txt``), whose third column is an
attribution: every column after the two used ones is ignored. Tatoeba's own
"sentence pairs" export has four columns ``id<TAB>text<TAB>id<TAB>text``; read it with
``columns=(1, 3)``. Blank lines are skipped. A non-blank line with too few columns, or with
an empty source or target, raises ``DataFormatError`` naming the file and line number.

Tokens are words (``tokens="word"``: runs of letters/digits, keeping inner apostrophes as in
"don't", and each punctuation mark on its own, so "Hi, Tom." -> ["Hi", ",", "Tom", "."]) or
characters (``tokens="char"``). Vocabularies are built from the training split only; tokens
seen only in val/test, or cut by ``max_vocab``, become <unk>.

Splits: pairs are grouped by their (tokenized) source, and whole groups are assigned to
train/val/test with a seeded shuffle, so a source sentence with several translations never
appears in two splits.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from genlab.data import _checks
from genlab.data.errors import DataFormatError
from genlab.data.pairs import PairDataModule
from genlab.data.vocab import BOS, EOS, PAD, UNK, Vocab, word_tokenize

__all__ = ["ParallelTextDataModule", "read_tsv_pairs"]


def read_tsv_pairs(path: str | Path, columns: tuple[int, int] = (0, 1)) -> list[tuple[str, str]]:
    """(source, target) pairs from a TSV file, stripped of surrounding whitespace.

    Raises DataUnavailableError for a missing file and DataFormatError (with file and line
    number) for a line that lacks a column or has an empty source/target.
    """
    text = _checks.read_utf8(path, "parallel corpus (TSV)")
    si, ti = columns
    need = max(si, ti) + 1
    pairs = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < need:
            what = "has no tab" if len(cols) == 1 else f"has only {len(cols)} tab-separated columns"
            raise DataFormatError(
                f"{path}:{lineno}: line {what}, but each line must be source<TAB>target"
                f"{'' if need == 2 else f' with at least {need} columns (columns={columns})'}: "
                f"{line[:60]!r}. Separate the two sides with a tab character or remove the line."
            )
        src, tgt = cols[si].strip(), cols[ti].strip()
        for side, value in (("source", src), ("target", tgt)):
            if not value:
                raise DataFormatError(
                    f"{path}:{lineno}: the {side} side is empty: {line[:60]!r}. "
                    "Every line needs text on both sides of the tab; fix or remove the line."
                )
        pairs.append((src, tgt))
    if not pairs:
        raise DataFormatError(f"{path} contains no source<TAB>target lines; is it the right file?")
    return pairs


class ParallelTextDataModule(PairDataModule):
    """Translation pairs from a TSV file, batched as ``PairBatch``.

    Args:
        path: UTF-8 TSV file, ``source<TAB>target`` per line (see the module docstring).
        tokens: "word" or "char".
        max_vocab: cap on each vocabulary's size, specials included (None: no cap). The most
            frequent training tokens are kept (ties broken alphabetically); the rest -> <unk>.
        lowercase: lowercase both sides before tokenizing.
        batch_size: pairs per batch.
        val_fraction, test_fraction: shares of the distinct source sentences, in (0, 1).
        seed: seeds the split and the training shuffle.
        num_workers: DataLoader workers.
        columns: which two TSV columns are (source, target); default the first two.

    Attributes (ready after ``__init__``): ``src_vocab``, ``tgt_vocab`` (specials <pad>=0,
    <bos>=1, <eos>=2, <unk>=3), ``src_vocab_size``, ``tgt_vocab_size``, ``pad_id``,
    ``bos_id``, ``eos_id``, ``unk_id``, ``max_src_len`` (longest source in tokens + <eos>),
    ``max_tgt_len`` (longest target + <bos> + <eos>), over all splits.
    Batches: ``PairBatch(src (B,S), src_lengths (B,), tgt (B,T), tgt_lengths (B,))``, LongTensor.
    ``decode_target`` joins words with single spaces.
    """

    def __init__(
        self,
        path: str | Path,
        tokens: str = "word",
        max_vocab: int | None = None,
        lowercase: bool = False,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        num_workers: int = 0,
        columns: tuple[int, int] = (0, 1),
    ) -> None:
        super().__init__()
        if tokens not in ("word", "char"):
            raise ValueError(f'tokens must be "word" or "char", got {tokens!r}.')
        specials = (PAD, BOS, EOS, UNK)
        if max_vocab is not None:
            _checks.positive_int("max_vocab", max_vocab, minimum=len(specials) + 1)
        _checks.fractions(val_fraction=val_fraction, test_fraction=test_fraction)
        if len(columns) != 2 or columns[0] == columns[1]:
            raise ValueError(f"columns must be two different column indices, got {columns!r}.")
        for c in columns:
            _checks.positive_int("columns[i]", c, minimum=0)
        self.batch_size = _checks.positive_int("batch_size", batch_size)
        self.seed = _checks.seed_int(seed)
        self.num_workers = _checks.positive_int("num_workers", num_workers, minimum=0)
        self.save_hyperparameters()
        self.path, self.tokens, self.lowercase = Path(path), tokens, bool(lowercase)

        raw = read_tsv_pairs(path, tuple(columns))
        if self.lowercase:
            raw = [(s.lower(), t.lower()) for s, t in raw]
        self._splits = self._split(raw, val_fraction, test_fraction)

        sep = " " if tokens == "word" else ""
        src_counts = Counter(tok for s, _ in self._splits["train"] for tok in self.src_tokens(s))
        tgt_counts = Counter(tok for _, t in self._splits["train"] for tok in self.tgt_tokens(t))
        self.src_vocab = Vocab.from_counts(src_counts, specials, max_vocab, sep=sep)
        self.tgt_vocab = Vocab.from_counts(tgt_counts, specials, max_vocab, sep=sep)
        self.unk_id = self.tgt_vocab.unk_id
        self._init_sizes(
            max_src_tokens=max(len(self.src_tokens(s)) for s, _ in raw),
            max_tgt_tokens=max(len(self.tgt_tokens(t)) for _, t in raw),
        )

    def src_tokens(self, text: str) -> list[str]:
        """Source tokens (words and punctuation, or characters)."""
        return word_tokenize(text) if self.tokens == "word" else list(text)

    tgt_tokens = src_tokens

    def _split(self, raw: list[tuple[str, str]], val_fraction: float, test_fraction: float
               ) -> dict[str, list[tuple[str, str]]]:
        """Assign groups of pairs sharing a tokenized source to splits (seeded, deterministic)."""
        groups: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for s, t in raw:
            groups.setdefault(tuple(self.src_tokens(s)), []).append((s, t))
        keys = list(groups)  # file order of first occurrence
        order = np.random.default_rng(self.seed).permutation(len(keys))
        n_val = round(len(keys) * val_fraction)
        n_test = round(len(keys) * test_fraction)
        if n_val < 1 or n_test < 1 or len(keys) - n_val - n_test < 1:
            raise DataFormatError(
                f"{self.path} has {len(keys)} distinct source sentences: too few to give train, val "
                f"and test at least one each with val_fraction={val_fraction}, "
                f"test_fraction={test_fraction}. Add more lines or raise the fractions."
            )
        cut = {"val": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}
        return {split: [p for i in sorted(idx.tolist()) for p in groups[keys[i]]] for split, idx in cut.items()}

    def pairs(self, split: str) -> list[tuple[str, str]]:
        """(source, target) strings of ``split`` (lowercased if ``lowercase``), in file order."""
        return self._splits[_checks.split_name(split)]
