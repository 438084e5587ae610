"""Figures of lab 00: float formats as pictures, the gaps of the number line, Adam's bias
correction, where float16 updates survive, and training runs in three precisions.

Every function returns a ``matplotlib.figure.Figure`` (no pyplot state): it displays inline
in a notebook and saves with ``genlab.plots.save``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from genlab.precision import PrecisionRun, bit_fields, float_format, spacing, stored_value

__all__ = ["bit_layout", "spacing_figure", "number_line", "bias_correction_figure", "survival_map",
           "precision_runs"]

FIELD_COLOURS = {"sign": "#e377c2", "exponent": "#1f77b4", "mantissa": "#2ca02c"}
DTYPE_COLOURS = {torch.float16: "#d62728", torch.bfloat16: "#ff7f0e", torch.float32: "#1f77b4",
                 torch.float64: "#7f7f7f"}


def bit_layout(values: Sequence[float], dtypes: Sequence[torch.dtype] = (torch.float16, torch.bfloat16, torch.float32),
               title: str | None = "how a number is stored: sign | exponent | mantissa") -> Figure:
    """One row of boxes per (value, dtype): the stored bits, coloured by field.

    Each row is labelled with the value asked for and the value the format actually keeps.
    """
    rows = [(v, d) for v in values for d in dtypes]
    width = max(float_format(d).bits for d in dtypes)
    fig = Figure(figsize=(min(16, 3.5 + 0.33 * width), 0.55 * len(rows) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    for r, (value, dtype) in enumerate(rows):
        y = len(rows) - 1 - r
        fields = dict(zip(("sign", "exponent", "mantissa"), bit_fields(value, dtype), strict=False))
        x = 0
        for name, bits in fields.items():
            for bit in bits:
                ax.add_patch(Rectangle((x, y + 0.1), 0.95, 0.8, color=FIELD_COLOURS[name], alpha=0.85 if bit == "1" else 0.25))
                ax.text(x + 0.47, y + 0.5, bit, ha="center", va="center", fontsize=7)
                x += 1
        kept = stored_value(value, dtype)
        ax.text(-0.5, y + 0.5, f"{value:.6g} as {str(dtype).replace('torch.', '')}", ha="right", va="center", fontsize=8)
        ax.text(x + 0.5, y + 0.5, f"keeps {kept:.8g}", ha="left", va="center", fontsize=8)
    ax.set_xlim(-14, width + 9)
    ax.set_ylim(-0.3, len(rows) + 0.2)
    ax.set_yticks([])
    ax.set_xlabel("bit position (most significant first)")
    for name, colour in FIELD_COLOURS.items():
        ax.bar(0, 0, color=colour, label=name)
    ax.legend(loc="upper right", fontsize=8, ncols=3)
    if title:
        ax.set_title(title)
    return fig


def spacing_figure(dtypes: Sequence[torch.dtype] = (torch.float16, torch.bfloat16, torch.float32),
                   updates: Sequence[float] = (1e-4, 1e-6, 1e-8), lo: float = 1e-9, hi: float = 6e4) -> Figure:
    """The smallest update that changes a weight (half the gap to its neighbour) against |weight|.

    Log-log axes. Horizontal lines mark update sizes: at weights where a format's curve lies
    above a line, that update is lost. float16's subnormal range and its underflow floor
    (half the smallest subnormal) are marked.
    """
    w = torch.logspace(math.log10(lo), math.log10(hi), 2000, dtype=torch.float64)
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.add_subplot()
    for dtype in dtypes:
        fmt = float_format(dtype)
        ok = w <= fmt.max
        half_gap = spacing(w[ok], dtype) / 2
        ax.step(w[ok].numpy(), half_gap.numpy(), where="post", color=DTYPE_COLOURS.get(dtype), label=fmt.name)
    f16 = float_format(torch.float16)
    ax.axvspan(lo, f16.smallest_normal, color=DTYPE_COLOURS[torch.float16], alpha=0.07,
               label="float16 subnormals (|w| < 6.1e-5)")
    for u in updates:
        ax.axhline(u, color="black", lw=0.8, ls="--")
        ax.text(lo * 1.5, u * 1.15, f"update {u:g}", fontsize=8)
    ax.axhline(f16.underflow_below, color=DTYPE_COLOURS[torch.float16], lw=0.8, ls=":")
    ax.text(hi / 3, f16.underflow_below * 1.15, "float16: updates below\nthis round to 0", fontsize=8, ha="right")
    ax.set(xscale="log", yscale="log", xlabel="|weight|", ylabel="smallest update that changes it (half the gap)",
           title="an update survives only above its format's curve")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def number_line(start: float = 0.985, stop: float = 1.025,
                dtypes: Sequence[torch.dtype] = (torch.float16, torch.bfloat16)) -> Figure:
    """Every representable number of each format between ``start`` and ``stop`` as a tick."""
    fig = Figure(figsize=(10, 1.2 + 0.7 * len(dtypes)), layout="constrained")
    ax = fig.add_subplot()
    for row, dtype in enumerate(dtypes):
        x = torch.tensor(start, dtype=torch.float64).to(dtype)
        ticks = []
        top = torch.tensor(math.inf, dtype=dtype)
        while float(x) <= stop and len(ticks) < 5000:
            if float(x) >= start:
                ticks.append(float(x))
            x = torch.nextafter(x, top)
        ax.vlines(ticks, row - 0.3, row + 0.3, color=DTYPE_COLOURS.get(dtype), lw=1)
        ax.text(stop, row, f"  {float_format(dtype).name}: {len(ticks)} numbers", va="center", fontsize=8)
    ax.axvline(1.0, color="black", lw=0.6, ls=":")
    ax.set_yticks(range(len(dtypes)), [str(d).replace("torch.", "") for d in dtypes])
    ax.set_xlim(start, stop + (stop - start) * 0.35)
    ax.set_xlabel("value (the gap doubles at 1.0, a power of two)")
    ax.set_title(f"the representable numbers between {start} and {stop}")
    return fig


def bias_correction_figure(betas: tuple[float, float] = (0.9, 0.999), steps: int = 3000) -> Figure:
    """The size of Adam's step, in units of lr, on a constant gradient: with and without correction.

    With both corrections every step is exactly lr (m̂ = g, v̂ = g²); without them the moments
    start near 0 and the steps come out too large or too small until β^t fades.
    """
    b1, b2 = betas
    t = torch.arange(1, steps + 1, dtype=torch.float64)
    c1, c2 = 1 - b1 ** t, 1 - b2 ** t
    curves = {"both corrected (Adam)": torch.ones_like(t), "no correction": c1 / c2.sqrt(),
              "m corrected, v not": 1 / c2.sqrt(), "v corrected, m not": c1}
    fig = Figure(figsize=(8, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for label, y in curves.items():
        ax.plot(t.numpy(), y.numpy(), label=label, lw=2 if label.startswith("both") else 1.2)
    ax.set(xscale="log", yscale="log", xlabel="step t", ylabel="|step| / lr on a constant gradient",
           title=f"bias correction, β1 = {b1}, β2 = {b2}")
    ax.legend(fontsize=8)
    return fig


def survival_map(fn: Callable, lr: float = 1.0, w_range=(-7.0, 4.5), u_range=(-9.0, 2.0), n: int = 160,
                 title: str | None = None) -> Figure:
    """Where ``fn(weight, lr, grad)`` (an ``fp16_update_survives``) says a float16 update survives.

    x: log10 of the weight, y: log10 of the update ``lr * grad`` (positive weights, updates
    pulling toward 0). Drawn over it: half the float16 gap and the underflow floor.
    """
    logw = torch.linspace(*w_range, n, dtype=torch.float64)
    logu = torch.linspace(*u_range, n, dtype=torch.float64)
    W, U = torch.meshgrid(10 ** logw, 10 ** logu, indexing="xy")
    w16 = W.to(torch.float16)
    g16 = (U / lr).to(torch.float16)
    survives = fn(w16.flatten(), lr, g16.flatten()).reshape(W.shape)
    fig = Figure(figsize=(7.5, 5.5), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(survives.float().numpy(), origin="lower", aspect="auto", cmap="Greens", vmin=0, vmax=1.4,
              extent=(w_range[0], w_range[1], u_range[0], u_range[1]))
    w_line = (10 ** logw).to(torch.float16)
    half = (w_line.double() - torch.nextafter(w_line, torch.zeros_like(w_line)).double()) / 2
    ax.plot(logw.numpy(), torch.log10(half).numpy(), color="black", lw=1, label="half the gap below w")
    floor = math.log10(float_format(torch.float16).underflow_below)
    ax.axhline(floor, color="#d62728", ls=":", label="update rounds to 0 below this")
    ax.set(xlabel="log10 weight", ylabel="log10 update (lr × grad)",
           title=title or "green: the float16 weight changes")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def precision_runs(runs: Sequence[PrecisionRun], title: str | None = "the same model in three precisions") -> Figure:
    """Loss curves, the loss scale (runs with scaling) and the share of zero gradients, per step."""
    fig = Figure(figsize=(14, 4.2), layout="constrained")
    ax_loss, ax_scale, ax_zero = fig.subplots(1, 3)
    styles = ("-", "--", "-", ":", "-.")
    for i, run in enumerate(runs):
        line, = ax_loss.plot(run.losses, label=f"{run.label} (val acc {run.val_accuracy:.0%})", lw=1.4,
                             ls=styles[i % len(styles)])
        ax_zero.plot(run.zero_grads, color=line.get_color(), lw=1.2, ls=styles[i % len(styles)], label=run.label)
        if run.scales:
            ax_scale.plot([math.log2(s) for s in run.scales], color=line.get_color(), label=run.label)
            if run.skipped:
                ax_scale.plot(run.skipped, [math.log2(run.scales[i]) for i in run.skipped], "x",
                              color=line.get_color(), label="skipped step (inf/NaN)")
    ax_loss.set(xlabel="step", ylabel="training loss (nats)", title="loss")
    ax_loss.legend(fontsize=8)
    ax_scale.set(xlabel="step", ylabel="log2 loss scale", title="dynamic loss scale")
    if any(run.scales for run in runs):
        ax_scale.legend(fontsize=8)
    ax_zero.set(xlabel="step", ylabel="share of gradient entries exactly 0", title="gradients lost", ylim=(-0.02, 1.02))
    ax_zero.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
