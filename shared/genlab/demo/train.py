"""The demo's training job: one short ``genlab fit`` run per demo model, and what it reached.

A model joins the demo by declaring ``demo_steps`` (its schedule, in Lightning's optimizer
steps) and ``demo_metrics`` (the logged metrics its summary row shows). Each run goes through
the same LightningCLI path as ``genlab fit`` (same YAML, same step bar, same figure writer),
only with a shorter schedule, a wall-time cap and its own run folder, so what the demo shows
is what a full run does, earlier in training.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from genlab import training

__all__ = ["TrainResult", "demo_models", "select_models", "train_model", "trainer_args"]


@dataclass
class TrainResult:
    """What one demo run reached (``summary.json`` holds a list of these as dicts)."""

    model: str
    steps_planned: int
    steps_done: int
    wall_s: float
    cpu_s: float
    parameters: int
    metrics: dict[str, float]
    run_dir: str
    figures: list[str] = field(default_factory=list)  # paths relative to the demo folder
    stopped_by_time: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def demo_models() -> dict[str, training.Entry]:
    """The registered models that take part in the demo (they declare ``demo_steps``)."""
    return {name: e for name, e in training.registry().items() if getattr(e.model_class, "demo_steps", None)}


def select_models(names: list[str] | None, available: dict[str, training.Entry] | None = None) -> list[str]:
    """The demo models to train: ``names`` in the order given (default: all, by name).

    An unknown or non-demo name raises ``ValueError`` listing the ones that can be chosen.
    """
    available = demo_models() if available is None else available
    if not names:
        return list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"not a demo model: {', '.join(unknown)}; choose from {', '.join(available)} "
                         "(a model joins the demo by declaring demo_steps)")
    return list(dict.fromkeys(names))


def trainer_args(steps: int, out: Path, max_seconds: float | None = None) -> list[str]:
    """The LightningCLI overrides of a demo run: its schedule, its log folder and its time cap.

    A validation runs halfway (``val_check_interval`` counts batches: for a GAN, whose batches
    make two optimizer steps, that is at the end) and the YAML's other settings stay.
    """
    if steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    args = [
        f"--trainer.max_steps={steps}",
        f"--trainer.val_check_interval={max(1, steps // 2)}",
        f"--trainer.logger.init_args.save_dir={out}",
    ]
    if max_seconds is not None:
        if max_seconds <= 0:
            raise ValueError(f"the time cap per model must be positive, got {max_seconds} s")
        hours, rest = divmod(int(math.ceil(max_seconds)), 3600)
        args.append(f"--trainer.max_time=00:{hours:02d}:{rest // 60:02d}:{rest % 60:02d}")  # DD:HH:MM:SS
    return args


def _metrics(trainer, names) -> dict[str, float]:
    found = {}
    for key in names:
        value = trainer.callback_metrics.get(key)
        if value is not None:
            found[key] = float(value)
    return found


def train_model(name: str, out: Path, steps: int | None = None, max_seconds: float | None = None) -> TrainResult:
    """Train the demo model ``name`` into ``out/<name>/version_N`` and draw its figures.

    ``steps`` defaults to the model's ``demo_steps``; ``max_seconds`` stops the run early on a
    slow machine (the result says so).
    """
    from genlab.fit import build_cli, parameter_count

    entry = training.entry(name)
    n = int(steps or entry.model_class.demo_steps)
    out = Path(out)
    wall, cpu = time.perf_counter(), time.process_time()
    cli = build_cli(name, ["fit", *trainer_args(n, out, max_seconds)])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    trainer = cli.trainer
    done = int(trainer.global_step)
    return TrainResult(
        model=name,
        steps_planned=n,
        steps_done=done,
        wall_s=round(wall, 2),
        cpu_s=round(cpu, 2),
        parameters=parameter_count(cli.model),
        metrics=_metrics(trainer, getattr(entry.model_class, "demo_metrics", ())),
        run_dir=_relative(Path(trainer.log_dir), out),
        figures=[_relative(p, out) for p in cli.figures],
        stopped_by_time=done < n and _time_is_up(trainer),
    )


def _time_is_up(trainer) -> bool:
    from lightning.pytorch.callbacks import Timer

    return any(isinstance(c, Timer) and c.time_remaining() is not None and c.time_remaining() <= 0
               for c in trainer.callbacks)


def _relative(path: Path, base: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()
