"""DigitsDataModule: sklearn digits by default; MNIST only from local files or on request."""

import socket
import struct

import numpy as np
import pytest
import torch

from genlab.data import DataUnavailableError, DigitsDataModule


def all_images(dm):
    return {s: torch.cat([x for x, _ in dm._loader(s)]) for s in ("train", "val", "test")}


def test_digits_batches_shapes_dtypes_and_range():
    dm = DigitsDataModule(batch_size=16)
    assert dm.image_shape == (1, 8, 8) and dm.num_classes == 10  # before setup
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 1, 8, 8) and x.dtype == torch.float32
    assert y.shape == (16,) and y.dtype == torch.long
    xs = torch.cat([x for x, _ in dm.train_dataloader()])
    assert xs.min() == 0.0 and xs.max() == 1.0  # 0..16 scaled by 1/16, not 1/255
    assert torch.equal(xs * 16, (xs * 16).round())
    labels = torch.cat([y for _, y in dm.train_dataloader()])
    assert set(labels.tolist()) == set(range(10))


def test_digits_splits_partition_the_data():
    from sklearn.datasets import load_digits

    dm = DigitsDataModule(val_fraction=0.2, test_fraction=0.1)
    parts = all_images(dm)
    sizes = {s: len(v) for s, v in parts.items()}
    assert sizes == {"train": 1797 - 359 - 180, "val": 359, "test": 180}
    # the union of the splits is exactly the original data, as a multiset of images
    got = np.sort(torch.cat(list(parts.values())).reshape(-1, 64).numpy() * 16, axis=0)
    ref = np.sort(load_digits().images.reshape(-1, 64), axis=0)
    assert np.array_equal(got, ref)


def test_digits_seeded():
    a, b, c = DigitsDataModule(seed=5), DigitsDataModule(seed=5), DigitsDataModule(seed=6)
    xa, xb, xc = (next(iter(d.train_dataloader()))[0] for d in (a, b, c))
    assert torch.equal(xa, xb) and not torch.equal(xa, xc)
    assert torch.equal(all_images(a)["val"], all_images(b)["val"])
    assert not torch.equal(all_images(a)["val"], all_images(c)["val"])


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_missing_mnist_offline_says_how_to_get_it(tmp_path, no_network):
    dm = DigitsDataModule(source="mnist", root=tmp_path, download=False)
    assert dm.image_shape == (1, 28, 28)
    dm.prepare_data()  # download=False: does nothing, touches no network
    with pytest.raises(DataUnavailableError, match="download=True") as info:
        dm.setup("fit")
    assert str(tmp_path) in str(info.value) and "MNIST" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing was fetched or created


def _write_idx(path, array, magic):
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape))
        f.write(array.astype(np.uint8).tobytes())


def test_mnist_from_local_files(tmp_path, no_network):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 10)):
        images = rng.integers(0, 256, size=(n, 28, 28))
        images[0, 0, 0] = 255
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images, 0x803)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, 0x801)
    dm = DigitsDataModule(source="mnist", root=tmp_path, batch_size=8, val_fraction=0.25)
    dm.setup("fit")
    assert [len(dm.dataset(s)) for s in ("train", "val", "test")] == [30, 10, 10]
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.long
    assert 0.0 <= x.min() and x.max() <= 1.0 and x[0, 0, 0, 0] == 1.0
    assert y.tolist() == list(range(8))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [({"source": "cifar"}, "source"), ({"val_fraction": 0.0}, "val_fraction"),
     ({"val_fraction": 0.5, "test_fraction": 0.5}, "nothing for training"), ({"batch_size": 0}, "batch_size")],
)
def test_bad_arguments_are_rejected(kwargs, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        DigitsDataModule(**kwargs)
