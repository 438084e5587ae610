"""Lightning's overhead on GPT training: tokens/s and val loss at equal wall-clock time.

The same GPT (4 layers, 4 heads, 128 wide, block 64, batch 12, same init, same batches) is
trained by ``lightning.Trainer`` and by a plain PyTorch loop in one process. The two are
interleaved in chunks (Lightning runs a chunk, then a callback runs the plain loop for the
same time) so load from other processes hits both alike. Each gets ``--seconds`` of
training time (setup excluded); then both are scored on the same validation batches.

    python benchmarks/gpt_lightning_overhead.py [--seconds 60] [--chunk 5] [--threads N]

Prints a table and writes runs/bench/gpt_lightning_overhead.json. Target: overhead <= 5%.
"""
from __future__ import annotations

import os

# Before torch loads OpenMP: idle threads sleep instead of spinning. On a machine shared with
# other jobs, spinning threads make 2-thread training 10x slower; on an idle one it costs ~nothing.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import math
import platform
import time
import warnings
from pathlib import Path

import lightning as L
import torch

from genlab.data import CharTextDataModule
from genlab.models import GPT

OUT = Path("runs/bench/gpt_lightning_overhead.json")
MODEL = dict(n_layer=4, n_head=4, n_embd=128, dropout=0.0, lr=2e-3, weight_decay=0.1,
             warmup_steps=100, schedule="constant")
CLIP = 1.0


def _forever(loader):
    while True:
        yield from loader


class PlainLoop:
    """The same training step without Lightning: forward, fp32 loss, backward, clip, AdamW, LR step."""

    def __init__(self, model: GPT, datamodule: CharTextDataModule):
        self.model = model.train()
        config = model.configure_optimizers()
        self.optimizer = config["optimizer"]
        self.scheduler = config["lr_scheduler"]["scheduler"]
        self.batches = _forever(datamodule.train_dataloader())
        self.steps, self.seconds = 0, 0.0

    def run_for(self, seconds: float) -> None:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            x, y = next(self.batches)
            loss = self.model.loss(self.model(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), CLIP)
            self.optimizer.step()
            self.scheduler.step()
            self.steps += 1
        self.seconds += time.perf_counter() - start


class Interleave(L.Callback):
    """Counts Lightning's training time and hands every ``chunk`` seconds to the plain loop."""

    def __init__(self, plain: PlainLoop, budget: float, chunk: float):
        self.plain, self.budget, self.chunk = plain, budget, chunk
        self.seconds, self.steps = 0.0, 0
        self._mark = 0.0
        self._next_switch = chunk

    def on_train_start(self, trainer, pl_module):
        self._mark = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now = time.perf_counter()
        self.seconds += now - self._mark
        self.steps += 1
        if self.seconds >= self.budget:
            trainer.should_stop = True
        elif self.seconds >= self._next_switch:
            self.plain.run_for(min(self.chunk, self.budget - self.plain.seconds))
            self._next_switch += self.chunk
        self._mark = time.perf_counter()


@torch.no_grad()
def val_loss(model: GPT, datamodule: CharTextDataModule) -> float:
    model.eval()
    total, n = 0.0, 0
    for x, y in datamodule.val_dataloader():
        total += model.loss(model(x), y).item() * x.numel()
        n += x.numel()
    model.train()
    return total / n


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training time for each runner (default 60)")
    parser.add_argument("--chunk", type=float, default=5.0, help="seconds per interleaved chunk (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")

    datamodules = [CharTextDataModule(block_size=64, batch_size=12, seed=0) for _ in range(2)]
    for dm in datamodules:
        dm.setup("fit")
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(GPT(datamodules[0].vocab_size, block_size=64, **MODEL))
    assert all(torch.equal(a, b) for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True))

    plain = PlainLoop(models[1], datamodules[1])
    interleave = Interleave(plain, args.seconds, args.chunk)
    trainer = L.Trainer(
        max_epochs=-1, max_steps=-1, gradient_clip_val=CLIP, limit_val_batches=0, num_sanity_val_steps=0,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[interleave], accelerator="cpu", devices=1,
    )
    wall = time.perf_counter()
    trainer.fit(models[0], datamodules[0])
    if plain.seconds < args.seconds:  # finish the plain loop's share
        plain.run_for(args.seconds - plain.seconds)
    wall = time.perf_counter() - wall

    tokens_per_step = 12 * 64
    rows = {}
    for name, model, steps, seconds in (
        ("lightning", models[0], interleave.steps, interleave.seconds),
        ("plain", models[1], plain.steps, plain.seconds),
    ):
        rows[name] = {"steps": steps, "seconds": round(seconds, 2),
                      "tokens_per_s": round(steps * tokens_per_step / seconds, 1),
                      "val_loss": round(val_loss(model, datamodules[0]), 4)}
    overhead = 1.0 - rows["lightning"]["tokens_per_s"] / rows["plain"]["tokens_per_s"]
    result = {
        "benchmark": "gpt_lightning_overhead",
        "config": {**MODEL, "block_size": 64, "batch_size": 12, "seconds": args.seconds, "chunk": args.chunk,
                   "threads": torch.get_num_threads()},
        "runners": rows,
        "overhead": round(overhead, 4),
        "target_overhead": 0.05,
        "meets_target": bool(overhead <= 0.05),
        "wall_seconds": round(wall, 1),
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "lightning": L.__version__, "cpu": platform.processor() or platform.machine()},
    }
    print(f"GPT 4L/4H/128d, block 64, batch 12, {args.seconds:.0f} s each, interleaved in {args.chunk:.0f} s chunks, "
          f"{torch.get_num_threads()} threads")
    print(f"{'runner':<10} {'steps':>7} {'seconds':>8} {'tokens/s':>10} {'val_loss':>9}")
    for name, r in rows.items():
        print(f"{name:<10} {r['steps']:>7} {r['seconds']:>8.1f} {r['tokens_per_s']:>10.0f} {r['val_loss']:>9.4f}")
    ratio = rows["lightning"]["tokens_per_s"] / rows["plain"]["tokens_per_s"]
    print(f"lightning/plain throughput = {ratio:.3f}  overhead = {100 * overhead:.1f}% "
          f"(target <= 5%: {'met' if result['meets_target'] else 'NOT met'})")
    if not math.isfinite(rows["lightning"]["val_loss"]):
        print("warning: non-finite validation loss")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
