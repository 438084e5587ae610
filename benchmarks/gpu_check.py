"""`make gpu-check`: everything that needs a CUDA GPU, in one go, within about 8 minutes.

1. **GPU unit tests**: ``python -m pytest -m gpu tests`` (the tests marked ``gpu``, which
   ``tests/conftest.py`` skips without CUDA); counts from its JUnit XML.
2. **Hidden GPU tests of the labs**: ``genlab grade LAB solutions/LAB/*.ipynb`` for every lab,
   all labs at once. With CUDA the grader runs the hidden ``gpu`` tests too, so each
   solution must score full marks with **no pending GPU points** (``not_run`` tests).
3. **16-mixed against 32-true** for each model (gpt, transformer, seq2seq, rnn_lm, vae, gan):
   each registered model is built from its `genlab fit` YAML defaults and trained for
   ``--steps`` steps by Lightning with ``precision="16-mixed"`` (``torch.autocast`` float16 plus
   ``torch.amp.GradScaler``) and with ``"32-true"``; median step time (synchronised), peak
   ``torch.cuda.max_memory_allocated`` and whether every loss was finite.

Steps 1 and 2 run side by side; step 3 runs alone afterwards so its timings see a quiet GPU,
and drops the models it has no time left for (the JSON says which). Without CUDA the script
prints one line and exits 0. ``precision_run`` also runs on a CPU (``bf16-mixed`` or
``32-true``), which is how tests/benchmarks/test_gpu_check.py checks it without a GPU.

    python benchmarks/gpu_check.py [--steps 30] [--budget 480] [--models gpt vae ...] [--skip-tests]

Prints a table and writes runs/bench/gpu_check.json; exits 1 when any check failed.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see gpt_lightning_overhead.py)

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path("runs/bench/gpu_check.json")
MODELS = ("gpt", "transformer", "seq2seq", "rnn_lm", "vae", "gan")
WARMUP = 5
NO_CUDA = "gpu_check: no CUDA GPU here (torch.cuda.is_available() is False); nothing to check, exiting."


def precision_run(name: str, device: str, precision: str, steps: int) -> dict:
    """Train model ``name`` (its YAML defaults) for ``steps`` batches on ``device`` at ``precision``.

    ``device`` is ``"cuda"`` or ``"cpu"``; ``precision`` a Lightning precision such as
    ``"16-mixed"`` (CUDA only), ``"bf16-mixed"`` or ``"32-true"``. Returns the median step time
    after the first ``WARMUP`` steps (all steps when there are fewer), the peak CUDA memory in
    bytes (None on a CPU), the losses (one dict a step: ``{"loss": ...}``, or for a model that
    optimises by hand, the ``*loss`` figures it logged, e.g. ``d_loss`` and ``g_loss``) and
    whether all of them are finite.
    """
    import lightning as L
    import torch

    from genlab import training

    if device not in ("cuda", "cpu"):
        raise ValueError(f"device must be 'cuda' or 'cpu', got {device!r}.")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' but torch.cuda.is_available() is False; use device='cpu'.")
    cuda = device == "cuda"
    training.quiet_lightning()
    entry = training.entry(name)
    model_args, data_args, trainer_args = training.settings(name, small=False)
    L.seed_everything(0, verbose=False)
    data = entry.datamodule_class(**data_args)
    for attr in getattr(entry.model_class, "linked_from_data", ()):
        model_args[attr] = getattr(data, attr)
    model = entry.model_class(**model_args)

    class StepTimer(L.Callback):
        def __init__(self):
            self.times, self.losses, self.start = [], [], 0.0

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if cuda:
                torch.cuda.synchronize()
            self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if cuda:
                torch.cuda.synchronize()
            self.times.append(time.perf_counter() - self.start)
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            if loss is not None:
                self.losses.append({"loss": float(loss)})
            else:  # manual optimisation (the GANs) returns nothing: the losses it logged this step
                logged = {k: float(v) for k, v in trainer.callback_metrics.items() if k.endswith("loss")}
                if not logged:
                    raise RuntimeError(f"{name}: the training step returned no loss and logged none (*loss).")
                self.losses.append(logged)
            if len(self.times) >= steps:  # count batches: a GAN's optimizer steps come two a batch
                trainer.should_stop = True

    timer = StepTimer()
    keep = ("gradient_clip_val", "gradient_clip_algorithm", "accumulate_grad_batches")
    trainer = L.Trainer(accelerator="gpu" if cuda else "cpu", devices=1, precision=precision, max_steps=-1, max_epochs=10_000,
                        limit_val_batches=0, num_sanity_val_steps=0, log_every_n_steps=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
                        **{k: v for k, v in trainer_args.items() if k in keep})
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(model, datamodule=data)
    if len(timer.times) != steps:
        raise RuntimeError(f"{name} at {precision}: {len(timer.times)} steps ran, {steps} expected.")
    timed = timer.times[WARMUP:] or timer.times
    return {
        "median_step_s": statistics.median(timed),
        "peak_memory_bytes": torch.cuda.max_memory_allocated() if cuda else None,
        "losses": timer.losses,
        "losses_finite": all(math.isfinite(x) for step in timer.losses for x in step.values()),
    }


def junit_counts(path: Path) -> dict:
    """tests, failures, errors and skipped from pytest's JUnit XML (all zero when it is missing)."""
    if not path.is_file():
        return {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    return {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}


def grade_summary(out_dir: Path) -> dict:
    """Score, maximum, pending GPU points and the tests that did not pass, from each result.json."""
    from autograder.runner.results import SubmissionResult

    found = sorted(out_dir.glob("*/result.json"))
    if not found:
        return {"ok": False, "problem": f"no */result.json under {out_dir}: the grader wrote no result"}
    summary = {"ok": True, "submissions": {}}
    for path in found:
        r = SubmissionResult.from_json(path.read_text(encoding="utf-8"))
        bad = [t.name for t in r.tests if t.status != "passed"]
        summary["submissions"][r.student] = {"score": r.score, "max_score": r.max_score,
                                             "pending_gpu_points": r.pending_points, "not_passed": bad,
                                             "error": r.error}
        summary["ok"] &= not bad and not r.error and r.pending_points == 0
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="training steps per model and precision (default 30)")
    parser.add_argument("--budget", type=float, default=480, help="seconds for the whole check (default 480)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), help=f"default: {' '.join(MODELS)}")
    parser.add_argument("--skip-tests", action="store_true", help="only the precision benchmark")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    start = time.perf_counter()
    report: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "steps": args.steps}
    tmp = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    jobs = {}
    if not args.skip_tests:
        jobs["pytest_gpu"] = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "tests", f"--junitxml={tmp / 'gpu.xml'}"],
            cwd=ROOT, stdout=open(tmp / "pytest.log", "w"), stderr=subprocess.STDOUT)
        for lab in sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir()):
            notebooks = sorted(str(p) for p in (ROOT / "solutions" / lab).glob("*.ipynb"))
            jobs[lab] = subprocess.Popen(
                [sys.executable, "-m", "genlab", "grade", lab, *notebooks, "--out", str(tmp / lab), "--force"],
                cwd=ROOT, stdout=open(tmp / f"{lab}.log", "w"), stderr=subprocess.STDOUT)
    for name, job in jobs.items():
        try:
            code = job.wait(timeout=max(1.0, args.budget * 0.6 - (time.perf_counter() - start)))
        except subprocess.TimeoutExpired:
            job.kill()
            code = "timed out"
        log = tmp / ("pytest.log" if name == "pytest_gpu" else f"{name}.log")
        entry = {"exit": code, "log_tail": log.read_text(errors="replace")[-1500:]}
        if name == "pytest_gpu":
            entry.update(junit_counts(tmp / "gpu.xml"))
            entry["ok"] = code == 0 and entry["tests"] > 0
        else:
            entry.update(grade_summary(tmp / name))
            entry["ok"] = entry["ok"] and code == 0
        report[name] = entry

    precision: dict = {}
    for name in args.models:
        if time.perf_counter() - start > args.budget - 30:
            precision[name] = {"skipped": "out of time (--budget)"}
            continue
        runs = {p: precision_run(name, "cuda", p, args.steps) for p in ("32-true", "16-mixed")}
        a, b = runs["32-true"], runs["16-mixed"]
        precision[name] = {**{p: {k: v for k, v in r.items() if k != "losses"} for p, r in runs.items()},
                           "speedup_ratio": a["median_step_s"] / b["median_step_s"],
                           "memory_ratio": b["peak_memory_bytes"] / a["peak_memory_bytes"],
                           "ok": a["losses_finite"] and b["losses_finite"]}
    report["precision"] = precision
    report["wall_s"] = time.perf_counter() - start

    print(f"device: {report['device']}, {report['wall_s']:.0f} s")
    for name in jobs:
        r = report[name]
        detail = (f"{r['tests']} tests, {r['failures']} failed, {r['errors']} errors, {r['skipped']} skipped"
                  if name == "pytest_gpu" else
                  "; ".join(f"{s}: {v['score']:g}/{v['max_score']:g}, pending GPU {v['pending_gpu_points']:g}"
                            + (f", not passed {v['not_passed']}" if v["not_passed"] else "")
                            for s, v in r.get("submissions", {}).items()) or r.get("problem", ""))
        print(f"{name:<16} {'ok' if r['ok'] else 'FAIL'}  exit {r['exit']}  {detail}")
    print(f"{'model':<12} {'32-true step':>13} {'16-mixed step':>14} {'speed-up':>9} {'32-true MiB':>12} "
          f"{'16-mixed MiB':>13} finite")
    for name, r in precision.items():
        if "skipped" in r:
            print(f"{name:<12} skipped: {r['skipped']}")
            continue
        a, b = r["32-true"], r["16-mixed"]
        print(f"{name:<12} {a['median_step_s'] * 1e3:>10.2f} ms {b['median_step_s'] * 1e3:>11.2f} ms "
              f"{r['speedup_ratio']:>8.2f}x {a['peak_memory_bytes'] / 2**20:>12.1f} {b['peak_memory_bytes'] / 2**20:>13.1f} "
              f"{r['ok']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out} (logs in {tmp})")
    failed = [n for n in jobs if not report[n]["ok"]] + [n for n, r in precision.items() if not r.get("ok", True)]
    if failed:
        print(f"FAIL: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
