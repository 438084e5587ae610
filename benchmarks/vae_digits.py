"""The VAE's held-out negative ELBO after a fixed training budget: Lightning against a plain loop.

The same VAE (the `genlab fit vae` defaults: 2-D latent, MLP 64-256-128-2, Bernoulli pixels
thresholded at 0.5, AdamW lr 1e-3, batch 64; same initial weights, same batch order) is trained
by ``lightning.Trainer`` and by a plain PyTorch loop in one process. The two are interleaved in
chunks (Lightning runs a chunk, then a callback runs the plain loop for the same time), so load
from other processes hits both alike. Each trains for the default config's ``max_steps`` (4000)
or ``--seconds`` of training time (setup excluded), whichever comes first; both are then scored
on the held-out test split (negative ELBO in nats per image, one posterior
sample per image from a fixed generator, and bits per pixel).

With ``--mnist`` (on by default) the same is done once more, Lightning only, for the
convolutional pair on MNIST when its files are already on disk (it is never downloaded here);
otherwise that row says "not run". Keras's 2-D VAE example reports 146.95 on MNIST: a
*training* loss on grey pixels, not a held-out bound, so the two are not the same quantity.

    python benchmarks/vae_digits.py [--seconds 60] [--max-steps 4000] [--chunk 5] [--threads N] [--no-mnist]

Prints a table and writes runs/bench/vae_digits.json.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see gpt_lightning_overhead.py)

import argparse
import time
from pathlib import Path

import common
import lightning as L
import torch

from genlab import training
from genlab.data import DataUnavailableError, DigitsDataModule
from genlab.models.vae import VAE

OUT = Path("runs/bench/vae_digits.json")
KERAS_MNIST_TRAINING_LOSS = 146.95


def plain_loop(model: VAE, datamodule: DigitsDataModule, max_steps: int) -> common.PlainLoop:
    """The same training step without Lightning: binarise, the objective (one-sample negative
    ELBO, ``VAE.objective``), backward, AdamW, the learning-rate schedule's step."""
    return common.PlainLoop(model, *common.optimizer_and_scheduler(model),
                            lambda batch: model.objective(model.prepare(batch[0]), beta=model.current_beta()),
                            common.forever(datamodule.train_dataloader()), max_steps=max_steps)


def _trainer(callback: common.Interleave, max_steps: int) -> L.Trainer:
    """Lightning as ``genlab fit vae`` trains (its ``log_every_n_steps``), without validation,
    checkpoints, a logger or a progress bar, so both runners do the same work."""
    return common.quiet_trainer(max_epochs=-1, max_steps=max_steps, limit_val_batches=0, num_sanity_val_steps=0,
                                log_every_n_steps=int(training.load_config("vae")["trainer"]["log_every_n_steps"]),
                                callbacks=[callback])


def _row(model: VAE, datamodule, steps: int, seconds: float) -> dict:
    scores = model.evaluate(datamodule.test_dataloader(), seed=0)
    return {"steps": steps, "seconds": round(seconds, 2), "steps_per_s": round(steps / seconds, 1),
            **{f"test_{k}": round(v, 3) for k, v in scores.items()}}


def digits_rows(seconds: float, chunk: float, max_steps: int) -> dict:
    model_args = dict(training.load_config("vae")["model"])
    datamodules = common.set_up(lambda: DigitsDataModule(batch_size=64, seed=0))
    models = common.twins(lambda: VAE(image_shape=datamodules[0].image_shape, **model_args))
    plain = plain_loop(models[1], datamodules[1], max_steps)
    interleave = common.Interleave([plain], seconds, chunk)
    torch.manual_seed(1)
    _trainer(interleave, max_steps).fit(models[0], datamodules[0])
    interleave.finish()
    return {"lightning": _row(models[0], datamodules[0], interleave.steps, interleave.seconds),
            "plain": _row(models[1], datamodules[0], plain.steps, plain.seconds)}


def mnist_row(seconds: float, max_steps: int) -> dict:
    data = DigitsDataModule(source="mnist", batch_size=128, seed=0, download=False)
    try:
        data.setup("fit")
    except DataUnavailableError as err:
        return {"status": "not run", "reason": str(err).split(". ")[0]}
    model_args = {**training.load_config("vae")["model"], "architecture": "conv"}
    torch.manual_seed(0)
    model = VAE(image_shape=data.image_shape, **model_args)
    clock = common.Interleave([], seconds, seconds)  # no plain loop: only the clock and the time budget
    _trainer(clock, max_steps).fit(model, data)
    return {"status": "run", "architecture": "conv", **_row(model, data, clock.steps, clock.seconds),
            "keras_training_loss_for_reference": KERAS_MNIST_TRAINING_LOSS}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training time for each runner (default 60)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="step cap for each runner (default: the config's trainer.max_steps)")
    parser.add_argument("--chunk", type=float, default=5.0, help="seconds per interleaved chunk (default 5)")
    parser.add_argument("--no-mnist", dest="mnist", action="store_false", help="skip the MNIST row")
    args = common.parse(parser, argv, OUT)
    training.quiet_lightning()
    max_steps = args.max_steps or int(training.load_config("vae")["trainer"]["max_steps"])
    load_before = common.load_average()
    wall = time.perf_counter()
    rows = digits_rows(args.seconds, args.chunk, max_steps)
    mnist = mnist_row(args.seconds, 10 * max_steps) if args.mnist else {"status": "not run", "reason": "--no-mnist"}
    wall = time.perf_counter() - wall
    ratio = rows["lightning"]["steps_per_s"] / rows["plain"]["steps_per_s"]
    result = {
        "benchmark": "vae_digits",
        "config": {**training.load_config("vae")["model"], "batch_size": 64, "seconds": args.seconds,
                   "max_steps": max_steps, "chunk": args.chunk, "threads": torch.get_num_threads()},
        "digits": rows,
        "lightning_over_plain_throughput": round(ratio, 3),
        "mnist": mnist,
        "wall_seconds": round(wall, 1),
        "load_average": {"before": load_before, "after": common.load_average()},
        "machine": common.machine("python", "torch", "lightning", "cpu"),
    }
    print(f"VAE, 2-D latent, 8x8 digits (binary pixels), batch 64, {max_steps} steps or {args.seconds:.0f} s each, "
          f"interleaved in {args.chunk:.0f} s chunks, {torch.get_num_threads()} threads")
    print(f"{'runner':<10} {'steps':>7} {'seconds':>8} {'steps/s':>8} {'test -ELBO':>11} {'bits/pixel':>11} {'recon':>7} {'KL':>6}")
    for name, r in rows.items():
        print(f"{name:<10} {r['steps']:>7} {r['seconds']:>8.1f} {r['steps_per_s']:>8.1f} {r['test_nelbo']:>11.2f} {r['test_bpd']:>11.3f} "
              f"{r['test_recon']:>7.2f} {r['test_kl']:>6.2f}")
    print(f"lightning/plain throughput = {ratio:.3f}")
    if mnist["status"] == "run":
        print(f"MNIST (conv, {args.seconds:.0f} s, {mnist['steps']} steps): test -ELBO {mnist['test_nelbo']:.2f} nats "
              f"({mnist['test_bpd']:.3f} bits/pixel); Keras's 146.95 is a training loss on grey pixels")
    else:
        print(f"MNIST: not run ({mnist['reason']})")
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    return common.write_report(result, args.out)


if __name__ == "__main__":
    main()
