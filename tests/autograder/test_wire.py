"""Framing and value encoding on both sides of the pipe (no worker process involved)."""
import collections
import os
import threading

import numpy as np
import pytest
import torch

from autograder.runner import codec, framing, wire
from autograder.runner import worker as W
from autograder.runner import worker_values as V

V.bind(torch, np)
codec.bind(torch)
W._torch, W._numpy = torch, np


def encode(value, strict=False):
    return V.Encoder(V.Handles(), strict)(value)


def roundtrip(value):
    """worker encodes -> codec payload -> the grader decodes it under its limits."""
    channel = W.Channel(-1, -1)
    return wire.load(channel.encode(encode(value)))


def test_frames_cross_a_pipe_both_ways():
    """The grader writes with wire/framing, the worker's Channel reads, and back."""
    r, w = os.pipe()
    payload = wire.dumps({"op": "call", "args": [torch.arange(5)], "kwargs": {"x": (1, "a")}})
    framing.write_frame(w, payload)
    msg = W.Channel(r, -1).read()
    assert msg["kwargs"] == {"x": (1, "a")} and torch.equal(msg["args"][0], torch.arange(5))
    framing.write_frame(w, wire.dumps({"kind": "ready"}))
    assert W.Channel(r, -1).read() == {"kind": "ready"}
    W.Channel(-1, w).send({"kind": "progress", "cell": 3})
    W.Channel(-1, w).send_payload(W.Channel(-1, -1).encode({"value": torch.ones(2)}))
    assert wire.load(framing.read_frame(r, None)) == {"kind": "progress", "cell": 3}
    assert torch.equal(wire.load(framing.read_frame(r, None))["value"], torch.ones(2))
    os.close(w)
    with pytest.raises(framing.FrameEOF):
        framing.read_frame(r, None)
    with pytest.raises(framing.FrameEOF):   # the worker's Channel sees the same end of the pipe
        W.Channel(r, -1).read()
    os.close(r)


def test_a_frame_larger_than_the_pipe_buffer_crosses_a_non_blocking_pipe():
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    big = os.urandom(3 << 20)   # a pipe holds 64 KiB: the writer must wait for the reader
    got = []
    reader = threading.Thread(target=lambda: got.append(framing.read_frame(r, None)))
    reader.start()
    framing.write_frame(w, big, deadline=None)
    reader.join(30)
    assert got == [big]
    os.close(r)
    os.close(w)


def test_frame_limit_and_timeout():
    r, w = os.pipe()
    os.set_blocking(r, False)
    with pytest.raises(framing.FrameTimeout):
        framing.read_frame(r, deadline=0)
    os.write(w, framing.HEADER.pack(1 << 40))
    with pytest.raises(framing.FrameTooLarge):
        framing.read_frame(r, None)
    os.close(r)
    os.close(w)


def test_unknown_payload_kind_is_refused():
    with pytest.raises(codec.CodecError, match="unknown payload kind"):
        wire.load(b"Pgarbage")


def test_writing_to_a_closed_reader_is_frame_eof():
    r, w = os.pipe()
    os.close(r)
    with pytest.raises(framing.FrameEOF):
        framing.write_frame(w, b"J{}")
    os.close(w)


def test_plain_values_cross_as_plain_types():
    Pair = collections.namedtuple("Pair", "a b")
    value = {"t": torch.nn.Parameter(torch.ones(2)), "od": collections.OrderedDict(k=1),
             "nt": Pair(1, 2.5), "np": np.arange(3), "scalar": np.float32(1.5), "size": torch.Size([2]),
             "dtype": torch.float16, "nested": [(None, True, "s", b"b", 1 + 2j)]}
    out = roundtrip(value)
    assert type(out["t"]) is torch.Tensor and not out["t"].requires_grad
    assert type(out["od"]) is dict and type(out["nt"]) is tuple and out["nt"] == (1, 2.5)
    assert torch.equal(out["np"], torch.arange(3)) and out["scalar"] == 1.5
    assert out["dtype"] is torch.float16 and out["nested"] == [(None, True, "s", b"b", 1 + 2j)]


def test_views_are_cloned_not_their_whole_storage():
    big = torch.zeros(1_000_000)
    payload = W.Channel(-1, -1).encode(encode(big[:3]))
    assert len(payload) < 10_000


def test_tensor_subclass_is_refused():
    class Sneaky(torch.Tensor):
        pass

    with pytest.raises(V.NotTransferable, match="tensor subclass .*plain torch.Tensor"):
        encode(torch.ones(2).as_subclass(Sneaky))


def test_objects_stay_in_the_worker():
    class AlwaysEqual:
        def __eq__(self, other):
            return True

    class FakeTensor:
        @property
        def __class__(self):
            return torch.Tensor

    handles = V.Handles()
    out = V.Encoder(handles, False)([AlwaysEqual(), FakeTensor(), {"__remote__": 1}, torch.nn.Linear(1, 1)])
    assert [o["__remote__"] for o in out] == [1, 2, 3, 4]
    assert out[3]["type"] == "torch.nn.modules.linear.Linear" and out[3]["callable"]
    with pytest.raises(V.NotTransferable, match="not plain data"):
        V.Encoder(handles, True)(AlwaysEqual())


def test_int_and_str_subclasses_become_exact():
    class Liar(int):
        def __eq__(self, other):
            return True

    class Text(str):
        pass

    out = encode([Liar(3), Text("x")])
    assert type(out[0]) is int and out[0] == 3 and type(out[1]) is str


def test_self_containing_list_is_an_error():
    loop = []
    loop.append(loop)
    with pytest.raises(V.NotTransferable, match="nested too deeply"):
        encode(loop)


def test_parent_side_decode_makes_remotes():
    made = []
    out = wire.decode({"a": [{"__remote__": 7, "type": "X"}], "b": (1,)}, lambda info: made.append(info) or "R")
    assert out == {"a": ["R"], "b": (1,)} and made[0]["__remote__"] == 7


def test_parent_side_encode_rejects_unknown_objects():
    with pytest.raises(TypeError, match="cannot send a object"):
        wire.encode(object())
    assert wire.encode({"x": torch.ones(1, requires_grad=True)})["x"].requires_grad is False


