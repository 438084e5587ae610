"""benchmarks/common.py: the plain loop's and the callback's clocks, the interleaving, the report."""
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from tests.benchmarks._load import BENCHMARKS, load

common = load("common")

USERS = ("dates_accuracy", "gan_ring", "gpt_lightning_overhead", "gpt_precision", "gpt_speed", "rnn_lm_quality",
         "seq2seq_dates", "vae_digits")


class FakeClock:
    """Stands in for ``time`` in common: ``perf_counter`` reads ``now``, which the test sets."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(common, "time", fake)
    return fake


class FakeRunner:
    """A plain loop that only records the seconds it is given."""

    def __init__(self, max_steps=None):
        self.seconds, self.steps, self.max_steps, self.calls = 0.0, 0, max_steps, []

    def run_for(self, seconds):
        self.calls.append(seconds)
        self.seconds += seconds


def _linear_loop(max_steps=None):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    batches = common.forever([(torch.randn(4, 3), torch.randn(4, 1)) for _ in range(3)])
    loss = lambda batch: torch.nn.functional.mse_loss(model(batch[0]), batch[1])  # noqa: E731
    return common.PlainLoop(model, optimizer, scheduler, loss, batches, clip=1.0, max_steps=max_steps)


def test_plain_loop_trains_up_to_max_steps_and_adds_up_its_time():
    loop = _linear_loop(max_steps=5)
    before = loop.model.weight.detach().clone()
    loop.run_for(60.0)
    assert loop.steps == 5 and len(loop.step_times) == 5 and 0 < loop.seconds < 60
    assert not torch.equal(before, loop.model.weight)
    seconds = loop.seconds
    loop.run_for(60.0)  # at the cap: no more steps
    assert loop.steps == 5 and loop.seconds >= seconds


def test_plain_loop_does_not_count_after_step(clock):
    loop = _linear_loop(max_steps=3)
    seen = []

    def after_step(seconds):
        seen.append(seconds)
        clock.now += 100.0  # e.g. an evaluation: excluded

    loop.after_step = after_step
    loop.run_for(1.0)
    assert loop.steps == 3 and seen == [0.0, 0.0, 0.0] and loop.seconds == 0.0


def test_interleave_hands_chunks_to_the_runners_and_stops_at_the_budget(clock):
    a, b = FakeRunner(), FakeRunner()
    interleave = common.Interleave([a, b], budget=5.0, chunk=2.0)
    trainer = SimpleNamespace(should_stop=False)
    interleave.on_train_start(trainer, None)
    order = []
    a.run_for = lambda s, f=a.run_for: (order.append("a"), f(s))
    b.run_for = lambda s, f=b.run_for: (order.append("b"), f(s))
    for _ in range(5):
        clock.now += 1.0
        interleave.on_train_batch_end(trainer, None, None, None, 0)
        assert trainer.should_stop == (interleave.seconds >= 5.0)
    assert interleave.steps == 5 and interleave.seconds == 5.0 and interleave.step_times == [1.0] * 5
    assert a.calls == b.calls == [2.0, 2.0] and order == ["a", "b", "b", "a"]  # the order alternates
    interleave.finish()
    assert a.calls == b.calls == [2.0, 2.0, 1.0] and a.seconds == b.seconds == 5.0


def test_lightning_clock_excludes_validation(clock):
    timer = common.LightningClock()
    timer.on_train_start(None, None)
    clock.now = 1.0
    timer.on_validation_start(None, None)
    clock.now = 11.0
    timer.on_validation_end(None, None)
    clock.now = 12.0
    timer.on_train_batch_end(None, None, None, None, 0)
    assert timer.seconds == 2.0 and timer.steps == 1


def test_finish_respects_the_step_cap():
    capped = FakeRunner(max_steps=3)
    capped.steps = 3
    common.Interleave([capped], budget=5.0, chunk=1.0).finish()
    assert capped.calls == []


def test_twins_have_equal_weights_and_set_up_prepares_data():
    a, b = common.twins(lambda: torch.nn.Linear(4, 2))
    assert torch.equal(a.weight, b.weight) and a is not b
    stages = []
    made = common.set_up(lambda: SimpleNamespace(setup=stages.append), n=3)
    assert len(made) == 3 and stages == ["fit"] * 3


def test_mean_loss_weights_by_tokens_and_stops_at_max_batches():
    model = torch.nn.Identity()
    loader = [(torch.zeros(2, 3), torch.tensor(1.0)), (torch.zeros(1, 3), torch.tensor(4.0)),
              (torch.zeros(5, 5), torch.tensor(100.0))]
    assert common.mean_loss(lambda x, y: y, model, loader, max_batches=2) == pytest.approx((6 * 1 + 3 * 4) / 9)
    assert model.training


def test_machine_keeps_the_keys_in_order():
    info = common.machine("python", "torch", "lightning", "cpu", "cores", "load_average")
    assert list(info) == ["python", "torch", "lightning", "cpu", "cores", "load_average"]
    assert info["torch"] == torch.__version__ and len(info["load_average"]) == 3


def test_parse_adds_threads_and_out(tmp_path):
    import argparse

    threads = torch.get_num_threads()
    try:
        args = common.parse(argparse.ArgumentParser(), ["--threads", "1"], tmp_path / "x.json")
        assert args.threads == 1 and args.out == tmp_path / "x.json" and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


def test_write_report_writes_json_and_says_where(tmp_path, capsys):
    out = tmp_path / "deep" / "x.json"
    assert common.write_report({"a": 1}, out) == {"a": 1}
    assert json.loads(out.read_text()) == {"a": 1} and out.read_text().endswith("\n")
    assert capsys.readouterr().out == f"wrote {out}\n"


@pytest.mark.parametrize("name", USERS)
def test_scripts_import_through_the_loader(name):
    assert callable(load(name).main)


def test_a_script_finds_common_when_run_by_path():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "dates_accuracy.py"), "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--max-steps" in done.stdout
