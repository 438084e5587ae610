"""Small corpora written to tmp_path, so the data tests stay fast and offline."""

import random
import string

import pytest


@pytest.fixture
def three_alphabet_corpus(tmp_path):
    """2500 chars: 2000 lowercase, then 250 digits, then 250 uppercase.

    With val_fraction = test_fraction = 0.1, each split has its own alphabet, so any window
    that leaks across a split boundary shows up as a foreign character.
    """
    rng = random.Random(0)
    text = (
        "".join(rng.choice(string.ascii_lowercase + " ") for _ in range(2000))
        + "".join(rng.choice(string.digits) for _ in range(250))
        + "".join(rng.choice(string.ascii_uppercase) for _ in range(250))
    )
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    return path, text
