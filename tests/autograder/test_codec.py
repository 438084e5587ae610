"""The grader decodes what the worker sends under its own limits, and never unpickles it."""
import base64
import io
import json
import struct
import time

import pytest
import torch

from autograder.runner import codec, wire

codec.bind(torch)


def forged(value, tensors=(), body=b""):
    """A payload written by hand, as a submission could write it into the pipe."""
    header = json.dumps({"v": value, "t": list(tensors)}).encode()
    return b"V" + struct.pack(">Q", len(header)) + header + body


def test_every_plain_type_round_trips():
    value = {"t": torch.arange(6, dtype=torch.int16).reshape(2, 3), "b": torch.tensor([True, False]),
             "h": torch.ones(2, dtype=torch.bfloat16), "z": torch.zeros(0, 4), "s": torch.tensor(3.5),
             "c": torch.tensor([1 + 2j]), (1, "k"): [None, True, 2, 2.5, float("inf"), "x", b"\x00\xff", 1 - 1j],
             "set": {1, 2}, "dtype": torch.float16, "dev": torch.device("cpu"), "size": torch.Size([2, 3]),
             "nested": ([[]], ())}
    out = wire.load(codec.dumps(value))
    for key in ("t", "b", "h", "z", "s", "c"):
        assert out[key].dtype == value[key].dtype and torch.equal(out[key], value[key])
    assert out[(1, "k")] == value[(1, "k")] and out["set"] == {1, 2} and out["nested"] == ([[]], ())
    assert out["dtype"] is torch.float16 and out["dev"] == torch.device("cpu") and out["size"] == torch.Size([2, 3])
    assert type(out["size"]) is torch.Size and type(out["nested"]) is tuple


def test_a_pickle_from_the_worker_is_never_loaded():
    """The old protocol loaded torch.save archives: a list that holds the same list twice,
    30 levels deep, is a few hundred bytes and 2**30 objects once walked."""
    dag = []
    for _ in range(30):
        dag = [dag, dag]
    buf = io.BytesIO()
    buf.write(b"T")
    torch.save({"kind": "reply", "seq": 1, "ok": True, "value": dag}, buf)
    start = time.monotonic()
    with pytest.raises(codec.CodecError, match="unknown payload kind"):
        wire.load(buf.getvalue())
    assert time.monotonic() - start < 1


@pytest.mark.parametrize(("payload", "match"), [
    (forged(["L"] + [0] * 250_000), "more than 200000 values"),
    (forged(json.loads('["L", ' * 150 + "0" + "]" * 150)), "nested more than 100 levels"),
    (forged(json.loads("[" * 150 + '"L"' + "]" * 150)), "unknown form"),
    (forged(["L", "x" * 1_000_001]), "string of 1000001 characters"),
    (b"V" + struct.pack(">Q", 1 << 40) + b"{}", "announces a header"),
    (forged(["X", 0], [["float32", [10**6, 10**6], 4, "cpu"]], b"\0\0\0\0"), "shape does not match"),
    (forged(["X", 0], [["float32", [2], 8, "cpu"]], b"\0" * 4), "shape does not match"),
    (forged(["X", 0], [["object", [1], 8, "cpu"]], b"\0" * 8), "describes a tensor badly"),
    (forged(["X", 3], [["float32", [1], 4, "cpu"]], b"\0" * 4), "malformed 'X'"),
    (forged(["L"], [], b"extra"), "belong to no tensor"),
    (forged(["S", ["L"]]), "unhashable"),
    (forged(["D", ["L"], 1]), "unhashable key"),
    (forged(["D", "k"]), "key but no value"),
    (forged(["Q", 1]), "unknown tag"),
    (forged(["B", "!!notbase64"]), "malformed 'B'"),
    (forged(["d", "GradScaler"]), "malformed 'd'"),
    (forged(1) .replace(b'"v": 1', b'"v": 1' + b"0" * 5000), "unreadable header"),
])
def test_forged_payloads_are_refused_cheaply(payload, match):
    start = time.monotonic()
    with pytest.raises(codec.CodecError, match=match):
        wire.load(payload)
    assert time.monotonic() - start < 2


def test_the_tensor_limit_is_the_labs():
    payload = codec.dumps({"x": torch.zeros(1024)})
    with pytest.raises(codec.CodecError, match="shape does not match"):
        wire.load(payload, codec.Limits(tensor_bytes=1000))
    assert wire.load(payload, codec.Limits(tensor_bytes=4096))["x"].shape == (1024,)


def test_the_worker_refuses_honest_values_that_are_too_large_with_a_sentence():
    with pytest.raises(codec.CodecError, match="more than 200000 values; return a tensor"):
        codec.dumps(list(range(250_000)))
    with pytest.raises(codec.CodecError, match="outside tensors"):
        codec.dumps(["y" * 900_000] * 10)
    with pytest.raises(codec.CodecError, match="dtype"):
        codec.dumps(torch.zeros(2).to(torch.float8_e4m3fn))


def test_bytes_and_bool_tensors_are_sanitised():
    raw = base64.b64encode(b"\x01\x02").decode()
    assert wire.load(forged(["B", raw])) == b"\x01\x02"
    out = wire.load(forged(["X", 0], [["bool", [3], 3, "cpu"]], b"\x00\x02\x01"))
    assert out.tolist() == [False, True, True]
