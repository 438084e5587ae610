"""Figures of lab 01 and of ``genlab fit rnn_lm``: LSTM gates over a sentence, the gradient
through time, memory length, loss against wall time, the temperature-reshaped softmax.

Every function returns a ``matplotlib.figure.Figure`` with labelled axes and a title;
``save_run_figures`` writes a finished run's figures to a folder.
"""
from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from matplotlib.figure import Figure

from genlab import plots

__all__ = [
    "gates_figure",
    "gradient_through_time_figure",
    "memory_figure",
    "loss_vs_time_figure",
    "temperature_figure",
    "save_run_figures",
]

GATE_TITLES = {
    "i": "input gate i (how much to write)",
    "f": "forget gate f (how much to keep)",
    "o": "output gate o (how much to read)",
    "c": "cell state c (the memory)",
}


def _tick(ch: str) -> str:
    return "\u2423" if ch == " " else repr(ch)[1:-1]


def gates_figure(trace: Mapping[str, torch.Tensor], chars: Sequence[str], units: int = 16,
                 title: str | None = None) -> Figure:
    """Heatmaps of the LSTM's input, forget and output gates and its cell state.

    trace: ``{"i", "f", "o", "c"}`` each ``(T, H)`` (``RNNLanguageModel.gate_trace``);
    chars: the T characters read. Shows the first ``units`` hidden units.
    """
    T = len(chars)
    fig = Figure(figsize=(max(8.0, 0.22 * T + 2), 8.5), layout="constrained")
    axes = fig.subplots(4, 1, sharex=True)
    for ax, key in zip(axes, ("i", "f", "o", "c"), strict=False):
        values = torch.as_tensor(trace[key]).detach().float()[:T, :units].T.numpy()
        if key == "c":
            bound = max(float(abs(values).max()), 1e-6)
            image = ax.imshow(values, aspect="auto", cmap="RdBu_r", vmin=-bound, vmax=bound)
        else:
            image = ax.imshow(values, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_ylabel("hidden unit")
        ax.set_title(GATE_TITLES[key], fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    axes[-1].set_xticks(range(T), [_tick(c) for c in chars], fontsize=7)
    axes[-1].set_xlabel("character read (time →)")
    fig.suptitle(title or "LSTM gates while reading a sentence")
    return fig


def gradient_through_time_figure(norms: Mapping[str, Sequence[float]], title: str | None = None) -> Figure:
    """``‖∂L_T/∂h_t‖`` against the distance ``T - t`` (log scale), one line per model.

    norms: ``{name: (T,) gradient norms}`` in time order (``RNNLanguageModel.state_gradient_norms``).
    """
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    for name, values in norms.items():
        v = torch.as_tensor(values, dtype=torch.float64).flip(0).clamp_min(1e-30)
        ax.semilogy(range(len(v)), v.numpy(), label=name)
    ax.set_xlabel("steps back from the prediction, T - t")
    ax.set_ylabel("‖∂L_T / ∂h_t‖ (log scale)")
    ax.set_title(title or "How much the last prediction's loss reaches back in time")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return fig


def memory_figure(distances: Sequence[int], accuracy: Mapping[str, Sequence[float]], chance: float,
                  context: Mapping[str, int] | None = None, title: str | None = None) -> Figure:
    """Recall accuracy against the distance N between the key and the question.

    accuracy: ``{model name: accuracies, one per distance}``; chance: the accuracy of a
    guess; context: ``{model name: context size}`` draws where a model's window ends.
    """
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for name, acc in accuracy.items():
        line, = ax.plot(list(distances), [float(a) for a in acc], marker="o", label=name)
        if context and name in context:
            ax.axvline(context[name] - 1.5, color=line.get_color(), linestyle=":", alpha=0.8)
    ax.axhline(chance, color="gray", linestyle="--", label=f"chance ({chance:.0%})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(distances), [str(d) for d in distances])
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("distance N: characters between the key and the question")
    ax.set_ylabel("recall accuracy")
    ax.set_title(title or "What each model remembers: “she printed her ___”")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def loss_vs_time_figure(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                        title: str | None = None, ylabel: str = "validation loss (nats / char)") -> Figure:
    """Validation loss against wall-clock seconds, one line per model: ``{name: (seconds, losses)}``."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for name, (seconds, losses) in curves.items():
        ax.plot(list(seconds), list(losses), marker="o", markersize=3, label=name)
    ax.set_xlabel("wall-clock time (s)")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "Same corpus, same CPU budget")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def temperature_figure(logits: torch.Tensor, itos: Sequence[str], temperatures: Sequence[float] = (0.5, 1.0, 2.0),
                       top: int = 15, title: str | None = None) -> Figure:
    """Bars of ``softmax(logits / T)`` over the ``top`` likeliest tokens, one panel per temperature."""
    logits = torch.as_tensor(logits).detach().float().reshape(-1).cpu()
    order = logits.topk(min(top, logits.numel())).indices
    labels = [_tick(itos[i]) for i in order.tolist()]
    fig = Figure(figsize=(3.6 * len(temperatures), 3.2), layout="constrained")
    axes = fig.subplots(1, len(temperatures), sharey=True)
    axes = axes if len(temperatures) > 1 else [axes]
    for ax, T in zip(axes, temperatures, strict=False):
        probs = torch.softmax(logits / T, -1)
        ax.bar(range(len(order)), probs[order].numpy())
        ax.set_xticks(range(len(order)), labels, fontsize=8)
        ax.set_title(f"T = {T}")
        ax.set_xlabel("next character")
    axes[0].set_ylabel("probability")
    fig.suptitle(title or "softmax(x / T): low T sharpens, high T flattens")
    return fig


def save_run_figures(model, datamodule, out_dir: Path) -> list[Path]:
    """A finished ``genlab fit rnn_lm`` run: ``loss.png``, ``samples.txt`` (three temperatures,
    from the best checkpoint when one was kept) and, for an LSTM, ``gates.png``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = plots.save_run_loss(model, out_dir, title=f"{model.hparams.get('cell', 'RNN')} language model: "
                                                        "next-character loss")
    with _best_weights(model):
        vocab = datamodule.vocab
        prime = _known("The ", vocab, datamodule, 4)
        lines = []
        for temperature in (0.5, 1.0, 1.5):
            generator = torch.Generator(device=model.device).manual_seed(0)
            text = model.sample_text(vocab, prime, 300, temperature=temperature, generator=generator)
            lines.append(f"=== temperature {temperature} (prime {prime!r}) ===\n{text}\n")
        samples = out_dir / "samples.txt"
        samples.write_text("\n".join(lines), encoding="utf-8")
        written.append(samples)
        sentence = _known("Return a new list of the keys.", vocab, datamodule, 30)
        try:
            trace = model.gate_trace(vocab.encode(sentence))
        except ValueError:  # not an LSTM
            return written
        written.append(plots.save(gates_figure(trace, list(sentence)), out_dir / "gates.png"))
    return written


def _known(text: str, vocab, datamodule, length: int) -> str:
    """``text`` if the vocabulary knows all its characters, else the start of the corpus's text."""
    if all(ch in vocab.stoi for ch in text):
        return text
    for split in ("val", "train"):
        corpus = datamodule.text(split) if hasattr(datamodule, "text") else ""
        if corpus:
            return corpus[:length]
    return vocab.itos[0] * length


@contextlib.contextmanager
def _best_weights(model):
    """Temporarily load the weights of the run's best checkpoint (if one was kept) into ``model``."""
    trainer = getattr(model, "_trainer", None)
    callback = getattr(trainer, "checkpoint_callback", None) if trainer is not None else None
    path = getattr(callback, "best_model_path", "") or ""
    if not path or not Path(path).is_file():
        yield model
        return
    current = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(torch.load(path, map_location=model.device, weights_only=True)["state_dict"])
    try:
        yield model
    finally:
        model.load_state_dict(current)
