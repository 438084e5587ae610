"""Figures for the labs and ``genlab fit``: attention heatmaps and loss curves (Hangul-ready).

Everything builds ``matplotlib.figure.Figure`` objects directly (no pyplot state), so it
works without a display (Agg) and inside notebooks (a returned Figure displays inline).
"""
from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from genlab.plots.fonts import use_hangul_font

use_hangul_font()  # Korean labels render as Hangul in every genlab figure

__all__ = ["attention_heatmap", "attention_heads_grid", "loss_curves", "read_metrics_csv", "save", "save_run_loss"]


def _as_2d(weights, name: str = "weights"):
    w = torch.as_tensor(weights).detach().float().cpu()
    if w.dim() != 2:
        raise ValueError(f"{name} must have shape (T_q, T_k), got {tuple(w.shape)}; pick one example and head.")
    return w.numpy()


def _label(token) -> str:
    """A tick label: escapes shown (newline as \\n), a space as the open-box sign."""
    return "\u2423" if token == " " else repr(str(token))[1:-1]


def _draw(ax: Axes, w, x_labels, y_labels, title, xlabel="key (attended to)", ylabel="query") -> None:
    image = ax.imshow(w, cmap="viridis", vmin=0.0, vmax=max(float(w.max()), 1e-8), aspect="auto")
    if x_labels is not None:
        ax.set_xticks(range(len(x_labels)), [_label(t) for t in x_labels], rotation=90, fontsize=7)
    if y_labels is not None:
        ax.set_yticks(range(len(y_labels)), [_label(t) for t in y_labels], fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)


def attention_heatmap(
    weights,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = "key (attended to)",
    ylabel: str = "query",
) -> Figure:
    """Heatmap of one attention matrix ``weights (T_q, T_k)``; rows are queries.

    x_labels label the keys (``T_k``), y_labels the queries (``T_q``); xlabel/ylabel name
    the axes. Draws on ``ax`` if given, else on a new figure. Returns the figure.
    """
    w = _as_2d(weights)
    for labels, n, axis in ((x_labels, w.shape[1], "x_labels (keys)"), (y_labels, w.shape[0], "y_labels (queries)")):
        if labels is not None and len(labels) != n:
            raise ValueError(f"attention_heatmap: {axis} has {len(labels)} labels for {n} positions.")
    if ax is None:
        size = max(4.0, 0.22 * max(w.shape) + 1.5)
        fig = Figure(figsize=(size, size))
        ax = fig.add_subplot()
    _draw(ax, w, x_labels, y_labels, title, xlabel, ylabel)
    return ax.figure


def attention_heads_grid(weights, tokens: Sequence[str] | None = None, ncols: int | None = None, title: str | None = None) -> Figure:
    """One heatmap per head: ``weights (H, T_q, T_k)``; tokens label both axes when T_q == T_k.

    Returns the figure.
    """
    w = torch.as_tensor(weights).detach().float().cpu()
    if w.dim() != 3:
        raise ValueError(f"attention_heads_grid: weights must have shape (H, T_q, T_k), got {tuple(w.shape)}.")
    H = w.shape[0]
    ncols = ncols or math.ceil(math.sqrt(H))
    nrows = math.ceil(H / ncols)
    cell = max(3.0, 0.16 * max(w.shape[1:]) + 1.0)
    fig = Figure(figsize=(cell * ncols, cell * nrows), layout="constrained")
    labels_q = tokens if tokens is not None and len(tokens) == w.shape[1] else None
    labels_k = tokens if tokens is not None and len(tokens) == w.shape[2] else None
    for h in range(H):
        ax = fig.add_subplot(nrows, ncols, h + 1)
        _draw(ax, w[h].numpy(), labels_k, labels_q, f"head {h}")
    if title:
        fig.suptitle(title)
    return fig


def read_metrics_csv(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Read a Lightning ``CSVLogger`` ``metrics.csv``: ``{metric: [(step, value), ...]}``.

    Empty cells (metrics logged on other rows) are skipped; non-numeric columns ignored.
    """
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="") as f:
        for index, row in enumerate(csv.DictReader(f)):
            step = row.get("step")
            try:
                step_i = int(float(step)) if step not in (None, "") else index
            except ValueError:
                step_i = index
            for key, value in row.items():
                if key in ("step", "epoch") or value in (None, ""):
                    continue
                try:
                    series.setdefault(key, []).append((step_i, float(value)))
                except ValueError:
                    pass
    return series


def loss_curves(metrics: str | Path | Mapping[str, Sequence], keys: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """Plot loss-like metrics against the training step.

    metrics: a path to a CSVLogger ``metrics.csv``, or a dict ``{name: values}`` where values
    are numbers (plotted against their index) or ``(step, value)`` pairs. keys: which
    metrics to draw (default: every name containing "loss"). Returns the figure.
    """
    if isinstance(metrics, (str, Path)):
        metrics = read_metrics_csv(metrics)
    if keys is None:
        keys = sorted(k for k in metrics if "loss" in k) or sorted(metrics)
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for key in keys:
        values = list(metrics.get(key, []))
        if not values:
            continue
        if isinstance(values[0], (tuple, list)):
            steps, ys = zip(*values, strict=True)
        else:
            steps, ys = range(len(values)), values
        ax.plot(steps, ys, label=key, marker="o" if len(ys) < 30 else None, markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend()
    if title:
        ax.set_title(title)
    return fig


def save(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def save_run_loss(model, out_dir: str | Path, title: str, keys: Sequence[str] = ("train_loss", "val_loss")) -> list[Path]:
    """``out_dir/loss.png`` from the CSV log of the run ``model`` was trained in; ``[]`` without one."""
    from genlab.models.common import metrics_csv_path

    csv_path = metrics_csv_path(model)
    if csv_path is None:
        return []
    return [save(loss_curves(csv_path, keys=list(keys), title=title), Path(out_dir) / "loss.png")]
