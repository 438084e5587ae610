"""CharTextDataModule: default corpus, split hygiene, windows, streams, errors."""

import string

import lightning as L
import pytest
import torch

from genlab.data import CharTextDataModule, DataFormatError, DataUnavailableError
from genlab.data.text import default_corpus


def batches(loader, n=None):
    out = []
    for i, b in enumerate(loader):
        if n is not None and i == n:
            break
        out.append(b)
    return out


def test_default_corpus_is_pydoc_topics_and_vocab_exists_before_setup():
    dm = CharTextDataModule()  # no setup(): LightningCLI reads vocab_size right away
    text = default_corpus()
    assert 440_000 < len(text) < 490_000
    assert dm.vocab_size == len(dm.vocab) == len(set(text)) == 103
    assert dm.block_size == 64
    assert dm.text("train") + dm.text("val") + dm.text("test") == text
    assert abs(len(dm.text("val")) / len(text) - 0.05) < 1e-3


def test_splits_are_disjoint_positions(three_alphabet_corpus):
    path, text = three_alphabet_corpus
    dm = CharTextDataModule(path, block_size=8, batch_size=4, val_fraction=0.1, test_fraction=0.1)
    assert dm.bounds("train") == (0, 2000) and dm.bounds("val") == (2000, 2250)
    assert dm.bounds("test") == (2250, 2500)
    assert set(dm.text("val")) <= set(string.digits)
    with pytest.raises(ValueError, match="split"):
        dm.text("validation")


@pytest.mark.parametrize("mode", ["windows", "streams"])
def test_batches_never_cross_a_split_boundary(three_alphabet_corpus, mode):
    path, _ = three_alphabet_corpus
    dm = CharTextDataModule(path, block_size=8, batch_size=4, mode=mode, val_fraction=0.1, test_fraction=0.1)
    dm.setup("fit")
    allowed = {
        "train": set(string.ascii_lowercase + " "),
        "val": set(string.digits),
        "test": set(string.ascii_uppercase),
    }
    loaders = {"train": dm.train_dataloader(), "val": dm.val_dataloader(), "test": dm.test_dataloader()}
    for split, loader in loaders.items():
        seen = set()
        for x, y in loader:
            for row in torch.cat([x, y[:, -1:]], dim=1):
                seen |= set(dm.vocab.decode(row))
        assert seen and seen <= allowed[split], split


def test_windows_shapes_shift_and_positions(three_alphabet_corpus):
    path, _ = three_alphabet_corpus
    dm = CharTextDataModule(path, block_size=8, batch_size=4, windows_per_epoch=20,
                            val_fraction=0.1, test_fraction=0.1)
    dm.setup("fit")
    loader = dm.train_dataloader()
    got = batches(loader)
    assert sum(len(x) for x, _ in got) == 20  # exactly windows_per_epoch windows
    x, y = got[0]
    assert x.shape == y.shape == (4, 8) and x.dtype == y.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])
    train = dm.text("train")
    for xr, yr in zip(x, y, strict=True):
        assert dm.vocab.decode(xr) + dm.vocab.decode(yr[-1:]) in train  # y is the true next char


def test_val_windows_tile_the_split_in_order(three_alphabet_corpus):
    path, _ = three_alphabet_corpus
    dm = CharTextDataModule(path, block_size=8, batch_size=4, val_fraction=0.1, test_fraction=0.1)
    rows = torch.cat([x for x, _ in dm.val_dataloader()])
    joined = "".join(dm.vocab.decode(r) for r in rows)
    val = dm.text("val")
    assert len(joined) > len(val) - 16 and val.startswith(joined)


def test_windows_are_seeded_per_epoch(three_alphabet_corpus):
    path, _ = three_alphabet_corpus
    kw = dict(block_size=8, batch_size=4, windows_per_epoch=16, val_fraction=0.1, test_fraction=0.1)

    def epochs(seed, n=2):
        loader = CharTextDataModule(path, seed=seed, **kw).train_dataloader()
        return [torch.cat([x for x, _ in loader]) for _ in range(n)]

    a, b, c = epochs(0), epochs(0), epochs(1)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))  # same seed -> same batches
    assert not torch.equal(a[0], c[0])  # another seed -> other windows
    assert not torch.equal(a[0], a[1])  # the next epoch draws new windows
    loader = CharTextDataModule(path, seed=0, **kw).train_dataloader()
    loader.sampler.set_epoch(1)  # what Lightning calls before epoch 1
    assert torch.equal(torch.cat([x for x, _ in loader]), a[1])


def test_streams_are_contiguous_across_batches(three_alphabet_corpus):
    path, _ = three_alphabet_corpus
    B, T = 4, 8
    dm = CharTextDataModule(path, block_size=T, batch_size=B, mode="streams", val_fraction=0.1, test_fraction=0.1)
    loader = dm.train_dataloader()
    assert not isinstance(loader.sampler, torch.utils.data.RandomSampler)
    got = batches(loader)
    train = dm.text("train")
    L_ = (len(train) - 1) // B
    assert len(got) == L_ // T
    for k, (x, y) in enumerate(got):
        assert x.shape == y.shape == (B, T) and x.dtype == torch.long
        assert torch.equal(x[:, 1:], y[:, :-1])
        if k > 0:
            assert torch.equal(x[:, 0], got[k - 1][1][:, -1])  # continues where k-1 stopped
    # row i of the batches, read in order, is stream i: a contiguous stretch starting at i*L
    for i in range(B):
        stream = "".join(dm.vocab.decode(x[i]) for x, _ in got)
        assert stream == train[i * L_ : i * L_ + len(got) * T]
    # and a second pass gives the same order (never shuffled)
    again = batches(loader)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(got, again, strict=True))


def test_streams_on_the_default_corpus_val_split():
    dm = CharTextDataModule(block_size=32, batch_size=8, mode="streams")
    x0, y0 = next(iter(dm.val_dataloader()))
    assert x0.shape == (8, 32)
    assert dm.vocab.decode(x0[0]) == dm.text("val")[:32]


def test_missing_file_is_reported_with_the_path(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(DataUnavailableError, match="nope.txt") as info:
        CharTextDataModule(missing)
    assert isinstance(info.value, FileNotFoundError)
    assert "path=None" in str(info.value)  # says how to fall back
    with pytest.raises(DataUnavailableError, match="not a regular file"):
        CharTextDataModule(tmp_path)


def test_non_utf8_file_is_a_format_error(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(("caf\u00e9 au lait\n" * 50).encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"not valid UTF-8.*line 1.*iconv"):
        CharTextDataModule(path)


def test_too_short_text_is_reported(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("x" * 200, encoding="utf-8")
    with pytest.raises(DataFormatError, match="val split.*characters"):
        CharTextDataModule(path, block_size=64)
    CharTextDataModule(path, block_size=4, batch_size=2)  # small enough: fine
    with pytest.raises(DataFormatError, match="streams"):
        CharTextDataModule(path, block_size=4, batch_size=8, mode="streams")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"block_size": 0}, "block_size"),
        ({"batch_size": -1}, "batch_size"),
        ({"block_size": 2.5}, "block_size must be an int"),
        ({"mode": "stream"}, "mode"),
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "nothing for training"),
        ({"windows_per_epoch": 0}, "windows_per_epoch"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        CharTextDataModule(**kwargs)


class _Recorder(L.LightningModule):
    """Records the first batch of every training epoch."""

    def __init__(self, vocab_size):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab_size, 4)
        self.first = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        if batch_idx == 0:
            self.first.append(x.clone())
        return self.emb(x).sum() * 0.0 + self.emb.weight.sum() * 0.0

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


@pytest.mark.filterwarnings("ignore:.*val_dataloader.*no .validation_step.")
@pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated")
def test_lightning_redraws_windows_each_epoch_reproducibly(three_alphabet_corpus):
    path, _ = three_alphabet_corpus

    def fit():
        dm = CharTextDataModule(path, block_size=8, batch_size=4, windows_per_epoch=8,
                                val_fraction=0.1, test_fraction=0.1)
        model = _Recorder(dm.vocab_size)
        trainer = L.Trainer(max_epochs=2, limit_val_batches=0, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
        trainer.fit(model, datamodule=dm)
        return model.first

    a, b = fit(), fit()
    assert len(a) == 2 and not torch.equal(a[0], a[1])
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
