"""Figures of the VAE lab: the decoded latent grid, the latent scatter, interpolations, reconstructions.

Images are pixel probabilities in [0, 1], ``(C, H, W)`` with ``C = 1``. Every function
returns a ``matplotlib.figure.Figure`` (no pyplot state) or draws into a given ``ax``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import NormalDist

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from genlab.plots import loss_curves, save

__all__ = [
    "tile",
    "latent_grid_figure",
    "latent_grids_side_by_side",
    "latent_scatter",
    "encode_split",
    "kl_per_dimension_figure",
    "interpolation_figure",
    "reconstructions_figure",
    "pick_digit",
    "typical_index",
    "save_run_figures",
]


def _images(images, what: str) -> np.ndarray:
    x = torch.as_tensor(images).detach().float().cpu()
    if x.dim() >= 3 and x.shape[-3] == 1:
        x = x.squeeze(-3)
    elif x.dim() >= 3 and x.shape[-3] == 3:
        x = x.movedim(-3, -1)
    return x.numpy()


def tile(images, gap: int = 0, fill: float = 0.3) -> np.ndarray:
    """Rows x columns of images ``(R, K, C, H, W)`` -> one picture ``(R*H, K*W)`` (row 0 on top).

    ``gap`` pixels of value ``fill`` separate the cells (grey lines on a ``gray_r`` colour map).
    """
    x = _images(images, "images")
    if x.ndim != 4:
        raise ValueError(f"tile expects images (rows, cols, 1, H, W), got {tuple(torch.as_tensor(images).shape)}.")
    R, K, H, W = x.shape
    out = np.full((R * H + (R - 1) * gap, K * W + (K - 1) * gap), fill, dtype=np.float32)
    for r in range(R):
        for k in range(K):
            out[r * (H + gap): r * (H + gap) + H, k * (W + gap): k * (W + gap) + W] = x[r, k]
    return out


def latent_grid_figure(grid, quantile_range: tuple[float, float] = (0.05, 0.95), title: str | None = None,
                       ax: Axes | None = None, tick_every: int | None = None):
    """Draw ``latent_grid``'s output ``(n, n, 1, H, W)``: cell ``[i, j]`` decodes ``z = (q[j], q[i])``.

    z_1 grows to the right and z_2 upwards; ticks show each coordinate's prior percentile,
    ``linspace(*quantile_range, n)`` (lab 04 computes the latent values themselves).
    Returns the Figure (or ``ax``'s figure).
    """
    g = torch.as_tensor(grid)
    if g.dim() != 5 or g.shape[0] != g.shape[1]:
        raise ValueError(f"grid must be (n, n, C, H, W), got {tuple(g.shape)}.")
    n, H, W = g.shape[0], g.shape[-2], g.shape[-1]
    gap = 1
    picture = tile(g.flip(0), gap=gap)  # row i = z_2 = q[i]; the largest z_2 goes on top
    fig = None
    if ax is None:
        fig = Figure(figsize=(6.2, 6), layout="constrained")
        ax = fig.add_subplot()
    ax.imshow(picture, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    lo, hi = quantile_range
    p = torch.linspace(lo, hi, n).tolist() if n > 1 else [(lo + hi) / 2]
    every = tick_every or max(1, n // 7)
    idx = list(range(0, n, every))
    ax.set_xticks([j * (W + gap) + (W - 1) / 2 for j in idx], [f"{p[j]:.0%}" for j in idx], fontsize=8)
    ax.set_yticks([(n - 1 - i) * (H + gap) + (H - 1) / 2 for i in idx], [f"{p[i]:.0%}" for i in idx], fontsize=8)
    ax.set_xlabel("$z_1$ (prior percentile)")
    ax.set_ylabel("$z_2$ (prior percentile)")
    ax.set_title(title or f"decoded latent grid, {n}x{n} at prior percentiles {lo:.0%}..{hi:.0%}")
    return fig if fig is not None else ax.figure


def latent_grids_side_by_side(grids: Mapping[str, object], quantile_range: tuple[float, float] = (0.05, 0.95),
                              title: str | None = None) -> Figure:
    """Several latent grids in one row, one panel per label (e.g. ``{"β = 0.1": grid, ...}``)."""
    fig = Figure(figsize=(4.2 * len(grids), 4.4), layout="constrained")
    for ax, (label, grid) in zip(fig.subplots(1, len(grids), squeeze=False)[0], grids.items(), strict=True):
        latent_grid_figure(grid, quantile_range, title=label, ax=ax)
    if title:
        fig.suptitle(title)
    return fig


@torch.no_grad()
def encode_split(model, dataset, batch_size: int = 256, return_logvar: bool = False):
    """Posterior means ``(N, L)`` and labels ``(N,)`` of every image of ``dataset`` (items ``(x, y)``).

    With ``return_logvar``: ``(mu, logvar, labels)``.
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    mus, logvars, labels = [], [], []
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    for x, y in loader:
        mu, logvar = model.encode(model.prepare(x.to(device)))
        mus.append(mu.float().cpu())
        logvars.append(logvar.float().cpu())
        labels.append(y)
    model.train(was_training)
    if return_logvar:
        return torch.cat(mus), torch.cat(logvars), torch.cat(labels)
    return torch.cat(mus), torch.cat(labels)


def kl_per_dimension_figure(kl_by_run: Mapping[str, Sequence[float]], title: str | None = None) -> Figure:
    """Bars of the held-out KL of each latent dimension, one group per run (e.g. per β).

    A dimension whose KL is near 0 carries no information about x: its posterior equals the
    prior, the decoder ignores it (posterior collapse when every dimension does so).
    """
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    runs = list(kl_by_run)
    dims = max(len(v) for v in kl_by_run.values())
    width = 0.8 / len(runs)
    for r, label in enumerate(runs):
        values = [float(v) for v in kl_by_run[label]]
        xs = [d - 0.4 + width * (r + 0.5) for d in range(len(values))]
        bars = ax.bar(xs, values, width=width * 0.95, label=label, color=f"C{r}")
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(range(dims), [f"$z_{d + 1}$" for d in range(dims)])
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("mean KL on held-out images (nats)")
    ax.axhline(0.05, color="0.4", ls=":", lw=1)
    ax.legend()
    ax.set_title(title or "KL per latent dimension (near 0: the dimension is unused)")
    return fig


def latent_scatter(mu, labels, title: str | None = None, quantile_range: tuple[float, float] | None = None,
                   ax: Axes | None = None):
    """Posterior means ``mu (N, 2)`` coloured by digit ``labels (N,)``.

    With ``quantile_range`` the square that ``latent_grid`` decodes is drawn dashed.
    """
    m = torch.as_tensor(mu).detach().float().cpu()
    y = torch.as_tensor(labels).detach().cpu()
    if m.dim() != 2 or m.shape[1] != 2:
        raise ValueError(f"latent_scatter draws a 2-D latent space: mu must be (N, 2), got {tuple(m.shape)}.")
    fig = None
    if ax is None:
        fig = Figure(figsize=(6.4, 5.6), layout="constrained")
        ax = fig.add_subplot()
    colours = [f"C{k}" for k in range(10)]
    for digit in sorted(set(y.tolist())):
        sel = y == digit
        ax.scatter(m[sel, 0], m[sel, 1], s=10, color=colours[digit % 10], alpha=0.75, label=str(digit))
        centre = m[sel].median(0).values
        ax.annotate(str(digit), centre.tolist(), fontsize=13, weight="bold", ha="center", va="center",
                    color=colours[digit % 10], bbox=dict(boxstyle="round,pad=0.15", fc="white", alpha=0.7, lw=0))
    if quantile_range is not None:   # the grid's corners: the prior's quantiles at the range's two ends
        lo, hi = (NormalDist().inv_cdf(float(p)) for p in quantile_range)
        ax.add_patch(Rectangle((lo, lo), hi - lo, hi - lo, fill=False, ls="--", lw=1, color="0.3",
                               label="decoded grid"))
    ax.set_xlabel("$z_1$ (posterior mean)")
    ax.set_ylabel("$z_2$ (posterior mean)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    ax.legend(title="digit", fontsize=8, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(title or "held-out images in the latent space")
    return fig if fig is not None else ax.figure


def interpolation_figure(images, title: str | None = None, labels: Sequence[str] | None = None) -> Figure:
    """A row of decoded images ``(steps, 1, H, W)``, e.g. from ``VAE.interpolate``."""
    x = torch.as_tensor(images)
    steps = x.shape[0]
    fig = Figure(figsize=(1.1 * steps, 1.6), layout="constrained")
    for k, ax in enumerate(fig.subplots(1, steps, squeeze=False)[0]):
        ax.imshow(_images(x[k], "image"), cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(labels[k] if labels else f"t={k / max(1, steps - 1):.2f}", fontsize=8)
    fig.suptitle(title or "interpolation between two posterior means")
    return fig


def reconstructions_figure(originals, reconstructions, title: str | None = None) -> Figure:
    """Inputs ``(N, 1, H, W)`` on top, their reconstructions below."""
    a, b = torch.as_tensor(originals), torch.as_tensor(reconstructions)
    if a.shape != b.shape:
        raise ValueError(f"originals {tuple(a.shape)} and reconstructions {tuple(b.shape)} must have the same shape.")
    n = a.shape[0]
    fig = Figure(figsize=(1.0 * n, 2.4), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    for k in range(n):
        for row, (ax, img) in enumerate(((axes[0, k], a[k]), (axes[1, k], b[k]))):
            ax.imshow(_images(img, "image"), cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(("input", "recon.")[row], fontsize=9)
    fig.suptitle(title or "held-out images (top) and their reconstructions from the posterior mean (bottom)")
    return fig


def typical_index(mu, labels, digit: int) -> int:
    """Index of the image of ``digit`` whose posterior mean is nearest its class's median mean."""
    m, y = torch.as_tensor(mu).float(), torch.as_tensor(labels)
    idx = torch.nonzero(y == int(digit)).flatten()
    if idx.numel() == 0:
        raise ValueError(f"no image of digit {digit} among the labels.")
    centre = m[idx].median(0).values
    return int(idx[(m[idx] - centre).norm(dim=1).argmin()])


def pick_digit(dataset, label: int, index: int = 0) -> torch.Tensor:
    """The ``index``-th image of ``dataset`` whose label is ``label``, ``(C, H, W)``."""
    seen = 0
    for i in range(len(dataset)):
        x, y = dataset[i]
        if int(y) == int(label):
            if seen == index:
                return x
            seen += 1
    raise ValueError(f"the dataset has no image number {index} of digit {label}.")


def save_run_figures(model, datamodule, out_dir: str | Path) -> list[Path]:
    """``genlab fit vae``'s figures: loss curves (when logged), the latent grid and the held-out
    scatter (2-D latents only), a 9 -> 8 interpolation and reconstructions. Returns the paths."""
    from genlab.models.common import metrics_csv_path
    from genlab.nn.vae import latent_grid

    out_dir = Path(out_dir)
    written: list[Path] = []
    model = model.eval()
    csv_path = metrics_csv_path(model)
    if csv_path is not None:
        fig = loss_curves(csv_path, keys=["train_loss", "val_loss", "val_nelbo"], title="VAE: negative ELBO (nats/image)")
        written.append(save(fig, out_dir / "loss.png"))
    datamodule.setup("test")
    test = datamodule.dataset("test")
    mu, labels = encode_split(model, test)
    if model.hparams.latent_dim == 2:
        grid = latent_grid(model.decoder, 15, (0.05, 0.95))
        written.append(save(latent_grid_figure(grid), out_dir / "latent_grid.png"))
        written.append(save(latent_scatter(mu, labels, quantile_range=(0.05, 0.95)), out_dir / "latent_scatter.png"))
    device = next(model.parameters()).device
    nine, eight = (test[typical_index(mu, labels, d)][0].to(device) for d in (9, 8))
    path = model.interpolate(nine, eight, steps=10)
    written.append(save(interpolation_figure(path.cpu(), title="from a 9 to an 8 (held-out images)"),
                        out_dir / "interpolation.png"))
    x = torch.stack([test[i][0] for i in range(min(10, len(test)))]).to(device)
    recon = model.reconstruct(x).cpu()
    written.append(save(reconstructions_figure(model.prepare(x).cpu(), recon), out_dir / "reconstructions.png"))
    return written
