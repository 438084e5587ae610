"""``genlab demo``: train every model that declares a demo budget briefly, write its figures.

The demo runs the same LightningCLI path as ``genlab fit`` with shorter schedules, so what it
shows is what a full run does, only earlier in training. A model joins the demo by declaring
``demo_steps`` (and the metrics its summary line shows in ``demo_metrics``).
"""
from __future__ import annotations

import time
from pathlib import Path

from genlab import training


def _train(model: str, out: Path, steps: int):
    from genlab.fit import build_cli

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


def demo_models() -> dict[str, training.Entry]:
    """The registered models that take part in the demo (they declare ``demo_steps``)."""
    return {name: e for name, e in training.registry().items() if getattr(e.model_class, "demo_steps", None)}


def run_demo(out: Path = Path("runs/demo"), steps: int | None = None) -> int:
    """Train every demo model for ``steps`` (default: its ``demo_steps``); print a summary.

    Returns the process exit code (0 on success).
    """
    out = Path(out)
    rows = []
    for name, entry in demo_models().items():
        n = steps or entry.model_class.demo_steps
        print(f"\n== genlab demo: {name}, {n} steps ==", flush=True)
        start = time.perf_counter()
        cli = _train(name, out, n)
        seconds = time.perf_counter() - start
        metrics = {k: float(cli.trainer.callback_metrics[k]) for k in getattr(entry.model_class, "demo_metrics", ())
                   if k in cli.trainer.callback_metrics}
        figures = sorted((Path(cli.trainer.log_dir) / "figures").glob("*"))
        rows.append((name, n, seconds, metrics, figures))

    print("\n== genlab demo: summary ==")
    for name, n, seconds, metrics, figures in rows:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        print(f"{name:12s} {n:5d} steps  {seconds:6.1f} s  {shown}")
        for path in figures:
            print(f"{'':12s} {path}")
    return 0
