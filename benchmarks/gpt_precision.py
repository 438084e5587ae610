"""GPT step time and finiteness under mixed precision against full precision, in one process.

On a CUDA GPU this compares Lightning's ``precision="16-mixed"`` with ``"32-true"`` (the
lab-03 GPU benchmark). On a CPU, Lightning swaps 16-mixed for bf16, so it compares
``"bf16-mixed"`` with ``"32-true"`` and says so. The two precisions alternate in rounds so
that load from other processes hits both alike.

    python benchmarks/gpt_precision.py [--steps 50] [--rounds 3] [--batch-size 12]

Prints a table and writes runs/bench/gpt_precision.json.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP

import argparse
import math
import statistics
import time
from pathlib import Path

import common
import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from genlab.data import CharTextDataModule
from genlab.models import GPT

OUT = Path("runs/bench/gpt_precision.json")
MODEL = dict(n_layer=4, n_head=4, n_embd=128, dropout=0.0, lr=2e-3)


class StepTimer(Callback):
    """Wall time of each training step (synchronised on CUDA) and the last loss."""

    def __init__(self):
        self.times, self.losses, self._start = [], [], 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self._start)
        self.losses.append(float(outputs["loss"]))


def run(precision: str, steps: int, batch_size: int, accelerator: str) -> StepTimer:
    L.seed_everything(0, verbose=False)
    data = CharTextDataModule(block_size=64, batch_size=batch_size)
    model = GPT(vocab_size=data.vocab_size, block_size=data.block_size, **MODEL)
    timer = StepTimer()
    trainer = common.quiet_trainer(accelerator=accelerator, devices=1, precision=precision, max_steps=steps,
                                   limit_val_batches=0, callbacks=[timer])
    trainer.fit(model, datamodule=data)
    return timer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50, help="training steps per run (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per precision (default 3)")
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    accelerator, mixed = ("gpu", "16-mixed") if cuda else ("cpu", "bf16-mixed")
    device = torch.cuda.get_device_name(0) if cuda else "CPU (no CUDA: bf16-mixed stands in for 16-mixed)"
    timings = {"32-true": [], mixed: []}
    finite = {"32-true": True, mixed: True}
    for _ in range(args.rounds):
        for precision in timings:
            timer = run(precision, args.steps, args.batch_size, accelerator)
            timings[precision] += timer.times[5:]  # drop warm-up steps
            finite[precision] &= all(math.isfinite(x) for x in timer.losses)

    median = {p: statistics.median(t) for p, t in timings.items()}
    result = {
        "device": device,
        "steps_per_run": args.steps,
        "rounds": args.rounds,
        "median_step_s": median,
        "speedup_mixed_over_32": median["32-true"] / median[mixed],
        "all_losses_finite": finite,
    }
    print(f"device: {device}")
    for p in timings:
        print(f"{p:>10s}: median step {median[p] * 1e3:8.2f} ms, losses finite: {finite[p]}")
    print(f"speed-up of {mixed} over 32-true: {result['speedup_mixed_over_32']:.2f}x")
    common.write_report(result, args.out)
    return 0 if all(finite.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
