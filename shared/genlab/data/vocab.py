"""Vocab: a two-way map between tokens (characters or words) and integer ids.

Specials come first, in the order given, so with the usual
``specials=("<pad>", "<bos>", "<eos>", "<unk>")`` the ids are pad=0, bos=1, eos=2, unk=3.
Then the tokens, in the order given (duplicates dropped). Encoding and decoding are exact
inverses for any sequence made of known tokens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import torch

__all__ = ["Vocab", "PAD", "BOS", "EOS", "UNK", "word_tokenize"]

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"

_WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")


def word_tokenize(text: str) -> list[str]:
    """Words and punctuation marks: "Don't go, Tom!" -> ["Don't", "go", ",", "Tom", "!"].

    A word is a run of letters/digits (any script), keeping inner apostrophes; every other
    non-space character is a token of its own. Whitespace only separates.
    """
    return _WORD.findall(text)


class Vocab:
    """Token <-> id map.

    Args:
        tokens: the ordinary tokens, e.g. a string (its characters) or a list of words.
            Duplicates are dropped (first occurrence wins); a token equal to a special is
            dropped too, it already has the special's id.
        specials: special tokens placed first (ids 0, 1, ...). Recognised names get a property:
            ``pad_id`` ("<pad>"), ``bos_id`` ("<bos>"), ``eos_id`` ("<eos>"), ``unk_id`` ("<unk>").
        sep: how ``decode`` joins tokens and how ``encode`` splits a string: ``""`` for a
            character vocabulary (default); any other separator (``" "``) makes a word
            vocabulary, whose strings are split with ``word_tokenize`` (words and punctuation).

    Attributes:
        stoi: dict token -> id.  itos: list id -> token.
    """

    def __init__(self, tokens: Iterable[str], specials: Sequence[str] = (), sep: str = "") -> None:
        if isinstance(specials, str):
            raise TypeError(
                f"specials must be a sequence of strings such as ('<pad>', '<bos>'), got the string "
                f"{specials!r}; wrap it in a tuple."
            )
        if not isinstance(sep, str):
            raise TypeError(f"sep must be a string ('' for characters, ' ' for words), got {sep!r}.")
        self.sep = sep
        self.specials: tuple[str, ...] = tuple(specials)
        if len(set(self.specials)) != len(self.specials):
            raise ValueError(f"specials contain a duplicate: {self.specials}.")
        self.itos: list[str] = []
        self.stoi: dict[str, int] = {}
        for tok in (*self.specials, *tokens):
            if not isinstance(tok, str) or tok == "":
                raise TypeError(f"every token must be a non-empty str, got {tok!r}.")
            if sep and tok not in self.specials and sep in tok:
                raise ValueError(
                    f"token {tok!r} contains the separator {sep!r}, so decode() could not be undone."
                )
            if tok not in self.stoi:
                self.stoi[tok] = len(self.itos)
                self.itos.append(tok)

    @classmethod
    def from_counts(
        cls,
        counts: Mapping[str, int],
        specials: Sequence[str] = (),
        max_size: int | None = None,
        sep: str = "",
    ) -> Vocab:
        """Vocab of the most frequent tokens.

        Tokens are ordered by count (descending), ties broken by the token string, so the
        result does not depend on dict order. ``max_size`` caps ``len(vocab)`` including the
        specials; the tokens left out are what ``<unk>`` will stand for.
        """
        ordered = sorted((t for t in counts if t not in specials), key=lambda t: (-counts[t], t))
        if max_size is not None:
            if max_size <= len(specials):
                raise ValueError(
                    f"max_size={max_size} leaves no room for tokens after the {len(specials)} "
                    f"specials; use max_size > {len(specials)} or None for no cap."
                )
            ordered = ordered[: max_size - len(specials)]
        return cls(ordered, specials=specials, sep=sep)

    # -- sizes and specials -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return self.itos == other.itos and self.specials == other.specials and self.sep == other.sep

    __hash__ = None  # mutable-looking container; compare by value only

    def __repr__(self) -> str:
        kind = "char" if self.sep == "" else "word"
        return f"Vocab({len(self)} {kind} tokens, specials={self.specials})"

    def _special(self, name: str) -> int:
        if name not in self.specials:
            raise AttributeError(
                f"this vocabulary has no {name} token (specials={self.specials}); "
                f"build it with {name!r} in specials."
            )
        return self.stoi[name]

    @property
    def pad_id(self) -> int:
        """Id of "<pad>" (AttributeError if this vocabulary has none)."""
        return self._special(PAD)

    @property
    def bos_id(self) -> int:
        """Id of "<bos>" (AttributeError if this vocabulary has none)."""
        return self._special(BOS)

    @property
    def eos_id(self) -> int:
        """Id of "<eos>" (AttributeError if this vocabulary has none)."""
        return self._special(EOS)

    @property
    def unk_id(self) -> int:
        """Id of "<unk>" (AttributeError if this vocabulary has none)."""
        return self._special(UNK)

    # -- encode / decode ----------------------------------------------------------------
    def tokenize(self, text: str) -> list[str]:
        """Split a string into tokens: characters (sep="") or ``word_tokenize`` words."""
        return list(text) if self.sep == "" else word_tokenize(text)

    def encode(self, seq: str | Sequence[str], *, bos: bool = False, eos: bool = False) -> torch.Tensor:
        """Token ids of ``seq`` as a LongTensor of shape (T,).

        ``seq`` is a string (split with ``tokenize``) or a sequence of tokens. Unknown tokens
        map to ``<unk>`` when the vocabulary has one, and raise ValueError otherwise.
        ``bos``/``eos`` prepend/append those specials.
        """
        tokens = self.tokenize(seq) if isinstance(seq, str) else list(seq)
        unk = self.stoi.get(UNK)
        ids = []
        for tok in tokens:
            i = self.stoi.get(tok, unk)
            if i is None:
                raise ValueError(
                    f"token {tok!r} is not in the vocabulary ({len(self)} tokens) and there is no "
                    "<unk> to stand for it; build the Vocab from data that contains it or add '<unk>' "
                    "to specials."
                )
            ids.append(i)
        if bos:
            ids.insert(0, self.bos_id)
        if eos:
            ids.append(self.eos_id)
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids: torch.Tensor | Sequence[int], *, skip_specials: bool = False) -> str:
        """Join the tokens of 1-D ``ids`` (characters directly, words with ``sep``).

        ``skip_specials=True`` drops <pad>, <bos> and <eos> (an <unk> stays visible).
        """
        t = torch.as_tensor(ids)
        if t.dtype.is_floating_point or t.dtype == torch.bool or t.dtype.is_complex:
            raise TypeError(f"ids must be integers, got a tensor of dtype {t.dtype}.")
        if t.dim() != 1:
            raise ValueError(
                f"decode expects a 1-D sequence of ids, got shape {tuple(t.shape)}; "
                "decode one row at a time."
            )
        values = t.tolist()
        bad = [i for i in values if not 0 <= i < len(self)]
        if bad:
            raise ValueError(f"ids {bad[:5]} are out of range for a vocabulary of size {len(self)}.")
        skip = {self.stoi[s] for s in (PAD, BOS, EOS) if s in self.stoi} if skip_specials else set()
        return self.sep.join(self.itos[i] for i in values if i not in skip)
