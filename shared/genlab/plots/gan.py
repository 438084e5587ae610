"""Figures of the GAN lab: ring scatters over the modes, the coverage curve, digit samples,
and the generator's gradient against the discriminator's confidence.

Every function returns a ``matplotlib.figure.Figure`` (no pyplot state) or draws into a given
``ax``; the ``save_*_figures`` writers are the ``figures`` of ``genlab fit gan`` and
``genlab fit gan_digits``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from genlab.metrics.coverage import mode_coverage
from genlab.plots import loss_curves, save

__all__ = [
    "ring_scatter",
    "ring_panels",
    "coverage_curve",
    "digits_grid",
    "gradient_vs_confidence",
    "save_ring_figures",
    "save_digits_figures",
]


def _xy(points, what: str) -> np.ndarray:
    x = torch.as_tensor(points).detach().float().cpu()
    if x.dim() != 2 or x.shape[1] != 2:
        raise ValueError(f"{what} must have shape (N, 2), got {tuple(x.shape)}.")
    return x.numpy()


def ring_scatter(samples, centers, std: float, ax: Axes | None = None, title: str | None = None,
                 real=None, limit: float | None = None) -> Figure:
    """Generated points ``(N, 2)`` over the modes: a dashed 3σ circle per mode, covered modes green.

    ``real`` (optional, ``(M, 2)``) is drawn underneath in grey. The title (default) gives the
    coverage: modes covered, high-quality share and reverse KL.
    """
    pts, c = _xy(samples, "samples"), _xy(centers, "centers")
    cov = mode_coverage(torch.from_numpy(pts), torch.from_numpy(c), std)
    if ax is None:
        fig = Figure(figsize=(4.6, 4.6), layout="constrained")
        ax = fig.add_subplot()
    if real is not None:
        r = _xy(real, "real")
        ax.scatter(r[:, 0], r[:, 1], s=3, c="0.75", alpha=0.5, linewidths=0, label="real")
    ax.scatter(pts[:, 0], pts[:, 1], s=3, c="tab:blue", alpha=0.35, linewidths=0, label="generated")
    for (cx, cy), count in zip(c, cov.counts, strict=True):
        color = "tab:green" if count > 0 else "tab:red"
        ax.add_patch(Circle((cx, cy), 3 * std, fill=False, ls="--", lw=1.0, color=color))
        ax.plot(cx, cy, marker="x", color=color, ms=6, mew=1.5)
    radius = float(np.linalg.norm(c, axis=1).max()) if len(c) else 1.0
    lim = limit if limit is not None else radius * 1.5 + 3 * std
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    kl = "∞" if math.isinf(cov.reverse_kl) else f"{cov.reverse_kl:.2f}"
    summary = f"{cov.modes_covered}/{cov.k} modes, {cov.high_quality:.0%} high quality, KL {kl}"
    ax.set_title(f"{title}\n{summary}" if title else summary, fontsize=9)
    ax.grid(alpha=0.2)
    return ax.figure


def ring_panels(panels: Mapping[str, object], centers, std: float, ncols: int | None = None,
                title: str | None = None, real=None) -> Figure:
    """One ``ring_scatter`` per entry of ``panels`` (``{label: samples (N, 2)}``), side by side."""
    if not panels:
        raise ValueError("ring_panels needs at least one set of samples.")
    n = len(panels)
    ncols = ncols or min(n, 4)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(3.6 * ncols, 3.8 * nrows), layout="constrained")
    for i, (label, samples) in enumerate(panels.items()):
        ring_scatter(samples, centers, std, ax=fig.add_subplot(nrows, ncols, i + 1), title=str(label), real=real)
    if title:
        fig.suptitle(title)
    return fig


def coverage_curve(history: Sequence[Mapping] | Mapping[str, Sequence[Mapping]], k: int | None = None,
                   title: str | None = None) -> Figure:
    """Modes covered (left) and high-quality share (right) against the training step.

    ``history``: a GAN's ``coverage_history`` (rows with ``step``, ``modes_covered``,
    ``high_quality``), or ``{label: history}`` to compare runs.
    """
    runs = history if isinstance(history, Mapping) else {"": history}
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax_modes, ax_hq = fig.subplots(1, 2)
    for label, rows in runs.items():
        rows = list(rows)
        if not rows:
            continue
        steps = [r["step"] for r in rows]
        ax_modes.plot(steps, [r["modes_covered"] for r in rows], marker="o", ms=2, label=label or None)
        ax_hq.plot(steps, [100 * r["high_quality"] for r in rows], marker="o", ms=2, label=label or None)
        k = k or len(rows[-1].get("counts", ())) or None
    if k:
        ax_modes.axhline(k, color="0.5", ls=":", lw=1)
        ax_modes.set_ylim(-0.3, k + 0.5)
    ax_hq.axhline(95, color="0.5", ls=":", lw=1)
    ax_hq.set_ylim(0, 100)
    ax_modes.set_xlabel("optimizer step (D and G both count)")
    ax_hq.set_xlabel("optimizer step (D and G both count)")
    ax_modes.set_ylabel("modes covered")
    ax_hq.set_ylabel("high-quality samples (%)")
    ax_modes.set_title("modes covered (nearest mode of a high-quality sample)", fontsize=9)
    ax_hq.set_title("samples within 3σ of a mode", fontsize=9)
    for ax in (ax_modes, ax_hq):
        ax.grid(alpha=0.3)
        if any(runs):
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def digits_grid(images, nrow: int = 8, title: str | None = None, labels: Sequence[str] | None = None) -> Figure:
    """A grid of grayscale images ``(N, 1, H, W)`` or ``(N, H, W)`` in [0, 1] (white = 1)."""
    x = torch.as_tensor(images).detach().float().cpu()
    if x.dim() == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 3:
        raise ValueError(f"images must have shape (N, 1, H, W) or (N, H, W), got {tuple(x.shape)}.")
    n = x.shape[0]
    ncols = min(nrow, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(1.1 * ncols, 1.1 * nrows + (0.4 if title else 0)), layout="constrained")
    for i in range(nrows * ncols):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.set_axis_off()
        if i < n:
            ax.imshow(x[i].clamp(0, 1).numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def gradient_vs_confidence(d_fake, gradients: Mapping[str, object], title: str | None = None) -> Figure:
    """The generator's gradient magnitude ``|∂loss/∂logit|`` against ``D(G(z))``, one line per loss.

    ``d_fake``: D's probabilities ``(N,)`` that fakes are real, in (0, 1); ``gradients``:
    ``{loss name: |gradient| (N,)}``. A log scale shows how the saturating loss dies near 0.
    """
    p = torch.as_tensor(d_fake).detach().double().cpu().numpy()
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for name, grad in gradients.items():
        g = torch.as_tensor(grad).detach().double().abs().cpu().numpy()
        ax.plot(p, np.maximum(g, 1e-12), label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("D(G(z)): the discriminator's belief that a fake is real")
    ax.set_ylabel("|∂ loss / ∂ logit| (gradient reaching G)")
    ax.axvspan(p.min(), 1e-2, color="0.9", zorder=0)
    ax.text(0.03, 0.6, "early training:\nD rejects the fakes", fontsize=8, transform=ax.transAxes)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title(title or "saturating vs non-saturating generator loss")
    return fig


def save_ring_figures(model, datamodule, out_dir: Path) -> list[Path]:
    """Write ``ring.png`` (samples over the modes), ``coverage.png`` and ``loss.png`` of a ring run."""
    from genlab.models.common import metrics_csv_path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    samples = model.sample(2500, torch.Generator().manual_seed(0))
    real = datamodule.sample(2500, torch.Generator().manual_seed(1))[0]
    fig = ring_scatter(samples, datamodule.centers, datamodule.std, real=real, title="GAN samples on the ring")
    written.append(save(fig, out_dir / "ring.png"))
    if model.coverage_history:
        written.append(save(coverage_curve(model.coverage_history, k=datamodule.k), out_dir / "coverage.png"))
    csv_path = metrics_csv_path(model)
    if csv_path is not None:
        fig = loss_curves(csv_path, keys=["d_loss", "g_loss"], title="GAN losses (D and G)")
        written.append(save(fig, out_dir / "loss.png"))
    return written


def save_digits_figures(model, datamodule, out_dir: Path) -> list[Path]:
    """Write ``samples.png`` (64 generated digits next to 16 real ones) and ``loss.png``."""
    from genlab.models.common import metrics_csv_path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [save(digits_grid(model.sample(64, torch.Generator().manual_seed(0)), title="generated digits"),
                    out_dir / "samples.png")]
    real = torch.stack([datamodule.dataset("val")[i][0] for i in range(16)])
    written.append(save(digits_grid(real, title="real digits"), out_dir / "real.png"))
    csv_path = metrics_csv_path(model)
    if csv_path is not None:
        fig = loss_curves(csv_path, keys=["d_loss", "g_loss"], title="GAN losses (D and G)")
        written.append(save(fig, out_dir / "loss.png"))
    return written
