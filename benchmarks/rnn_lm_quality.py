"""The char-LSTM of ``genlab fit rnn_lm``: validation loss against wall time, Lightning vs plain PyTorch.

The same RNNLanguageModel (the YAML defaults: 1 layer, 256 units, 64-dim embeddings, 32
contiguous streams, windows of 128, AdamW with warmup and cosine decay, clipping at 1) is
trained by ``lightning.Trainer`` and by a plain PyTorch loop in one process, from the same
initial weights on the same batches. Both use truncated BPTT: the state carried from window
to window, detached, reset at each epoch. The two are interleaved in chunks (Lightning runs a
chunk, then a callback runs the plain loop for the same time), so load from other processes
hits both alike. Every ``val_every`` steps each runner scores the whole validation split
(streams from zeros, state carried); evaluation time is excluded from both clocks.

    python benchmarks/rnn_lm_quality.py [--seconds 300] [--chunk 10] [--threads N]

Prints a table and writes runs/bench/rnn_lm_quality.json (and .png, validation loss against
training seconds). Targets: best validation loss <= 1.25 nats/char within 5 minutes of
training on 2 CPU cores; Lightning's overhead <= 5%.
"""
from __future__ import annotations

import os

# Before torch loads OpenMP: idle threads sleep instead of spinning (see gpt_lightning_overhead.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import math
import time
from pathlib import Path

import common
import torch

from genlab import training
from genlab.data import CharTextDataModule
from genlab.lm import tbptt_step
from genlab.models.common import adamw_with_decay_groups, lr_scheduler_config
from genlab.models.rnn_lm import RNNLanguageModel
from genlab.nn.rnn import detach_state

OUT = Path("runs/bench/rnn_lm_quality.json")
TARGET_LOSS, TARGET_SECONDS, TARGET_OVERHEAD = 1.25, 300.0, 0.05


@torch.no_grad()
def val_loss(model: RNNLanguageModel, datamodule: CharTextDataModule) -> float:
    """Mean loss over every validation token, read as streams from a zero state."""
    was_training = model.training
    model.eval()
    total, count, hidden = 0.0, 0, None
    for x, y in datamodule.val_dataloader():
        logits, hidden = model(x, hidden)
        hidden = detach_state(hidden)
        total += float(model.loss_fn(logits, y)) * y.numel()
        count += y.numel()
    model.train(was_training)
    return total / count


class TBPTTLoop(common.PlainLoop):
    """The same training without Lightning: tbptt_step, backward, clip, AdamW, LR step, state carried
    (reset at each epoch); every ``val_every`` steps a point of the validation ``curve``."""

    def __init__(self, model: RNNLanguageModel, datamodule: CharTextDataModule, max_steps: int, clip: float,
                 val_every: int):
        hp = model.hparams
        optimizer = adamw_with_decay_groups(model, hp.lr, hp.weight_decay)
        config = lr_scheduler_config(optimizer, hp.schedule, hp.warmup_steps, max_steps)
        super().__init__(model, optimizer, config["lr_scheduler"]["scheduler"], self._loss, self._epochs(),
                         clip=clip, max_steps=max_steps)
        self.datamodule, self.val_every = datamodule, val_every
        self.curve: list[tuple[float, float]] = []
        self._hidden = None

    def _epochs(self):
        while True:
            self._hidden = None  # new epoch: zeros
            yield from self.datamodule.train_dataloader()

    def _loss(self, batch):
        loss, self._hidden = tbptt_step(self.model, batch, self._hidden, loss_fn=self.model.loss_fn)
        return loss

    def after_step(self, seconds: float) -> None:
        if self.steps % self.val_every == 0:  # evaluation time does not count
            self.curve.append((seconds, val_loss(self.model, self.datamodule)))


class Interleave(common.Interleave):
    """:class:`common.Interleave`, also recording Lightning's validation ``curve`` (training seconds, loss)."""

    def __init__(self, plain: TBPTTLoop, budget: float, chunk: float):
        super().__init__([plain], budget, chunk)
        self.curve: list[tuple[float, float]] = []

    def on_validation_end(self, trainer, pl_module):
        value = trainer.callback_metrics.get("val_loss")
        if value is not None and not trainer.sanity_checking:
            self.curve.append((self.seconds, float(value)))
        super().on_validation_end(trainer, pl_module)


def _time_to(curve, target):
    return next((round(s, 1) for s, v in curve if v <= target), None)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=TARGET_SECONDS, help="training time per runner (default 300)")
    parser.add_argument("--chunk", type=float, default=10.0, help="seconds per interleaved chunk (default 10)")
    args = common.parse(parser, argv, OUT)
    training.quiet_lightning()

    model_args, data_args, trainer_args = training.settings("rnn_lm", small=False)
    max_steps, val_every, clip = trainer_args["max_steps"], trainer_args["val_check_interval"], \
        trainer_args["gradient_clip_val"]
    datamodules = common.set_up(lambda: CharTextDataModule(**data_args))
    models = common.twins(lambda: RNNLanguageModel(datamodules[0].vocab_size, **model_args))

    plain = TBPTTLoop(models[1], datamodules[1], max_steps, clip, val_every)
    interleave = Interleave(plain, args.seconds, args.chunk)
    trainer = common.quiet_trainer(max_steps=max_steps, val_check_interval=val_every, check_val_every_n_epoch=None,
                                   gradient_clip_val=clip, num_sanity_val_steps=0, callbacks=[interleave])
    wall = time.perf_counter()
    trainer.fit(models[0], datamodules[0])
    interleave.finish()  # the plain loop's share
    if plain.steps % val_every:  # Lightning validates when it stops; so does the plain loop
        plain.curve.append((plain.seconds, val_loss(plain.model, plain.datamodule)))
    wall = time.perf_counter() - wall

    rows = {}
    for name, steps, seconds, curve in (("lightning", interleave.steps, interleave.seconds, interleave.curve),
                                        ("plain", plain.steps, plain.seconds, plain.curve)):
        best = min((v for _, v in curve), default=math.nan)
        rows[name] = {"steps": steps, "seconds": round(seconds, 1), "steps_per_s": round(steps / seconds, 3),
                      "best_val_loss": round(best, 4), "seconds_to_target": _time_to(curve, TARGET_LOSS),
                      "curve": [(round(s, 1), round(v, 4)) for s, v in curve]}
    overhead = 1.0 - rows["lightning"]["steps_per_s"] / rows["plain"]["steps_per_s"]
    reached = rows["lightning"]["seconds_to_target"]
    result = {
        "benchmark": "rnn_lm_quality",
        "config": {**model_args, **data_args, "max_steps": max_steps, "val_every": val_every, "clip": clip,
                   "seconds": args.seconds, "chunk": args.chunk, "threads": torch.get_num_threads()},
        "runners": rows,
        "overhead": round(overhead, 4),
        "target_overhead": TARGET_OVERHEAD,
        "target": {"val_loss": TARGET_LOSS, "seconds": TARGET_SECONDS},
        "meets_quality_target": bool(reached is not None and reached <= TARGET_SECONDS),
        "meets_overhead_target": bool(overhead <= TARGET_OVERHEAD),
        "wall_seconds": round(wall, 1),
        "load_average": common.load_average(),
        "machine": common.machine("python", "torch", "lightning", "cpu", "cores"),
    }
    print(f"char-LSTM {model_args['hidden_size']} units, streams {data_args['batch_size']} x {data_args['block_size']}, "
          f"{args.seconds:.0f} s each, interleaved in {args.chunk:.0f} s chunks, {torch.get_num_threads()} threads, "
          f"load average {result['load_average']}")
    print(f"{'runner':<10} {'steps':>6} {'seconds':>8} {'steps/s':>8} {'best val':>9} {'s to <=1.25':>12}")
    for name, r in rows.items():
        print(f"{name:<10} {r['steps']:>6} {r['seconds']:>8.1f} {r['steps_per_s']:>8.3f} {r['best_val_loss']:>9.4f} "
              f"{str(r['seconds_to_target']):>12}")
    print(f"Lightning overhead {100 * overhead:.1f}% (target <= 5%: {'met' if result['meets_overhead_target'] else 'NOT met'}); "
          f"val loss <= {TARGET_LOSS} within {TARGET_SECONDS:.0f} s: {'met' if result['meets_quality_target'] else 'NOT met'}")
    common.write_json(result, args.out)
    from genlab import plots
    from genlab.plots.rnn import loss_vs_time_figure

    curves = {name: ([s for s, _ in r["curve"]], [v for _, v in r["curve"]]) for name, r in rows.items()}
    figure = loss_vs_time_figure(curves, title="char-LSTM: Lightning vs a plain loop (training seconds)")
    plots.save(figure, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return result


if __name__ == "__main__":
    main()
