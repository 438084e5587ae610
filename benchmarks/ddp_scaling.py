"""GPT under Lightning's DDP with 2 CPU processes against 1 process: same losses, and how fast.

Both runs train the same small GPT (the `genlab fit gpt` model, shrunk: see ``MODEL``) from the
same seed on the same samples. The single process takes a global batch of ``--batch-size``
windows per step; under DDP each of the 2 processes takes half of it (its own contiguous half
of the same global batch), for the same number of steps. DDP averages the gradients of the two
halves, which is the gradient of the whole batch, so the two runs should follow the same loss
trajectory up to float rounding: the script reports the largest absolute difference, between
any two runs, of the global-batch losses (under DDP the mean of the two halves' losses) at each step, i.e. at
matching sample counts, and fails when it exceeds ``--tolerance``.

The windows are drawn once from a fixed generator and split by rank by the script itself
(``use_distributed_sampler=False``), so both runs see exactly the same windows in the same
steps. Each run is its own subprocess (``--worker 1`` or ``--worker 2``); the 2-process run uses
``strategy="ddp"`` (gloo on a CPU), for which Lightning re-launches the same command as rank 1,
exactly as it does for ``genlab fit gpt --trainer.devices=2 --trainer.strategy=ddp``.
The two alternate, ``--rounds`` runs each, and the table shows medians. Throughput is samples/s over the steps after ``--warmup`` (the step loop only: start-up,
process launch and the gloo rendezvous are excluded and reported separately as wall time).

    python benchmarks/ddp_scaling.py [--steps 300] [--batch-size 32] [--warmup 10] [--rounds 2] [--tolerance 1e-3]

Prints a table and writes runs/bench/ddp_scaling.json.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see gpt_lightning_overhead.py)

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path("runs/bench/ddp_scaling.json")
MODEL = dict(n_layer=2, n_head=2, n_embd=64, dropout=0.0, lr=2e-3, warmup_steps=20)
BLOCK_SIZE = 64


def _windows_dataset(ids, block_size: int):
    """(x, y) pairs: the window of ``block_size`` ids starting at ``i`` and the same shifted by one."""
    import torch

    class Windows(torch.utils.data.Dataset):
        def __len__(self):
            return len(ids) - block_size

        def __getitem__(self, i):
            chunk = ids[i:i + block_size + 1]
            return chunk[:-1], chunk[1:]

    return Windows()


def rank_indices(n_windows: int, steps: int, batch_size: int, rank: int, world: int, seed: int = 0) -> list[int]:
    """The window starts rank ``rank`` of ``world`` trains on, in order, ``batch_size // world`` per step.

    Step k's global batch is ``starts[k * batch_size:(k + 1) * batch_size]`` of one fixed draw;
    rank r takes the r-th contiguous slice of it, so the union over ranks is the global batch.
    """
    import torch

    if batch_size % world:
        raise ValueError(f"--batch-size {batch_size} must be divisible by the {world} processes.")
    per = batch_size // world
    starts = torch.randint(n_windows, (steps * batch_size,), generator=torch.Generator().manual_seed(seed)).tolist()
    return [s for k in range(steps) for s in starts[k * batch_size + rank * per:k * batch_size + (rank + 1) * per]]


def worker(world: int, steps: int, batch_size: int, warmup: int, out: Path) -> None:
    """Train with ``world`` processes (1: plain, 2: DDP on the CPU) and have rank 0 write the record."""
    import lightning as L
    import torch
    import torch.distributed as dist

    from genlab import training
    from genlab.data import CharTextDataModule
    from genlab.models import GPT

    training.quiet_lightning()

    class Data(CharTextDataModule):
        """The GPT corpus; each rank's training windows come from ``rank_indices``."""

        def train_dataloader(self):
            ids = self.vocab.encode(self.text("train"))
            windows = _windows_dataset(ids, self.block_size)
            rank, n = self.trainer.global_rank, self.trainer.world_size
            order = rank_indices(len(windows), steps, batch_size, rank, n)
            return torch.utils.data.DataLoader(windows, batch_size=batch_size // n, sampler=order)

    class Record(L.Callback):
        """Per-step losses (averaged over ranks) and step-loop timing, written by rank 0."""

        def __init__(self):
            self.losses, self.t0, self.t_end = [], None, None

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if batch_idx == warmup:
                if dist.is_initialized():
                    dist.barrier()
                self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            loss = outputs["loss"].detach().float().reshape(1)
            if dist.is_initialized():
                dist.all_reduce(loss)
                loss /= dist.get_world_size()
            self.losses.append(float(loss))

        def on_train_end(self, trainer, module):
            if dist.is_initialized():
                dist.barrier()
            self.t_end = time.perf_counter()
            if trainer.global_rank == 0:
                timed = steps - warmup
                out.write_text(json.dumps({
                    "processes": trainer.world_size,
                    "per_process_batch": batch_size // trainer.world_size,
                    "torch_threads_per_process": torch.get_num_threads(),
                    "losses": self.losses,
                    "timed_steps": timed,
                    "step_loop_s": self.t_end - self.t0,
                    "samples_per_s": timed * batch_size / (self.t_end - self.t0),
                }))

    L.seed_everything(0, verbose=False)
    data = Data(block_size=BLOCK_SIZE, batch_size=batch_size)
    model = GPT(vocab_size=data.vocab_size, block_size=data.block_size, **MODEL)
    trainer = L.Trainer(
        accelerator="cpu", devices=world, strategy="ddp" if world > 1 else "auto", max_steps=steps,
        use_distributed_sampler=False, gradient_clip_val=1.0, limit_val_batches=0, num_sanity_val_steps=0,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[Record()],
    )
    trainer.fit(model, datamodule=data)


def launch(world: int, args, tmp: Path) -> dict:
    """Run ``worker(world)`` in a fresh process (Lightning adds rank 1 for DDP); its record plus wall time."""
    out = tmp / f"world{world}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(world), "--steps", str(args.steps),
           "--batch-size", str(args.batch_size), "--warmup", str(args.warmup), "--record", str(out)]
    start = time.perf_counter()
    code = subprocess.call(cmd)
    wall = time.perf_counter() - start
    if code or not out.is_file():
        raise SystemExit(f"the {world}-process run failed (exit {code}); rerun it alone to see why: {' '.join(cmd)}")
    record = json.loads(out.read_text())
    record["wall_s"] = wall
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps in each run (default 300)")
    parser.add_argument("--batch-size", type=int, default=32, help="global batch: windows per step (default 32)")
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the timing (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each (default 2; medians)")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest allowed loss difference (default 1e-3)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--worker", type=int, choices=(1, 2), help=argparse.SUPPRESS)
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 0 <= args.warmup < args.steps:
        parser.error(f"--warmup ({args.warmup}) must be at least 0 and below --steps ({args.steps}).")
    if args.worker:
        worker(args.worker, args.steps, args.batch_size, args.warmup, args.record)
        return 0

    runs: dict[int, list[dict]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):  # alternate, so that load from other processes hits both alike
            for world in runs:
                runs[world].append(launch(world, args, Path(tmp)))
    for record in runs[1] + runs[2]:
        if len(record["losses"]) != args.steps:
            raise SystemExit(f"expected {args.steps} logged losses per run, got {len(record['losses'])} "
                             f"from a {record['processes']}-process run")
    # the largest difference between any two runs (all rounds of both) at each step: same samples there
    diffs = [max(step) - min(step) for step in zip(*(r["losses"] for r in runs[1] + runs[2]), strict=True)]
    max_diff = max(diffs)
    worst = diffs.index(max_diff)
    single, ddp = ({**r[0], **{k: statistics.median(x[k] for x in r) for k in ("samples_per_s", "step_loop_s", "wall_s")},
                    "samples_per_s_each_round": [round(x["samples_per_s"]) for x in r]} for r in (runs[1], runs[2]))
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.2f}",
        "model": dict(MODEL, block_size=BLOCK_SIZE),
        "steps": args.steps, "global_batch": args.batch_size, "warmup_steps": args.warmup, "rounds": args.rounds,
        "same_samples": "same steps and global batch; each DDP process takes half of every batch",
        "single": {k: v for k, v in single.items() if k != "losses"},
        "ddp": {k: v for k, v in ddp.items() if k != "losses"},
        "max_abs_loss_diff": max_diff, "worst_step": worst + 1, "tolerance": args.tolerance,
        "final_loss": {"single": single["losses"][-1], "ddp": ddp["losses"][-1]},
        "speedup_ratio": ddp["samples_per_s"] / single["samples_per_s"],
        "losses": {"single": single["losses"], "ddp": ddp["losses"]},
    }
    rows = [("", "1 process", "DDP, 2 processes")]
    for label, key, fmt in [("per-process batch", "per_process_batch", "{}"),
                            ("torch threads per process", "torch_threads_per_process", "{}"),
                            ("samples/s (step loop)", "samples_per_s", "{:,.0f}"),
                            ("step loop time", "step_loop_s", "{:.1f} s"), ("wall time incl. start-up", "wall_s", "{:.1f} s")]:
        rows.append((label, fmt.format(single[key]), fmt.format(ddp[key])))
    rows.append(("final train loss", f"{single['losses'][-1]:.4f}", f"{ddp['losses'][-1]:.4f}"))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)))
    print(f"samples/s in each round: 1 process {single['samples_per_s_each_round']}, "
          f"DDP {ddp['samples_per_s_each_round']}")
    print(f"max |loss difference| over {args.steps} steps ({args.batch_size} samples each): {max_diff:.2e} "
          f"at step {worst + 1} (tolerance {args.tolerance:g})")
    print(f"DDP throughput / single-process throughput: {result['speedup_ratio']:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    if max_diff > args.tolerance:
        print(f"FAIL: the DDP loss trajectory differs from the single-process one by {max_diff:.2e} > "
              f"{args.tolerance:g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
