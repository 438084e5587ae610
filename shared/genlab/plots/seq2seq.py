"""Figures of lab 02 and ``genlab fit seq2seq``: alignments, architectures, decoding.

* ``alignment_figure``: attention heatmaps (output character against source character) for
  a few examples side by side.
* ``accuracy_vs_time``: held-out accuracy against training wall time, one line per model.
* ``beam_vs_greedy``: exact match of greedy and beam search, on all and on the hardest examples.
* ``save_run_figures``: what ``genlab fit seq2seq`` writes after training.

Hangul labels use the font of ``genlab.plots.fonts`` (NanumGothic, shipped with the
koreanize-matplotlib dependency); should it be missing, ``token_label`` romanises the date
suffixes (년 nyeon, 월 wol, 일 il).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from matplotlib.figure import Figure

from genlab import plots
from genlab.models.common import metrics_csv_path
from genlab.plots.fonts import use_hangul_font

__all__ = ["use_hangul_font", "token_label", "alignment_figure", "accuracy_vs_time", "beam_vs_greedy",
           "save_run_figures"]

_ROMAN = {"년": "nyeon", "월": "wol", "일": "il"}


def token_label(token: str) -> str:
    """A tick label for one token: Hangul romanised when no Hangul font is available."""
    if not use_hangul_font():
        return _ROMAN.get(token, "".join(_ROMAN.get(ch, ch) for ch in token))
    return token


def alignment_figure(examples: Sequence[tuple[Sequence[str], Sequence[str], object]], title: str | None = None,
                     ncols: int | None = None) -> Figure:
    """One heatmap per example: ``(source_tokens, output_tokens, weights (L, S))``.

    Row i of ``weights`` is where the decoder looked (over the source tokens) while writing
    output token i; rows sum to 1. Returns the figure.
    """
    if not examples:
        raise ValueError("alignment_figure: give at least one (source_tokens, output_tokens, weights) example.")
    n = len(examples)
    ncols = ncols or min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(5.2 * ncols, 4.2 * nrows), layout="constrained")
    for k, (src, out, weights) in enumerate(examples):
        w = torch.as_tensor(weights).detach().float().cpu()
        if w.shape != (len(out), len(src)):
            raise ValueError(f"alignment_figure: example {k} has weights {tuple(w.shape)} for {len(out)} output "
                             f"and {len(src)} source tokens; expected (output, source).")
        ax = fig.add_subplot(nrows, ncols, k + 1)
        plots.attention_heatmap(w, [token_label(t) for t in src], [token_label(t) for t in out], ax=ax,
                                title="".join(src).replace("<eos>", ""), xlabel="source character",
                                ylabel="output character")
    if title:
        fig.suptitle(title)
    return fig


def accuracy_vs_time(curves: Mapping[str, Sequence[tuple]], title: str | None = None,
                     ylabel: str = "held-out exact match", target: float | None = None) -> Figure:
    """Accuracy against training wall time: ``{model name: [(seconds, accuracy), ...]}``.

    With ``(seconds, accuracy, step)`` triples a second panel plots accuracy against the
    training step, which a busy machine cannot distort.
    """
    with_steps = any(len(p) > 2 for points in curves.values() for p in points)
    fig = Figure(figsize=(11.5 if with_steps else 6.5, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True) if with_steps else [fig.add_subplot()]
    for col, (ax, xlabel) in enumerate(zip(axes, ("training wall time (s)", "training step"), strict=False)):
        for name, points in curves.items():
            if not points:
                continue
            xs = [p[2] if col else p[0] for p in points]
            ax.plot(xs, [p[1] for p in points], marker="o", markersize=4, label=name)
        if target is not None:
            ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:.1%}")
        ax.set_xlabel(xlabel)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(ylabel)
    axes[-1].legend(loc="lower right")
    fig.suptitle(title or "one task, three architectures")
    return fig


def beam_vs_greedy(scores: Mapping[str, Mapping[str, float]], title: str | None = None) -> Figure:
    """Grouped bars: ``{subset: {decoder: exact match}}``, e.g. ``{"all": {"greedy": .99, "beam 4": .995}}``."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    subsets = list(scores)
    decoders = sorted({d for s in scores.values() for d in s}, key=lambda d: (d != "greedy", d))
    width = 0.8 / max(len(decoders), 1)
    for j, dec in enumerate(decoders):
        xs = [i + (j - (len(decoders) - 1) / 2) * width for i in range(len(subsets))]
        ys = [scores[s].get(dec, float("nan")) for s in subsets]
        bars = ax.bar(xs, ys, width=width, label=dec)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(range(len(subsets)), subsets)
    ax.set_ylabel("exact match")
    ax.set_ylim(0, 1.1)
    ax.legend()
    ax.set_title(title or "greedy against beam search")
    return fig


def _examples(model, datamodule, sources: Sequence[str]):
    from genlab.metrics.translation import truncate_after_eos
    from genlab.models.seq2seq import encode_sources

    src, lengths = encode_sources(sources, datamodule)
    src, lengths = src.to(model.device), lengths.to(model.device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        hp = model.hparams
        pred = truncate_after_eos(model.greedy_decode(src, lengths), hp.eos_id, hp.pad_id)
        weights = model.alignment(src, lengths, pred)
    model.train(was_training)
    if weights is None:
        return []
    out = []
    src_itos, tgt_itos = datamodule.src_vocab.itos, datamodule.tgt_vocab.itos
    for b in range(len(sources)):
        n_src = int(lengths[b])
        row = pred[b].tolist()
        n_out = row.index(hp.eos_id) + 1 if hp.eos_id in row else len(row)
        out.append(([src_itos[i] for i in src[b, :n_src].tolist()], [tgt_itos[i] for i in row[:n_out]],
                    weights[b, :n_out, :n_src].cpu()))
    return out


def save_run_figures(model, datamodule, out_dir: Path) -> list[Path]:
    """Write ``loss.png`` (if a CSV log exists), ``translations.txt`` (20 validation examples,
    greedy and beam 4) and ``alignment.png`` (three validation examples; not for attention="none")."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    csv_path = metrics_csv_path(model)
    if csv_path is not None:
        fig = plots.loss_curves(csv_path, keys=["train_loss", "val_loss"],
                                title=f"seq2seq ({model.hparams.attention} attention): loss")
        written.append(plots.save(fig, out_dir / "loss.png"))
    pairs = list(datamodule.pairs("val"))[:20]
    sources = [s for s, _ in pairs]
    greedy = model.translate(sources, datamodule)
    beam = model.translate(sources, datamodule, width=4)
    lines = [f"{'ok ' if g == t else 'BAD'} {s!r} -> {g!r} (beam 4: {b!r}; expected {t!r})"
             for (s, t), g, b in zip(pairs, greedy, beam, strict=True)]
    lines.append(f"\ngreedy {sum(g == t for (_, t), g in zip(pairs, greedy, strict=True))}/{len(pairs)} exact, "
                 f"beam 4 {sum(b == t for (_, t), b in zip(pairs, beam, strict=True))}/{len(pairs)} exact")
    path = out_dir / "translations.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written.append(path)
    examples = _examples(model, datamodule, sources[:3])
    if examples:
        fig = alignment_figure(examples, title="where the decoder looks while writing each character")
        written.append(plots.save(fig, out_dir / "alignment.png"))
    return written
