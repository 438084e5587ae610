"""Mode coverage on the ring of 8: the reference GAN setup against a vanilla (strong-D) one, over
seeds, and Lightning's overhead against a plain PyTorch loop of the same reference setup.

* **Quality.** For each seed, ``GAN`` with the defaults of ``configs/gan.yaml`` (instance noise,
  one-sided label smoothing, averaged generator; 6000 batches) and the vanilla setup (no noise,
  no smoothing, no averaging, 5 D updates per G update at twice D's learning rate; 1000 batches,
  about the same compute). Coverage of 2500 samples (VEEGAN/PacGAN definitions), reported as
  mean ± standard error over the seeds. Target: the reference covers 8/8 modes with >= 95%
  high-quality samples within 120 s on 2 CPU cores. Published: PacGAN2 7.9 modes, 95.6%;
  VEEGAN 8 modes, 52.9%.
* **Overhead.** Seconds per batch of the Lightning module and of a plain loop doing the same
  work (same nets and initial weights, data, losses, instance noise, smoothing, D first then G
  with two Adams, the moving average, the coverage measured after every pass over the data),
  in one process: one ``trainer.fit`` per repeat, which hands every ``--overhead-chunk`` batches
  to the plain loop for as many batches, so load from other processes hits both alike. Set-up
  (``fit``'s start and end) is excluded, as in ``vae_digits.py``; ``log_every_n_steps`` is the
  config's. The ratio of the medians over ``--overhead-repeats`` repeats.

    python benchmarks/gan_ring.py [--seeds 5] [--batches 6000] [--vanilla-batches 1000] [--threads 1]
                                  [--overhead-batches 2000] [--overhead-chunk 100] [--overhead-repeats 3]

Prints tables and writes runs/bench/gan_ring.json.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see dates_accuracy.py)

import argparse
import math
import statistics
import time
from pathlib import Path

import common
import lightning as L
import torch
import torch.nn.functional as F

from genlab import training
from genlab.data import RingDataModule
from genlab.metrics.coverage import mode_coverage
from genlab.models.gan import GAN, NoisyInput
from genlab.nn.gan import instance_noise_std

OUT = Path("runs/bench/gan_ring.json")
TARGET_MODES, TARGET_HQ, TARGET_SECONDS = 8, 0.95, 120.0


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _mean_se(values):
    m = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return m, se


def train_lightning(model_args: dict, data_args: dict, batches: int, seed: int) -> dict:
    """One Lightning run; coverage of 2500 samples (fixed noise) at the end."""
    L.seed_everything(seed, verbose=False)
    data = RingDataModule(**dict(data_args, seed=seed))
    model = GAN(data_dim=data.data_dim, **model_args)
    trainer = common.quiet_trainer(max_steps=batches * (model.d_steps + 1), limit_val_batches=0,
                                   num_sanity_val_steps=0)
    start, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, datamodule=data)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    cov = model.ring_coverage(data.centers, data.std)
    return {"seed": seed, "batches": batches, "seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            **{k: v for k, v in cov.as_dict().items() if k != "n_samples"}}


def _forever(loader):
    while True:
        yield from loader
        yield None  # the end of a pass over the data: the module measures coverage here


class PlainGAN:
    """The reference setup as a plain PyTorch loop, on the nets (and initial weights) of ``model``.

    One batch (``step``): instance noise of the annealed std on D's inputs, D's update on real
    samples (targets ``1 - s``) and detached fakes (targets 0), then G's through the updated
    D (target 1), each with its own Adam; then the moving average of G's weights. After every
    pass over the data, the ring's coverage of ``eval_samples`` samples of the averaged G.
    """

    def __init__(self, model: GAN, data: RingDataModule):
        hp = model.hparams
        self.hp, self.data = hp, data
        self.G, self.G_avg = model.generator, model.generator_ema
        self.D = model.discriminator.inner if isinstance(model.discriminator, NoisyInput) else model.discriminator
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=hp.lr_d, betas=tuple(hp.betas))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=hp.lr_g, betas=tuple(hp.betas))
        self.batches = _forever(data.train_dataloader())
        self.steps, self.seconds = 0, 0.0

    def step(self, real: torch.Tensor) -> None:
        """One batch of real points ``(B, 2)``: D's update, then G's, then the average."""
        hp, s = self.hp, self.hp.label_smoothing
        std = instance_noise_std(self.steps, hp.instance_noise, hp.noise_steps)
        fake = self.G(torch.randn(real.shape[0], hp.latent_dim))
        r = self.D(real + std * torch.randn_like(real))
        f = self.D(fake.detach() + std * torch.randn_like(fake))
        d_loss = F.binary_cross_entropy_with_logits(r, torch.full_like(r, 1 - s)) + \
            F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
        self.opt_d.zero_grad()
        d_loss.backward()
        self.opt_d.step()
        f = self.D(fake + std * torch.randn_like(fake))
        g_loss = F.binary_cross_entropy_with_logits(f, torch.ones_like(f))
        self.opt_g.zero_grad()
        g_loss.backward()
        self.opt_g.step()
        optimizer_steps = 2 * (self.steps + 1)  # what the module's global_step is by now
        if self.G_avg is not None:
            with torch.no_grad():
                decay = min(hp.ema_decay, (1 + optimizer_steps) / (10 + optimizer_steps))
                for avg, p in zip(self.G_avg.parameters(), self.G.parameters(), strict=True):
                    avg.lerp_(p, 1 - decay)
        self.steps += 1

    def coverage(self) -> None:
        """The ring's coverage of ``eval_samples`` samples from the averaged G (fixed noise), as the module's."""
        net = self.G_avg if self.G_avg is not None else self.G
        with torch.no_grad():
            z = torch.randn(self.hp.eval_samples, self.hp.latent_dim, generator=torch.Generator().manual_seed(0))
            mode_coverage(net.eval()(z), self.data.centers, self.data.std)
        net.train()

    def run(self, batches: int) -> None:
        """Train ``batches`` more batches; their time is added to ``seconds``."""
        start, done = time.perf_counter(), 0
        while done < batches:
            real = next(self.batches)
            if real is None:
                self.coverage()
                continue
            self.step(real)
            done += 1
        self.seconds += time.perf_counter() - start


class InterleavedTiming(common.LightningClock):
    """Times Lightning's batches (set-up excluded) and runs the plain loop every ``chunk`` batches."""

    def __init__(self, plain: PlainGAN, batches: int, chunk: int):
        super().__init__()
        self.plain, self.batches, self.chunk = plain, batches, chunk

    def after_batch(self, trainer):
        if self.steps % self.chunk == 0 or self.steps == self.batches:
            self.plain.run(self.steps - self.plain.steps)
        if self.steps >= self.batches:
            trainer.should_stop = True


def overhead_run(model_args: dict, data_args: dict, log_every: int, batches: int, chunk: int,
                 seed: int) -> tuple[float, float]:
    """Seconds per batch ``(lightning, plain)`` of one interleaved run of ``batches`` batches each."""
    L.seed_everything(seed, verbose=False)
    models = [GAN(data_dim=2, **model_args) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    datas = [RingDataModule(**dict(data_args, seed=seed)) for _ in range(2)]
    timing = InterleavedTiming(PlainGAN(models[1], datas[1]), batches, chunk)
    trainer = common.quiet_trainer(max_steps=batches * (models[0].d_steps + 1), limit_val_batches=0,
                                   num_sanity_val_steps=0, log_every_n_steps=log_every, callbacks=[timing])
    trainer.fit(models[0], datamodule=datas[0])
    return timing.seconds / timing.steps, timing.plain.seconds / timing.plain.steps


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=6000, help="reference run length (default: the config's)")
    parser.add_argument("--vanilla-batches", type=int, default=1000)
    parser.add_argument("--overhead-batches", type=int, default=2000, help="batches per runner per repeat")
    parser.add_argument("--overhead-chunk", type=int, default=100, help="batches per interleaved chunk")
    parser.add_argument("--overhead-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    training.quiet_lightning()
    model_args, data_args, _ = training.settings("gan", small=False)
    vanilla_args = dict(model_args, d_steps=5, lr_d=2 * model_args["lr_d"], label_smoothing=0.0,
                        instance_noise=0.0, ema_decay=0.0)
    load_before = _load()
    setups = {"reference": (model_args, args.batches), "vanilla, strong D": (vanilla_args, args.vanilla_batches)}
    runs = {name: [train_lightning(m, data_args, n, seed) for seed in range(args.seeds)]
            for name, (m, n) in setups.items()}

    print(f"Ring of 8 (std {data_args['std']}, radius {data_args['radius']}), {args.seeds} seeds, "
          f"{args.threads} thread(s); load average before: {load_before}, after: {_load()}")
    print(f"{'setup':>18} {'batches':>8} {'modes covered':>16} {'high quality':>16} {'reverse KL':>12} "
          f"{'wall s':>8} {'cpu s':>7}")
    summary = {}
    for name, rows in runs.items():
        (m, mse), (h, hse) = _mean_se([r["modes_covered"] for r in rows]), _mean_se([r["high_quality"] for r in rows])
        k, kse = _mean_se([r["reverse_kl"] for r in rows])
        wall, cpu = statistics.fmean(r["seconds"] for r in rows), statistics.fmean(r["cpu_seconds"] for r in rows)
        summary[name] = {"modes_mean": m, "modes_se": mse, "hq_mean": h, "hq_se": hse, "kl_mean": k, "kl_se": kse,
                         "seconds_mean": wall, "cpu_seconds_mean": cpu}
        print(f"{name:>18} {rows[0]['batches']:>8} {m:>9.2f} ± {mse:4.2f} {100 * h:>9.1f}% ± {100 * hse:3.1f} "
              f"{k:>6.3f} ± {kse:4.3f} {wall:>8.1f} {cpu:>7.1f}")
        for r in rows:
            print(f"{'':>18} seed {r['seed']}: {r['modes_covered']}/8 modes, {100 * r['high_quality']:.1f}% high "
                  f"quality, KL {r['reverse_kl']:.3f}, {r['seconds']:.0f} s")
    print(f"{'published':>18}: PacGAN2 7.9 modes 95.6%; VEEGAN 8 modes 52.9%; vanilla GAN 1 (VEEGAN) or 6.3 (PacGAN)")

    log_every = int(training.load_config("gan")["trainer"]["log_every_n_steps"])
    overhead_load = _load()
    pairs = [overhead_run(model_args, data_args, log_every, args.overhead_batches, args.overhead_chunk, 100 + i)
             for i in range(args.overhead_repeats)]
    lit, plain = [p[0] for p in pairs], [p[1] for p in pairs]
    ratio = statistics.median(lit) / statistics.median(plain)
    print(f"\nseconds per batch (median of {args.overhead_repeats}, {args.overhead_batches} batches each, "
          f"interleaved in chunks of {args.overhead_chunk}; load {overhead_load} -> {_load()}): Lightning "
          f"{1000 * statistics.median(lit):.2f} ms, plain loop {1000 * statistics.median(plain):.2f} ms, "
          f"ratio {ratio:.3f}")

    ref = summary["reference"]
    meets = bool(all(r["modes_covered"] == TARGET_MODES for r in runs["reference"]) and ref["hq_mean"] >= TARGET_HQ
                 and ref["seconds_mean"] <= TARGET_SECONDS)
    result = {
        "benchmark": "gan_ring",
        "config": {"reference": model_args, "vanilla": vanilla_args, "data": data_args, "threads": args.threads},
        "runs": runs,
        "summary": summary,
        "lightning_ms_per_batch": [round(1000 * x, 3) for x in lit],
        "plain_ms_per_batch": [round(1000 * x, 3) for x in plain],
        "lightning_over_plain": round(ratio, 3),
        "overhead": {"batches": args.overhead_batches, "chunk": args.overhead_chunk, "repeats": args.overhead_repeats,
                     "log_every_n_steps": log_every},
        "load_average": {"before": load_before, "after": _load()},
        "targets": {"modes": TARGET_MODES, "high_quality": TARGET_HQ, "seconds": TARGET_SECONDS},
        "meets_targets": meets,
        "machine": common.machine("python", "torch", "cpus"),
    }
    print(f"targets (8/8 modes on every seed, >= {TARGET_HQ:.0%} high quality, <= {TARGET_SECONDS:.0f} s): "
          f"{'met' if meets else 'NOT met'}")
    return common.write_report(result, args.out)


if __name__ == "__main__":
    main()
