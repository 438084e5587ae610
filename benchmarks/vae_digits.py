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
import json
import platform
import time
import warnings
from pathlib import Path

import lightning as L
import torch

from genlab import training
from genlab.data import DataUnavailableError, DigitsDataModule
from genlab.models.vae import VAE

OUT = Path("runs/bench/vae_digits.json")
KERAS_MNIST_TRAINING_LOSS = 146.95


def _forever(loader):
    while True:
        yield from loader


class PlainLoop:
    """The same training step without Lightning: binarise, the objective (one-sample negative
    ELBO, ``VAE.objective``), backward, AdamW, the learning-rate schedule's step."""

    def __init__(self, model: VAE, datamodule: DigitsDataModule):
        self.model = model.train()
        config = model.configure_optimizers()
        self.optimizer = config["optimizer"]
        self.scheduler = config["lr_scheduler"]["scheduler"]
        self.batches = _forever(datamodule.train_dataloader())
        self.steps, self.seconds = 0, 0.0

    def run_for(self, seconds: float, max_steps: int) -> None:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds and self.steps < max_steps:
            x = self.model.prepare(next(self.batches)[0])
            loss = self.model.objective(x, beta=self.model.current_beta())
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.steps += 1
        self.seconds += time.perf_counter() - start


class Interleave(L.Callback):
    """Counts Lightning's training time and hands every ``chunk`` seconds to the plain loop."""

    def __init__(self, plain: PlainLoop | None, budget: float, chunk: float, max_steps: int):
        self.plain, self.budget, self.chunk, self.max_steps = plain, budget, chunk, max_steps
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
        elif self.plain is not None and self.seconds >= self._next_switch:
            self.plain.run_for(min(self.chunk, self.budget - self.plain.seconds), self.max_steps)
            self._next_switch += self.chunk
        self._mark = time.perf_counter()


def _trainer(callback: Interleave) -> L.Trainer:
    """Lightning as ``genlab fit vae`` trains (its ``log_every_n_steps``), without validation,
    checkpoints, a logger or a progress bar, so both runners do the same work."""
    return L.Trainer(max_epochs=-1, max_steps=callback.max_steps, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     log_every_n_steps=int(training.load_config("vae")["trainer"]["log_every_n_steps"]),
                     callbacks=[callback], accelerator="cpu", devices=1)


def _row(model: VAE, datamodule, steps: int, seconds: float) -> dict:
    scores = model.evaluate(datamodule.test_dataloader(), seed=0)
    return {"steps": steps, "seconds": round(seconds, 2), "steps_per_s": round(steps / seconds, 1),
            **{f"test_{k}": round(v, 3) for k, v in scores.items()}}


def digits_rows(seconds: float, chunk: float, max_steps: int) -> dict:
    model_args = dict(training.load_config("vae")["model"])
    datamodules = [DigitsDataModule(batch_size=64, seed=0) for _ in range(2)]
    for dm in datamodules:
        dm.setup("fit")
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(VAE(image_shape=datamodules[0].image_shape, **model_args))
    assert all(torch.equal(a, b) for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True))
    plain = PlainLoop(models[1], datamodules[1])
    interleave = Interleave(plain, seconds, chunk, max_steps)
    torch.manual_seed(1)
    _trainer(interleave).fit(models[0], datamodules[0])
    if plain.seconds < seconds:
        plain.run_for(seconds - plain.seconds, max_steps)
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
    interleave = Interleave(None, seconds, seconds, max_steps)
    _trainer(interleave).fit(model, data)
    return {"status": "run", "architecture": "conv", **_row(model, data, interleave.steps, interleave.seconds),
            "keras_training_loss_for_reference": KERAS_MNIST_TRAINING_LOSS}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training time for each runner (default 60)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="step cap for each runner (default: the config's trainer.max_steps)")
    parser.add_argument("--chunk", type=float, default=5.0, help="seconds per interleaved chunk (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--no-mnist", dest="mnist", action="store_false", help="skip the MNIST row")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    training.quiet_lightning()
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    max_steps = args.max_steps or int(training.load_config("vae")["trainer"]["max_steps"])
    load_before = os.getloadavg()
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
        "load_average": {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in os.getloadavg()]},
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "lightning": L.__version__,
                    "cpu": platform.processor() or platform.machine()},
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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
