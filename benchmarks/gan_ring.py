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
  work (same nets, losses, noise, smoothing, moving average, data), interleaved in one process;
  the ratio of the medians.

    python benchmarks/gan_ring.py [--seeds 5] [--batches 6000] [--vanilla-batches 1000] [--threads 1]

Prints tables and writes runs/bench/gan_ring.json.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see dates_accuracy.py)

import argparse
import copy
import json
import math
import platform
import statistics
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F

from genlab import training
from genlab.data import RingDataModule
from genlab.metrics.coverage import mode_coverage
from genlab.models.gan import GAN
from genlab.nn.gan import MLPDiscriminator, MLPGenerator, instance_noise_std

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
    trainer = L.Trainer(max_steps=batches * (model.d_steps + 1), logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0, accelerator="cpu", devices=1)
    start, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, datamodule=data)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    cov = model.ring_coverage(data.centers, data.std)
    return {"seed": seed, "batches": batches, "seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            **{k: v for k, v in cov.as_dict().items() if k != "n_samples"}}


def plain_loop(model_args: dict, data_args: dict, batches: int, seed: int) -> float:
    """The reference setup as a plain PyTorch loop; returns seconds per batch."""
    hp = dict(model_args)
    torch.manual_seed(seed)
    data = RingDataModule(**dict(data_args, seed=seed))
    G = MLPGenerator(hp["latent_dim"], 2, hp["hidden"], hp["n_layers"])
    D = MLPDiscriminator(2, hp["hidden"], hp["n_layers"])
    G_avg = copy.deepcopy(G).requires_grad_(False)
    opt_d = torch.optim.Adam(D.parameters(), lr=hp["lr_d"], betas=tuple(hp["betas"]))
    opt_g = torch.optim.Adam(G.parameters(), lr=hp["lr_g"], betas=tuple(hp["betas"]))
    s, loader, step = hp["label_smoothing"], data.train_dataloader(), 0
    start = time.perf_counter()
    while step < batches:
        for real in loader:
            std = instance_noise_std(step, hp["instance_noise"], hp["noise_steps"])
            B = real.shape[0]
            fake = G(torch.randn(B, hp["latent_dim"]))
            r_in, f_in = real + std * torch.randn_like(real), fake.detach() + std * torch.randn_like(fake)
            r, f = D(r_in), D(f_in)
            d_loss = F.binary_cross_entropy_with_logits(r, torch.full_like(r, 1 - s)) + \
                F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            f = D(fake + std * torch.randn_like(fake))
            g_loss = F.binary_cross_entropy_with_logits(f, torch.ones_like(f))
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            with torch.no_grad():
                decay = min(hp["ema_decay"], (1 + 2 * step) / (10 + 2 * step))
                for avg, p in zip(G_avg.parameters(), G.parameters(), strict=True):
                    avg.lerp_(p, 1 - decay)
            step += 1
            if step % 40 == 0:  # as often as the module measures coverage (every epoch)
                with torch.no_grad():
                    mode_coverage(G_avg(torch.randn(hp["eval_samples"], hp["latent_dim"])), data.centers, data.std)
            if step >= batches:
                break
    return (time.perf_counter() - start) / batches


def lightning_per_batch(model_args: dict, data_args: dict, batches: int, seed: int) -> float:
    return train_lightning(model_args, data_args, batches, seed)["seconds"] / batches


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=6000, help="reference run length (default: the config's)")
    parser.add_argument("--vanilla-batches", type=int, default=1000)
    parser.add_argument("--overhead-batches", type=int, default=400)
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

    lit, plain = [], []
    for i in range(args.overhead_repeats):  # interleaved, so both see the same machine load
        lit.append(lightning_per_batch(model_args, data_args, args.overhead_batches, 100 + i))
        plain.append(plain_loop(model_args, data_args, args.overhead_batches, 100 + i))
    ratio = statistics.median(lit) / statistics.median(plain)
    print(f"\nseconds per batch (median of {args.overhead_repeats}, {args.overhead_batches} batches each): Lightning "
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
        "load_average": {"before": load_before, "after": _load()},
        "targets": {"modes": TARGET_MODES, "high_quality": TARGET_HQ, "seconds": TARGET_SECONDS},
        "meets_targets": meets,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count()},
    }
    print(f"targets (8/8 modes on every seed, >= {TARGET_HQ:.0%} high quality, <= {TARGET_SECONDS:.0f} s): "
          f"{'met' if meets else 'NOT met'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
