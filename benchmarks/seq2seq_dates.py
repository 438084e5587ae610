"""One task, three architectures: dates -> ISO dates, accuracy against training time.

1. **Time to quality.** Trains, one after the other with the same data and seed, each with the
   defaults of its ``genlab fit`` config (validation every 100 steps on 512 dates):
   * ``Seq2SeqAttention(attention="none")``: the GRU encoder-decoder with one context vector;
   * ``Seq2SeqAttention`` (Bahdanau attention, ``configs/seq2seq.yaml``);
   * lab 03's ``TransformerSeq2Seq`` (``configs/transformer.yaml``).
   A callback records (seconds in training steps, validation exact match) at every validation.
   Each model then decodes the 1,000 held-out test dates: exact match, character accuracy and
   BLEU on characters (sacrebleu), greedy, and for the Bahdanau model beam search (width 4) too.
   Target: the Bahdanau model >= 99.5 % exact match within 120 s of training on 2 CPU cores.
2. **Lightning against a plain loop.** The Bahdanau model trained by ``lightning.Trainer`` and by
   a plain PyTorch loop (same init, batches, optimiser, clipping), interleaved in chunks in one
   process so that load from other processes hits both alike. Reports the throughput ratio.

    python benchmarks/seq2seq_dates.py [--overhead-seconds 30] [--threads N] [--skip-overhead]

Writes runs/bench/seq2seq_dates.json and runs/bench/seq2seq_dates.png (the figure). Wall times
on a shared machine are inflated; the JSON also has CPU seconds and step counts.
"""
from __future__ import annotations

import os

# Before torch loads OpenMP: idle threads sleep instead of spinning (see dates_accuracy.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import time
from pathlib import Path

import common
import lightning as L
import torch

from genlab import plots, training
from genlab.data import DatesDataModule
from genlab.metrics.translation import corpus_bleu, exact_match, ids_to_text, token_accuracy
from genlab.models.seq2seq import Seq2SeqAttention
from genlab.models.transformer_seq2seq import TransformerSeq2Seq
from genlab.plots.seq2seq import accuracy_vs_time

OUT = Path("runs/bench/seq2seq_dates.json")
TARGET_ACCURACY, TARGET_SECONDS = 0.995, 120.0
VAL_EVERY, VAL_BATCHES = 100, 8


class Clock(L.Callback):
    """Seconds spent in training steps (validation excluded) and the exact match at each validation."""

    def __init__(self):
        self.points: list[tuple[float, float, int]] = []
        self.seconds = self.cpu = 0.0
        self._start = self._cpu = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._start, self._cpu = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.seconds += time.perf_counter() - self._start
        self.cpu += time.process_time() - self._cpu

    def on_validation_end(self, trainer, module):
        if "val_exact_match" in trainer.callback_metrics:
            self.points.append((round(self.seconds, 2), float(trainer.callback_metrics["val_exact_match"]),
                                trainer.global_step))


def _trainer_args(name: str) -> dict:
    args = training.settings(name, small=False)[2]
    args.update(val_check_interval=VAL_EVERY, limit_val_batches=VAL_BATCHES)
    return args


@torch.no_grad()
def held_out(model, dm: DatesDataModule, width: int = 1) -> dict:
    """Exact match, character accuracy and BLEU (characters) on the whole test split."""
    model.eval()
    hits = n = correct = total = 0
    hyps, refs = [], []
    for batch in dm.test_dataloader():
        max_len = batch.tgt.shape[1] + 4
        if width == 1:
            pred = model.greedy_decode(batch.src, batch.src_lengths, max_len=max_len)
        else:
            pred, _ = model.beam_decode(batch.src, batch.src_lengths, width=width, max_len=max_len)
        hits += int(exact_match(pred, batch.tgt, dm.eos_id, dm.pad_id, dm.bos_id).sum())
        n += batch.src.shape[0]
        c, t = token_accuracy(pred, batch.tgt, dm.eos_id, dm.pad_id, dm.bos_id)
        correct, total = correct + c, total + t
        hyps += ids_to_text(pred, dm.tgt_vocab.itos, dm.eos_id, dm.pad_id, dm.bos_id)
        refs += ids_to_text(batch.tgt, dm.tgt_vocab.itos, dm.eos_id, dm.pad_id, dm.bos_id)
    model.train()
    return {"exact_match": round(hits / n, 4), "char_accuracy": round(correct / total, 4),
            "bleu_char": round(corpus_bleu(hyps, refs, tokenize="char"), 2), "examples": n}


def _model(name: str, dm: DatesDataModule, **overrides):
    config = training.load_config("transformer" if name == "transformer" else "seq2seq")
    kwargs = {**config["model"], **overrides}
    if name == "none":
        kwargs["attention"] = "none"
    cls = TransformerSeq2Seq if name == "transformer" else Seq2SeqAttention
    L.seed_everything(0, verbose=False)
    return cls(**{k: getattr(dm, k) for k in cls.linked_from_data}, **kwargs)


def time_to_quality(dm: DatesDataModule) -> dict:
    results = {}
    for name, label in (("none", "no attention (one context vector)"), ("additive", "Bahdanau attention"),
                        ("transformer", "Transformer (lab 03)")):
        model = _model(name, dm)
        clock = Clock()
        trainer = common.quiet_trainer(**_trainer_args("transformer" if name == "transformer" else "seq2seq"),
                                       callbacks=[clock])
        start = time.perf_counter()
        trainer.fit(model, dm)
        wall = time.perf_counter() - start
        row = {"label": label, "steps": trainer.global_step, "train_seconds": round(clock.seconds, 1),
               "train_cpu_seconds": round(clock.cpu, 1), "fit_wall_seconds": round(wall, 1),
               "curve": clock.points, "greedy": held_out(model, dm)}
        if name == "additive":
            row["beam4"] = held_out(model, dm, width=4)
        results[name] = row
        print(f"{label:>34}: {row['steps']} steps, {row['train_seconds']:.1f} s training "
              f"({row['train_cpu_seconds']:.1f} CPU s), test exact match {row['greedy']['exact_match']:.4f}, "
              f"char accuracy {row['greedy']['char_accuracy']:.4f}, BLEU {row['greedy']['bleu_char']:.2f}", flush=True)
    return results


# ------------------------------------------------------------------ Lightning overhead

def plain_loop(model: Seq2SeqAttention, dm: DatesDataModule, clip: float) -> common.PlainLoop:
    """The same step without Lightning: forward, float32 loss, backward, clip, AdamW, LR step."""
    def batch_loss(batch):
        src, src_lengths, tgt, _ = batch
        logits, _ = model(src, src_lengths, tgt)
        return model.loss(logits, tgt)

    return common.PlainLoop(model, *common.optimizer_and_scheduler(model), batch_loss,
                            common.forever(dm.train_dataloader()), clip=clip)


def lightning_overhead(seconds: float, chunk: float) -> dict:
    dms = common.set_up(lambda: DatesDataModule(**training.load_config("seq2seq")["data"]))
    # a constant learning rate: the cosine schedule needs the run length from a trainer; speed does not care
    models = common.twins(lambda: _model("additive", dms[0], schedule="constant"))
    clip = float(training.load_config("seq2seq")["trainer"]["gradient_clip_val"])
    plain = plain_loop(models[1], dms[1], clip)
    interleave = common.Interleave([plain], seconds, chunk)
    trainer = common.quiet_trainer(max_steps=100_000, gradient_clip_val=clip, limit_val_batches=0,
                                   num_sanity_val_steps=0, callbacks=[interleave])
    trainer.fit(models[0], dms[0])
    interleave.finish()
    rows = {"lightning": {"steps": interleave.steps, "seconds": round(interleave.seconds, 2)},
            "plain": {"steps": plain.steps, "seconds": round(plain.seconds, 2)}}
    for r in rows.values():
        r["steps_per_s"] = round(r["steps"] / r["seconds"], 3)
    ratio = rows["lightning"]["steps_per_s"] / rows["plain"]["steps_per_s"]
    print(f"Lightning {rows['lightning']['steps_per_s']:.2f} steps/s, plain loop {rows['plain']['steps_per_s']:.2f} "
          f"steps/s: ratio {ratio:.3f} (overhead {100 * (1 - ratio):.1f} %)", flush=True)
    return {"runners": rows, "ratio": round(ratio, 4), "overhead": round(1 - ratio, 4), "seconds": seconds,
            "chunk": chunk, "target_overhead": 0.05, "meets_target": bool(1 - ratio <= 0.05)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--overhead-seconds", type=float, default=30.0, help="training time per runner (default 30)")
    parser.add_argument("--chunk", type=float, default=5.0, help="seconds per interleaved chunk (default 5)")
    parser.add_argument("--skip-overhead", action="store_true", help="only the three-architecture comparison")
    args = common.parse(parser, argv, OUT)
    training.quiet_lightning()
    load_before = common.load_average()
    dm = DatesDataModule(**training.load_config("seq2seq")["data"])
    architectures = time_to_quality(dm)
    bahdanau = architectures["additive"]
    result = {
        "benchmark": "seq2seq_dates",
        "threads": torch.get_num_threads(),
        "architectures": architectures,
        "targets": {"test_exact_match": TARGET_ACCURACY, "train_seconds": TARGET_SECONDS},
        "meets_targets": bool(bahdanau["greedy"]["exact_match"] >= TARGET_ACCURACY
                              and bahdanau["train_seconds"] <= TARGET_SECONDS),
        "load_average": {"before": load_before},
        "machine": common.machine("python", "torch", "lightning", "cpu", "cores"),
    }
    if not args.skip_overhead:
        result["lightning_overhead"] = lightning_overhead(args.overhead_seconds, args.chunk)
    result["load_average"]["after"] = common.load_average()
    fig = accuracy_vs_time({r["label"]: [(s, a) for s, a, _ in r["curve"]] for r in architectures.values()},
                           target=TARGET_ACCURACY, ylabel="validation exact match (512 dates)",
                           title=f"dates -> ISO on {torch.get_num_threads()} CPU threads: accuracy against training time")
    plots.save(fig, args.out.with_suffix(".png"))
    common.write_json(result, args.out)
    print(f"Bahdanau: test exact match {bahdanau['greedy']['exact_match']:.4f} (beam 4: "
          f"{bahdanau['beam4']['exact_match']:.4f}) after {bahdanau['train_seconds']:.1f} s; targets "
          f"{'met' if result['meets_targets'] else 'NOT met'} (>= {TARGET_ACCURACY:.1%} within {TARGET_SECONDS:.0f} s)")
    print(f"load average before {result['load_average']['before']}, after {result['load_average']['after']}")
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return result


if __name__ == "__main__":
    main()
