"""Figures of a finished lab-03 run (``genlab fit gpt``, ``genlab fit transformer``).

Each writer takes the trained model, its datamodule and a folder, and returns the files it
wrote: the loss curves of the run's CSV log, samples or translations, attention heatmaps.
"""
from __future__ import annotations

from pathlib import Path

import torch

from genlab import plots
from genlab.models.transformer_seq2seq import encode_sources, truncate_after_eos

__all__ = ["save_gpt_figures", "save_seq2seq_figures"]


def save_gpt_figures(model, datamodule, out_dir: Path) -> list[Path]:
    """Write ``loss.png`` (if a CSV log exists), ``samples.txt`` (3 temperatures) and
    ``attention.png`` (every head of the last layer on a sentence of the corpus)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = plots.save_run_loss(model, out_dir, title="GPT: next-character loss")

    vocab = datamodule.vocab
    text = datamodule.text("val") or datamodule.text("train")
    text = "".join(ch for ch in text if ch in vocab.stoi)
    sentence = _pick_sentence(text, max_len=min(model.config.block_size, 48))
    generator = torch.Generator(device=model.device).manual_seed(0)
    prompt = sentence[: min(16, model.config.block_size)]
    idx = vocab.encode(prompt).view(1, -1).to(model.device)
    lines = []
    for temperature in (0.5, 1.0, 1.5):
        out = model.generate(idx, 300, temperature=temperature, generator=generator)
        lines.append(f"=== temperature {temperature} (prompt {prompt!r}) ===\n{vocab.decode(out[0].tolist())}\n")
    samples = out_dir / "samples.txt"
    samples.write_text("\n".join(lines))
    written.append(samples)

    ids = vocab.encode(sentence).view(1, -1).to(model.device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        weights = model.attention_maps(ids)[-1][0]  # (H, T, T) of the last layer
    model.train(was_training)
    fig = plots.attention_heads_grid(weights, list(sentence), title=f"last layer, {sentence!r}")
    written.append(plots.save(fig, out_dir / "attention.png"))
    return written


def save_seq2seq_figures(model, datamodule, out_dir: Path) -> list[Path]:
    """Write ``loss.png`` (if a CSV log exists), ``translations.txt`` (validation examples)
    and ``cross_attention.png`` (last decoder layer, heads averaged, one example)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = plots.save_run_loss(model, out_dir, title="Transformer seq2seq loss")

    pairs = list(datamodule.pairs("val"))[:20]
    sources = [s for s, _ in pairs]
    outputs = model.translate(sources, datamodule.src_vocab, datamodule.tgt_vocab)
    lines = [f"{'ok ' if out == tgt else 'BAD'} {src!r} -> {out!r} (expected {tgt!r})"
             for (src, tgt), out in zip(pairs, outputs, strict=True)]
    right = sum(out == tgt for (_, tgt), out in zip(pairs, outputs, strict=True))
    lines.append(f"\n{right}/{len(pairs)} exact")
    path = out_dir / "translations.txt"
    path.write_text("\n".join(lines) + "\n")
    written.append(path)

    src, lengths = encode_sources(sources[:1], datamodule.src_vocab, model.hparams.eos_id, model.hparams.pad_id)
    src, lengths = src.to(model.device), lengths.to(model.device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        pred = truncate_after_eos(model.greedy_decode(src, lengths), model.hparams.eos_id, model.hparams.pad_id)
        pred = pred[:, : int((pred[0] != model.hparams.pad_id).sum())]
        bos = torch.full((1, 1), model.hparams.bos_id, dtype=torch.long, device=model.device)
        tgt_in = torch.cat([bos, pred[:, :-1]], dim=1) if pred.shape[1] else bos
        weights = model.cross_attention_weights(src, lengths, tgt_in)[-1, 0].mean(0)  # (T, S)
    model.train(was_training)
    itos_src, itos_tgt = datamodule.src_vocab.itos, datamodule.tgt_vocab.itos
    x_labels = [itos_src[i] for i in src[0].tolist()]
    y_labels = [itos_tgt[i] for i in pred[0].tolist()] or ["<eos>"]
    fig = plots.attention_heatmap(weights[: len(y_labels)], x_labels, y_labels,
                                  title="cross-attention (last decoder layer, mean over heads)",
                                  xlabel="source token (key)", ylabel="output token (its query)")
    written.append(plots.save(fig, out_dir / "cross_attention.png"))
    return written


def _pick_sentence(text: str, max_len: int, min_len: int = 20) -> str:
    """A prose sentence of ``text`` (capitalised, mostly letters, ``min_len..max_len`` chars);
    falls back to any sentence of a fitting length, then to the first ``max_len`` chars."""
    candidates = []
    for raw in text.replace("\n", " ").split(". "):
        sentence = " ".join(raw.split()) + "."
        if min_len <= len(sentence) <= max_len:
            candidates.append(sentence)
    for sentence in candidates:
        letters = sum(ch.isalpha() or ch == " " for ch in sentence)
        if sentence[0].isupper() and letters >= 0.9 * len(sentence):
            return sentence
    return candidates[0] if candidates else text[:max_len]
