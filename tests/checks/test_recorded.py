"""genlab.checks.recorded: oracles compute in the full library and answer from a recording in the student build."""
from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from genlab.checks import kit, recorded
from genlab.checks.recorded import (
    OracleRemoved,
    RecordingMiss,
    Table,
    Unrecorded,
    exploring,
    fingerprint,
    oracle,
    recording,
    replaying,
)


def _lab99(fn):
    """Pretend ``fn`` lives in lab 99's checks, where ``@oracle`` functions belong."""
    fn.__module__ = "genlab.checks.lab99_bugs"
    return fn


calls = []


@oracle
@_lab99
def double_and_sum(x: torch.Tensor, scale: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    calls.append(1)
    return x * scale, (x * scale).sum()


@oracle
@_lab99
def removed(x: torch.Tensor) -> torch.Tensor:   # what the student build makes of an oracle
    raise OracleRemoved("lab99: recorded, not computed")


def test_fingerprint_tells_inputs_apart_and_repeats():
    x = torch.arange(6.0).reshape(2, 3)
    key = fingerprint("f", {"x": x, "s": 2.0})
    assert key == fingerprint("f", {"s": 2.0, "x": x.clone()})
    for other in ({"x": x.double(), "s": 2.0}, {"x": x.reshape(3, 2), "s": 2.0}, {"x": x + 1e-7, "s": 2.0},
                  {"x": x, "s": 2}, {"x": x, "s": 2.0000001}):
        assert fingerprint("f", other) != key
    assert fingerprint("g", {"x": x, "s": 2.0}) != key


def test_fingerprint_reads_modules_closures_and_generators():
    torch.manual_seed(0)
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    assert fingerprint("f", {"m": a}) != fingerprint("f", {"m": b})
    b.load_state_dict(a.state_dict())
    assert fingerprint("f", {"m": a}) == fingerprint("f", {"m": b})

    def make_step(w):
        def step(t):
            return t @ w
        return step

    w = torch.ones(2, 2)
    assert fingerprint("f", {"s": make_step(w)}) == fingerprint("f", {"s": make_step(w.clone())})
    assert fingerprint("f", {"s": make_step(w)}) != fingerprint("f", {"s": make_step(2 * w)})
    assert fingerprint("f", {"p": functools.partial(make_step, w)}) != fingerprint("f", {"p": functools.partial(make_step, 2 * w)})
    g = torch.Generator().manual_seed(1)
    assert fingerprint("f", {"g": g}) == fingerprint("f", {"g": torch.Generator().manual_seed(1)})
    with pytest.raises(TypeError, match="no fingerprint"):
        fingerprint("f", {"o": object()})


def test_a_recorded_answer_replays_without_computing():
    x = torch.tensor([1.0, 2.0])
    table = Table()
    with recording(table):
        want = double_and_sum(x)
    assert len(table.answers) == 1
    calls.clear()
    with replaying(table):
        got = double_and_sum(x.clone(), scale=2.0)   # the same call, spelled differently
    assert calls == [] and torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    got[0].add_(1)   # a caller writing into a replayed answer does not change the table
    with replaying(table):
        assert torch.equal(double_and_sum(x)[0], want[0])


def test_a_missing_answer_matches_nothing_and_says_why_when_used():
    with replaying(Table(layouts={"genlab.checks.lab99_bugs:double_and_sum": ("tuple", [None, None])})):
        missing = double_and_sum(torch.tensor([5.0]))
        out, total = missing   # unpacks like the real result
    assert isinstance(out, Unrecorded) and isinstance(total, Unrecorded)
    assert not kit.close(torch.tensor([10.0]), out, 1e-6) and not kit.same(torch.tensor([10.0]), out)
    for use in (lambda: out.shape, lambda: out + 1, lambda: torch.tensor(1.0) - out, lambda: out == 1,
                lambda: bool(out), lambda: torch.sigmoid(out)):
        with pytest.raises(RecordingMiss, match="double_and_sum: this genlab carries"):
            use()


def test_the_message_names_a_different_torch():
    table = Table(torch="1.0.0")
    assert "recorded with torch 1.0.0" in table.miss_reason()
    assert "recorded with torch" not in Table().miss_reason()


def test_a_removed_oracle_answers_from_the_packaged_table(tmp_path, monkeypatch):
    x = torch.tensor([3.0])
    table = Table()
    table.add("genlab.checks.lab99_bugs:removed", fingerprint("genlab.checks.lab99_bugs:removed", {"x": x}),
              torch.tensor([42.0]))
    table.save(tmp_path / "lab99.pt")
    monkeypatch.setattr(recorded, "RECORDED_DIR", tmp_path)
    recorded.load_table.cache_clear()
    try:
        assert torch.equal(removed(x), torch.tensor([42.0]))
        assert isinstance(removed(torch.tensor([4.0])), Unrecorded)
    finally:
        recorded.load_table.cache_clear()


def test_a_removed_oracle_without_a_table_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(recorded, "RECORDED_DIR", tmp_path)
    recorded.load_table.cache_clear()
    try:
        with pytest.raises(RecordingMiss, match="no recorded answers for lab 99"):
            removed(torch.tensor([1.0]))
    finally:
        recorded.load_table.cache_clear()


def test_exploring_fails_every_comparison_with_an_answer_and_fail_if_goes_on():
    x = torch.tensor([1.0, 2.0])
    with recording(Table(), explore=True):
        assert exploring()
        out, _ = double_and_sum(x)
        assert not kit.close(out.clone(), out, 1e-6) and not kit.same(out, out)
        assert kit.close(x, x.clone(), 1e-6)   # comparisons with anything else are untouched
        kit.fail_if("a hint")                   # only recorded while exploring
    assert not exploring()
    with pytest.raises(AssertionError, match="a hint"):
        kit.fail_if("a hint")


def test_a_table_survives_saving(tmp_path):
    table = Table(messages={"solution": {"check_a": None}}, digest="d")
    with recording(table):
        double_and_sum(torch.tensor([1.0]))
    table.save(tmp_path / "t.pt")
    back = Table.load(tmp_path / "t.pt")
    assert back.digest == "d" and back.messages == table.messages and back.answers.keys() == table.answers.keys()


def test_an_oracle_outside_a_labs_checks_is_refused():
    def f():
        return 1
    f.__module__ = "genlab.nn.attention"
    with pytest.raises(ValueError, match="lab's checks"):
        oracle(f)


def test_lists_of_tensors_are_stored_stacked_and_come_back_as_they_were(tmp_path):
    trajectory = [torch.full((3,), float(i)) for i in range(50)]
    mixed = (torch.zeros(2), torch.ones(3), None, [torch.ones(1), torch.zeros(1)])
    table = Table(answers={"a": trajectory, "b": mixed, "c": {"state": (torch.ones(2), torch.zeros(2))}})
    table.save(tmp_path / "t.pt")
    back = Table.load(tmp_path / "t.pt").answers
    assert isinstance(back["a"], list) and len(back["a"]) == 50 and all(torch.equal(x, y) for x, y in zip(back["a"], trajectory, strict=True))
    assert isinstance(back["b"], tuple) and back["b"][2] is None and torch.equal(back["b"][1], torch.ones(3))
    assert isinstance(back["b"][3], list) and torch.equal(back["b"][3][0], torch.ones(1))
    assert isinstance(back["c"]["state"], tuple) and torch.equal(back["c"]["state"][0], torch.ones(2))
