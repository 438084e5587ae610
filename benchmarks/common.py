"""What the training benchmarks share: Lightning against a plain loop in one process, and the report.

The Lightning-overhead benchmarks train the same model (:func:`twins`, on data from
:func:`set_up`) once by ``lightning.Trainer`` (:func:`quiet_trainer`) and once by a plain PyTorch
loop (:class:`PlainLoop`), interleaved in chunks by a callback (:class:`Interleave`) so that load
from other processes hits both alike; each side counts only its own training time. A benchmark
reads its command line with :func:`parse` and ends by writing ``runs/bench/<name>.json``
(:func:`write_report`), with :func:`machine` saying where it ran.

Scripts import this as ``common``: ``python benchmarks/x.py`` puts ``benchmarks/`` on
``sys.path``, and ``tests/benchmarks/_load.py`` does the same for tests. It imports torch and
Lightning, so the scripts that start without them (ddp_scaling, gpu_check, grading_throughput)
do not use it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import lightning as L
import torch


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None, out: Path) -> argparse.Namespace:
    """The command line of a benchmark: ``parser`` with ``--threads`` (torch's intra-op threads, applied
    here) and ``--out`` (the JSON report, default ``out``) added, parsed from ``argv``; Lightning's
    "does not have many workers" warnings are silenced."""
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=out)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    return args


def forever(loader: Iterable) -> Iterator:
    """The batches of ``loader``, pass after pass, without end."""
    while True:
        yield from loader


def set_up(make: Callable[[], L.LightningDataModule], n: int = 2) -> list:
    """``n`` data modules from ``make()``, each set up for fitting (one for each runner)."""
    datamodules = [make() for _ in range(n)]
    for dm in datamodules:
        dm.setup("fit")
    return datamodules


def twins(make: Callable[[], torch.nn.Module], n: int = 2, seed: int = 0) -> list:
    """``n`` models from ``make()``, each after ``torch.manual_seed(seed)``; asserts their weights are equal."""
    models = []
    for _ in range(n):
        torch.manual_seed(seed)
        models.append(make())
    for other in models[1:]:
        assert all(torch.equal(a, b) for a, b in zip(models[0].parameters(), other.parameters(), strict=True))
    return models


def optimizer_and_scheduler(module: L.LightningModule) -> tuple:
    """The optimizer and the LR scheduler of ``module.configure_optimizers()`` (the dict form)."""
    config = module.configure_optimizers()
    return config["optimizer"], config["lr_scheduler"]["scheduler"]


def update(loss: torch.Tensor, optimizer, scheduler, parameters=None, clip: float | None = None) -> None:
    """One optimisation step on ``loss``: zero the gradients, backward, clip ``parameters`` at norm
    ``clip`` (when given), the optimizer's step, the scheduler's step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(parameters, clip)
    optimizer.step()
    scheduler.step()


class PlainLoop:
    """Training without Lightning, run in slices of wall time by :meth:`run_for`.

    Each step takes the next of ``batches``, computes ``batch_loss(batch)`` and :func:`update`\\ s
    (clipping ``model``'s gradients at ``clip`` when given), until ``max_steps`` steps in all
    (no cap when None). ``steps``, ``seconds`` (training time) and ``step_times`` (each step's
    seconds) add up over the slices.
    """

    def __init__(self, model: torch.nn.Module, optimizer, scheduler, batch_loss: Callable, batches: Iterator,
                 clip: float | None = None, max_steps: int | None = None):
        self.model = model.train()
        self.optimizer, self.scheduler, self.batch_loss, self.batches = optimizer, scheduler, batch_loss, batches
        self.clip, self.max_steps = clip, max_steps
        self.steps, self.seconds, self.step_times = 0, 0.0, []

    def step(self) -> None:
        """One training step on the next batch."""
        loss = self.batch_loss(next(self.batches))
        update(loss, self.optimizer, self.scheduler, self.model.parameters(), self.clip)

    def after_step(self, seconds: float) -> None:
        """Called after every step with the training seconds so far; its own time is not counted (nothing here)."""

    def run_for(self, seconds: float) -> None:
        """Train for ``seconds`` more (or up to ``max_steps``); the time is added to ``seconds``."""
        start = time.perf_counter()
        while (now := time.perf_counter()) - start < seconds and (self.max_steps is None or self.steps < self.max_steps):
            self.step()
            self.steps += 1
            paused = time.perf_counter()
            self.step_times.append(paused - now)
            self.after_step(self.seconds + paused - start)
            start += time.perf_counter() - paused
        self.seconds += time.perf_counter() - start


class LightningClock(L.Callback):
    """Lightning's training time: ``seconds`` and ``steps`` of its training batches from the start of
    training (set-up excluded), validation excluded, and ``step_times`` (each batch's seconds).
    After every batch, :meth:`after_batch`; its time is not counted."""

    def __init__(self):
        self.seconds, self.steps, self.step_times = 0.0, 0, []
        self._mark = self._paused = 0.0

    def after_batch(self, trainer: L.Trainer) -> None:
        """What to do after each batch, once it is counted (nothing here)."""

    def on_train_start(self, trainer, pl_module):
        self._mark = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.step_times.append(time.perf_counter() - self._mark)
        self.seconds += self.step_times[-1]
        self.steps += 1
        self.after_batch(trainer)
        self._mark = time.perf_counter()

    def on_validation_start(self, trainer, pl_module):
        self._paused = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        self._mark += time.perf_counter() - self._paused  # validation time does not count


class Interleave(LightningClock):
    """Gives every ``chunk`` seconds of Lightning's training as much to each plain loop in ``runners``
    (their order alternating from chunk to chunk), each capped at a ``budget`` of seconds; stops
    Lightning when its own time reaches ``budget``. :meth:`finish` then tops the loops up."""

    def __init__(self, runners: Sequence[PlainLoop], budget: float, chunk: float):
        super().__init__()
        self.runners, self.budget, self.chunk = list(runners), budget, chunk
        self._next_switch = chunk

    def after_batch(self, trainer: L.Trainer) -> None:
        if self.seconds >= self.budget:
            trainer.should_stop = True
        elif self.seconds >= self._next_switch:
            for runner in self.runners:
                runner.run_for(min(self.chunk, self.budget - runner.seconds))
            self.runners.reverse()
            self._next_switch += self.chunk

    def finish(self) -> None:
        """After the fit: run each plain loop for what is left of its budget."""
        for runner in self.runners:
            if runner.seconds < self.budget and (runner.max_steps is None or runner.steps < runner.max_steps):
                runner.run_for(self.budget - runner.seconds)


def quiet_trainer(**kwargs) -> L.Trainer:
    """A ``lightning.Trainer`` without a logger, checkpoints, a progress bar or a model summary, on
    one CPU unless ``kwargs`` say otherwise; ``kwargs`` go to the trainer."""
    return L.Trainer(**{"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
                        "enable_model_summary": False, "accelerator": "cpu", "devices": 1, **kwargs})


@torch.no_grad()
def mean_loss(loss_fn: Callable, model: torch.nn.Module, loader: Iterable, max_batches: int | None = None) -> float:
    """``loss_fn(x, y)`` averaged over the tokens of ``loader``'s ``(x, y)`` batches (the first
    ``max_batches`` when given), with ``model`` in eval mode, then back in training mode."""
    model.eval()
    total, n = 0.0, 0
    for i, (x, y) in enumerate(loader):
        if i == max_batches:
            break
        total += loss_fn(x, y).item() * x.numel()
        n += x.numel()
    model.train()
    return total / n


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, to 2 decimals."""
    return [round(x, 2) for x in os.getloadavg()]


_MACHINE = {
    "python": platform.python_version,
    "torch": lambda: torch.__version__,
    "lightning": lambda: L.__version__,
    "cpu": lambda: platform.processor() or platform.machine(),
    "cores": os.cpu_count,
    "cpus": os.cpu_count,
    "load_average": load_average,
}


def machine(*keys: str) -> dict:
    """The report's ``machine`` entry with ``keys``, in that order, from: python, torch, lightning,
    cpu (the processor), cores or cpus (the CPU count), load_average."""
    return {key: _MACHINE[key]() for key in keys}


def write_json(result: dict, out: Path) -> None:
    """Write ``result`` to ``out`` as indented JSON, making its folder."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


def write_report(result: dict, out: Path) -> dict:
    """:func:`write_json`, then say where; returns ``result``."""
    write_json(result, out)
    print(f"wrote {out}")
    return result
