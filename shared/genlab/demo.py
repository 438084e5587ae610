"""``genlab demo``: train both lab-03 models briefly and write their figures.

The demo runs the same LightningCLI path as ``genlab fit`` with shorter schedules, so what
it shows is what a full run does, only earlier in training.
"""
from __future__ import annotations

import time
from pathlib import Path

# Steps per model: enough for recognisable output in about a minute each on 2 CPU cores.
DEMO_STEPS = {"transformer": 600, "gpt": 400}
# Metrics shown in the closing summary, per model.
SUMMARY_METRICS = {"transformer": ("val_loss", "val_exact_match"), "gpt": ("val_loss",)}


def _train(model: str, out: Path, steps: int):
    from genlab.cli import build_cli

    val_every = max(1, steps // 2)
    return build_cli(
        model,
        [
            "fit",
            f"--trainer.max_steps={steps}",
            f"--trainer.val_check_interval={val_every}",
            f"--trainer.logger.init_args.save_dir={out}",
        ],
    )


def run_demo(out: Path = Path("runs/demo"), steps: int | None = None) -> int:
    """Train every demo model for ``steps`` (default: ``DEMO_STEPS``); print a summary.

    Returns the process exit code (0 on success).
    """
    out = Path(out)
    rows = []
    for model, default_steps in DEMO_STEPS.items():
        n = steps or default_steps
        print(f"\n== genlab demo: {model}, {n} steps ==", flush=True)
        start = time.perf_counter()
        cli = _train(model, out, n)
        seconds = time.perf_counter() - start
        metrics = {k: float(cli.trainer.callback_metrics[k]) for k in SUMMARY_METRICS[model]
                   if k in cli.trainer.callback_metrics}
        figures = sorted((Path(cli.trainer.log_dir) / "figures").glob("*"))
        rows.append((model, n, seconds, metrics, figures))

    print("\n== genlab demo: summary ==")
    for model, n, seconds, metrics, figures in rows:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        print(f"{model:12s} {n:5d} steps  {seconds:6.1f} s  {shown}")
        for path in figures:
            print(f"{'':12s} {path}")
    return 0
