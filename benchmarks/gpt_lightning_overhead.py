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
import math
import time
from pathlib import Path

import common
import torch

from genlab.data import CharTextDataModule
from genlab.models import GPT

OUT = Path("runs/bench/gpt_lightning_overhead.json")
MODEL = dict(n_layer=4, n_head=4, n_embd=128, dropout=0.0, lr=2e-3, weight_decay=0.1,
             warmup_steps=100, schedule="constant")
CLIP = 1.0


def plain_loop(model: GPT, datamodule: CharTextDataModule) -> common.PlainLoop:
    """The same training step without Lightning: forward, fp32 loss, backward, clip, AdamW, LR step."""
    return common.PlainLoop(model, *common.optimizer_and_scheduler(model),
                            lambda batch: model.loss(model(batch[0]), batch[1]),
                            common.forever(datamodule.train_dataloader()), clip=CLIP)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training time for each runner (default 60)")
    parser.add_argument("--chunk", type=float, default=5.0, help="seconds per interleaved chunk (default 5)")
    args = common.parse(parser, argv, OUT)

    datamodules = common.set_up(lambda: CharTextDataModule(block_size=64, batch_size=12, seed=0))
    models = common.twins(lambda: GPT(datamodules[0].vocab_size, block_size=64, **MODEL))

    plain = plain_loop(models[1], datamodules[1])
    interleave = common.Interleave([plain], args.seconds, args.chunk)
    trainer = common.quiet_trainer(max_epochs=-1, max_steps=-1, gradient_clip_val=CLIP, limit_val_batches=0,
                                   num_sanity_val_steps=0, callbacks=[interleave])
    wall = time.perf_counter()
    trainer.fit(models[0], datamodules[0])
    interleave.finish()  # the plain loop's share
    wall = time.perf_counter() - wall

    tokens_per_step = 12 * 64
    rows = {}
    for name, model, steps, seconds in (
        ("lightning", models[0], interleave.steps, interleave.seconds),
        ("plain", models[1], plain.steps, plain.seconds),
    ):
        rows[name] = {"steps": steps, "seconds": round(seconds, 2),
                      "tokens_per_s": round(steps * tokens_per_step / seconds, 1),
                      "val_loss": round(common.mean_loss(lambda x, y, m=model: m.loss(m(x), y), model,
                                                         datamodules[0].val_dataloader()), 4)}
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
        "machine": common.machine("python", "torch", "lightning", "cpu"),
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
    return common.write_report(result, args.out)


if __name__ == "__main__":
    main()
