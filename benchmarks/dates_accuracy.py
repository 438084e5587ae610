"""Time-to-quality of TransformerSeq2Seq on dates with the defaults of configs/transformer.yaml.

Trains with the config's model, data and trainer settings (periodic validation included,
logging and checkpoints off), then decodes the held-out test split greedily and reports
the exact-match accuracy. Target: >= 99.5% exact match within 120 s on 2 CPU cores.

    python benchmarks/dates_accuracy.py [--max-steps N] [--threads N]

Prints a table and writes runs/bench/dates_accuracy.json.
"""
from __future__ import annotations

import os

# Before torch loads OpenMP: idle threads sleep instead of spinning. On a machine shared with
# other jobs, spinning threads make 2-thread training 10x slower; on an idle one it costs ~nothing.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import time
from pathlib import Path

import common
import lightning as L
import torch

from genlab import training
from genlab.data import DatesDataModule
from genlab.models import TransformerSeq2Seq
from genlab.models.transformer_seq2seq import exact_match

OUT = Path("runs/bench/dates_accuracy.json")
TARGET_ACCURACY, TARGET_SECONDS = 0.995, 120.0


@torch.no_grad()
def held_out_exact_match(model: TransformerSeq2Seq, dm: DatesDataModule) -> tuple[float, int]:
    model.eval()
    hits, n = 0, 0
    for batch in dm.test_dataloader():
        pred = model.greedy_decode(batch.src, batch.src_lengths, max_len=batch.tgt.shape[1] - 1)
        ok = exact_match(pred, batch.tgt[:, 1:], dm.eos_id, dm.pad_id)
        hits += int(ok.sum())
        n += len(ok)
    return hits / n, n


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-steps", type=int, default=None, help="override trainer.max_steps")
    parser.add_argument("--seed", type=int, default=0)
    args = common.parse(parser, argv, OUT)

    config = training.load_config("transformer")
    _, _, trainer_args = training.settings("transformer", small=False)
    if args.max_steps is not None:
        trainer_args["max_steps"] = args.max_steps
    L.seed_everything(args.seed, verbose=False)
    dm = DatesDataModule(**config.get("data", {}))
    linked = {name: getattr(dm, name) for name in TransformerSeq2Seq.linked_from_data}
    model = TransformerSeq2Seq(**linked, **config.get("model", {}))
    trainer = common.quiet_trainer(**trainer_args)
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.fit(model, dm)
    train_s, train_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    start = time.perf_counter()
    accuracy, n = held_out_exact_match(model, dm)
    eval_s = time.perf_counter() - start

    result = {
        "benchmark": "dates_accuracy",
        "config": {"model": config.get("model", {}), "data": config.get("data", {}), "trainer": trainer_args,
                   "threads": torch.get_num_threads()},
        "train_seconds": round(train_s, 1),
        "train_cpu_seconds": round(train_cpu_s, 1),  # all threads; wall >> cpu/threads means a busy machine
        "eval_seconds": round(eval_s, 1),
        "steps": trainer.global_step,
        "val_exact_match": round(float(trainer.callback_metrics.get("val_exact_match", float("nan"))), 4),
        "test_exact_match": round(accuracy, 4),
        "test_examples": n,
        "targets": {"test_exact_match": TARGET_ACCURACY, "train_seconds": TARGET_SECONDS},
        "meets_targets": bool(accuracy >= TARGET_ACCURACY and train_s <= TARGET_SECONDS),
        "machine": common.machine("python", "torch", "cpu"),
    }
    print(f"TransformerSeq2Seq on dates, configs/transformer.yaml defaults, {torch.get_num_threads()} threads")
    print(f"{'steps':>6} {'train s':>8} {'cpu s':>7} {'eval s':>7} {'val EM':>7} {'test EM':>8} {'targets':>8}")
    print(f"{result['steps']:>6} {train_s:>8.1f} {train_cpu_s:>7.1f} {eval_s:>7.1f} {result['val_exact_match']:>7.4f} "
          f"{accuracy:>8.4f} {'met' if result['meets_targets'] else 'NOT met':>8}")
    print(f"(targets: test exact match >= {TARGET_ACCURACY:.1%} on {n} held-out dates, "
          f"training <= {TARGET_SECONDS:.0f} s)")
    return common.write_report(result, args.out)


if __name__ == "__main__":
    main()
