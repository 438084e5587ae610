"""Seq2SeqAttention: a GRU encoder-decoder with Bahdanau attention (lab 02).

Trains on ``genlab.data.PairBatch`` ``(src, src_lengths, tgt, tgt_lengths)``: src ``(B, S)``
= tokens + <eos>, tgt ``(B, T)`` = <bos> + tokens + <eos>, both right-padded. The decoder
reads ``tgt[:, :-1]`` and step i predicts ``tgt[:, i + 1]`` (teacher forcing, or with
probability ``1 - teacher_forcing_ratio`` its own previous prediction).

The parts a student writes come in through the constructor: ``attention`` (a module with
the ``AdditiveAttention`` call signature, or "additive", "dot", "none"), ``decoder_step`` (the
signature of ``genlab.nn.rnn_seq2seq.decoder_step``), ``teacher_forcing``, ``sequence_loss``,
``greedy_search`` and ``beam_search`` (those of lab 02's notebook); each one not given is
genlab's own. ``attention="none"`` is the 2014 encoder-decoder whose decoder sees one fixed
context vector: the bottleneck baseline.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import lightning as L
import torch
from torch import Tensor, nn

from genlab import search
from genlab.data import DatesDataModule
from genlab.metrics.translation import exact_match, ids_to_text, token_accuracy
from genlab.models.common import configure_adamw
from genlab.nn import rnn_seq2seq
from genlab.nn.additive import ATTENTIONS
from genlab.nn.masks import padding_mask
from genlab.nn.rnn_seq2seq import AttentionDecoder, BiGRUEncoder

__all__ = ["Seq2SeqAttention", "encode_sources"]


class Seq2SeqAttention(L.LightningModule):
    """Bidirectional GRU encoder, GRU decoder with injected attention.

    Args:
        src_vocab_size, tgt_vocab_size, pad_id, bos_id, eos_id: from the datamodule.
        emb_size: embedding size (source and target).
        hidden_size: encoder GRU size per direction (the memory has 2 * hidden_size features).
        decoder_size: decoder GRU size.
        attention_size: the width of the additive attention's hidden layer.
        attention: "additive" (Bahdanau), "dot" (Luong's general form), "none" (one fixed
            context vector), an ``nn.Module`` built for query size ``decoder_size`` and key
            size ``2 * hidden_size``, or a class called as ``cls(decoder_size, 2 * hidden_size,
            attention_size)`` (a student's ``AdditiveAttention``).
        decoder_step: a replacement for ``genlab.nn.rnn_seq2seq.decoder_step`` (a student's).
        teacher_forcing: ``(decoder, tgt, state, memory, src_mask) -> (logits, weights)``, run over
            the whole target (a student's; it feeds the ground truth at every step, so it needs
            ``teacher_forcing_ratio=1``); default ``rnn_seq2seq.teacher_forced_logits``.
        sequence_loss: ``(logits, tgt, pad_id) -> float32 scalar``; default genlab's.
        greedy_search, beam_search: the searches of ``genlab.search`` or a student's, with their
            signatures; ``greedy_decode``, ``translate`` and the validation exact match use them.
        teacher_forcing_ratio: probability of feeding the ground-truth previous token.
        max_len: the longest output ``translate`` generates.
        bleu_tokenize: sacrebleu's tokenizer for ``val_bleu``: "char" for dates, "13a" for words.
        lr, weight_decay, warmup_steps, schedule: AdamW, see ``configure_adamw``.
    """

    fit_name = "seq2seq"  # genlab fit seq2seq (configs/seq2seq.yaml)
    datamodule_class = DatesDataModule
    linked_from_data = ("src_vocab_size", "tgt_vocab_size", "pad_id", "bos_id", "eos_id")
    figures = "genlab.plots.seq2seq:save_run_figures"
    demo_steps = 600
    demo_metrics = ("val_loss", "val_exact_match")

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
        emb_size: int = 32,
        hidden_size: int = 64,
        decoder_size: int = 128,
        attention_size: int = 64,
        attention: str | nn.Module = "additive",
        decoder_step: Callable | None = None,
        teacher_forcing_ratio: float = 1.0,
        dropout: float = 0.0,
        max_len: int = 64,
        bleu_tokenize: str = "char",
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        schedule: Literal["constant", "cosine"] = "cosine",
        teacher_forcing: Callable | None = None,
        sequence_loss: Callable | None = None,
        greedy_search: Callable | None = None,
        beam_search: Callable | None = None,
    ):
        super().__init__()
        if isinstance(attention, str) and attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, an nn.Module or a class, got {attention!r}.")
        if not 0.0 <= float(teacher_forcing_ratio) <= 1.0:
            raise ValueError(f"teacher_forcing_ratio must be in [0, 1], got {teacher_forcing_ratio}.")
        if teacher_forcing is not None and float(teacher_forcing_ratio) != 1.0:
            raise ValueError(f"a teacher_forcing function feeds the ground truth at every step: build the model "
                             f"with teacher_forcing_ratio=1.0 (got {teacher_forcing_ratio}), or without it.")
        parts = ("attention", "decoder_step", "teacher_forcing", "sequence_loss", "greedy_search", "beam_search")
        self.save_hyperparameters(ignore=list(parts))
        self.hparams["attention"] = (attention if isinstance(attention, str) else getattr(
            attention, "__name__", type(attention).__name__))
        memory_size = 2 * hidden_size
        self.encoder = BiGRUEncoder(src_vocab_size, emb_size, hidden_size, pad_id, dropout)
        self.decoder = AttentionDecoder(tgt_vocab_size, emb_size, decoder_size, memory_size, attention, pad_id,
                                        attention_size)
        self.step_fn = decoder_step
        self.teacher_forcing_fn = teacher_forcing
        self.sequence_loss_fn = sequence_loss or rnn_seq2seq.sequence_loss
        self.greedy_fn = greedy_search or search.greedy_search
        self.beam_fn = beam_search or search.beam_search
        self._val: dict[str, list] = {}

    # ----------------------------------------------------------------- model
    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``memory (B, S, 2H)``, ``src_mask (B, S)`` bool and the first decoder state ``(B, D)``."""
        memory, summary = self.encoder(src, src_lengths)
        src_mask = padding_mask(src_lengths.to(src.device), src.shape[1])
        return memory, src_mask, self.decoder.init_state(summary)

    def forward(self, src: Tensor, src_lengths: Tensor, tgt: Tensor, teacher_forcing_ratio: float = 1.0
                ) -> tuple[Tensor, Tensor | None]:
        """Logits ``(B, T - 1, V)`` for the targets ``tgt (B, T)`` and the attention weights
        ``(B, T - 1, S)`` (None without attention)."""
        memory, src_mask, state = self.encode(src, src_lengths)
        if self.teacher_forcing_fn is not None:
            if float(teacher_forcing_ratio) != 1.0:
                raise ValueError("the teacher_forcing function given to the model always feeds the ground truth; "
                                 f"teacher_forcing_ratio={teacher_forcing_ratio} needs the library's loop.")
            return self.teacher_forcing_fn(self.decoder, tgt, state, memory, src_mask)
        return rnn_seq2seq.teacher_forced_logits(self.decoder, tgt, state, memory, src_mask,
                                                 teacher_forcing_ratio=teacher_forcing_ratio, step=self.step_fn)

    def loss(self, logits: Tensor, tgt: Tensor) -> Tensor:
        """Cross-entropy of ``logits (B, T - 1, V)`` against ``tgt[:, 1:]``, pads ignored, float32."""
        return self.sequence_loss_fn(logits, tgt, self.hparams.pad_id)

    def search_step(self, src: Tensor, src_lengths: Tensor) -> tuple[Callable, tuple[Tensor, Tensor, Tensor]]:
        """``(step, state)`` for ``genlab.search`` (or a student's search).

        ``step(tokens (N,), state) -> (logits (N, V), state)``; the state is the tuple
        ``(s (N, D), memory (N, S, 2H), src_mask (N, S))``, one row per hypothesis, so rows can
        be repeated and reordered freely (``genlab.search.take_rows``).
        """
        memory, src_mask, state = self.encode(src, src_lengths)
        one_step = self.step_fn or rnn_seq2seq.decoder_step

        def step(tokens: Tensor, rows: tuple[Tensor, Tensor, Tensor]):
            s, mem, mask = rows
            logits, s, _ = one_step(self.decoder, tokens, s, mem, mask)
            return logits, (s, mem, mask)

        return step, (state, memory, src_mask)

    @torch.no_grad()
    def greedy_decode(self, src: Tensor, src_lengths: Tensor, max_len: int | None = None) -> Tensor:
        """Greedy output tokens (no <bos>) ``(B, L)``: first <eos>, then <pad>."""
        step, state = self.search_step(src, src_lengths)
        hp = self.hparams
        return self.greedy_fn(step, state, hp.bos_id, hp.eos_id, int(max_len or hp.max_len), hp.pad_id)

    @torch.no_grad()
    def beam_decode(self, src: Tensor, src_lengths: Tensor, width: int = 4, alpha: float = 1.0,
                    max_len: int | None = None) -> tuple[Tensor, Tensor]:
        """Beam-search output ``(B, L)`` and its length-normalised log-probabilities ``(B,)``."""
        step, state = self.search_step(src, src_lengths)
        hp = self.hparams
        return self.beam_fn(step, state, hp.bos_id, hp.eos_id, int(max_len or hp.max_len), width, alpha, hp.pad_id)

    @torch.no_grad()
    def alignment(self, src: Tensor, src_lengths: Tensor, output: Tensor) -> Tensor | None:
        """Attention weights ``(B, L, S)`` while the decoder writes ``output (B, L)`` (generated
        tokens, no <bos>): row i is where it looked to write token i. None without attention."""
        bos = torch.full_like(output[:, :1], self.hparams.bos_id)
        _, weights = self(src, src_lengths, torch.cat([bos, output], dim=1))
        return weights

    # -------------------------------------------------------------- training
    def training_step(self, batch, batch_idx):
        src, src_lengths, tgt, _ = batch
        logits, _ = self(src, src_lengths, tgt, self.hparams.teacher_forcing_ratio)
        loss = self.loss(logits, tgt)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def _evaluate(self, batch, stage: str) -> None:
        src, src_lengths, tgt, _ = batch
        logits, _ = self(src, src_lengths, tgt)
        self.log(f"{stage}_loss", self.loss(logits, tgt), prog_bar=stage == "val", batch_size=src.shape[0])
        hp = self.hparams
        pred = self.greedy_decode(src, src_lengths, max_len=tgt.shape[1] + 4)
        acc = self._val.setdefault(stage, [0, 0, 0, 0, [], []])
        acc[0] += int(exact_match(pred, tgt, hp.eos_id, hp.pad_id, hp.bos_id).sum())
        acc[1] += src.shape[0]
        correct, total = token_accuracy(pred, tgt, hp.eos_id, hp.pad_id, hp.bos_id)
        acc[2] += correct
        acc[3] += total
        vocab = self._target_vocab()
        if vocab is not None:
            acc[4] += ids_to_text(pred, vocab.itos, hp.eos_id, hp.pad_id, hp.bos_id, vocab.sep)
            acc[5] += ids_to_text(tgt, vocab.itos, hp.eos_id, hp.pad_id, hp.bos_id, vocab.sep)

    def _log_scores(self, stage: str) -> None:
        acc = self._val.pop(stage, None)
        if not acc or not acc[1]:
            return
        self.log(f"{stage}_exact_match", acc[0] / acc[1], prog_bar=stage == "val")
        self.log(f"{stage}_char_accuracy", acc[2] / max(acc[3], 1))
        if acc[4]:
            from genlab.metrics.translation import corpus_bleu

            self.log(f"{stage}_bleu", corpus_bleu(acc[4], acc[5], tokenize=self.hparams.bleu_tokenize))

    def _target_vocab(self):
        trainer = getattr(self, "_trainer", None)
        data = getattr(trainer, "datamodule", None) if trainer is not None else None
        return getattr(data, "tgt_vocab", None)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self):
        self._log_scores("val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def on_test_epoch_end(self):
        self._log_scores("test")

    def configure_optimizers(self):
        """AdamW (decay on matrices only), optional warmup and cosine decay over the run."""
        return configure_adamw(self)

    # ----------------------------------------------------------- convenience
    @torch.no_grad()
    def translate(self, sources: Sequence[str], datamodule, width: int = 1, alpha: float = 1.0,
                  max_len: int | None = None) -> list[str]:
        """Translations of raw source strings (greedy for ``width=1``, else beam search)."""
        was_training = self.training
        self.eval()
        src, lengths = encode_sources(sources, datamodule)
        src, lengths = src.to(self.device), lengths.to(self.device)
        if width == 1:
            pred = self.greedy_decode(src, lengths, max_len)
        else:
            pred, _ = self.beam_decode(src, lengths, width, alpha, max_len)
        self.train(was_training)
        vocab, hp = datamodule.tgt_vocab, self.hparams
        return ids_to_text(pred, vocab.itos, hp.eos_id, hp.pad_id, hp.bos_id, vocab.sep)


def encode_sources(sources: Sequence[str], datamodule) -> tuple[Tensor, Tensor]:
    """Encode strings with ``datamodule.encode_source`` (tokens + <eos>), padded:
    returns ``src (B, S)`` long and ``lengths (B,)``."""
    if isinstance(sources, str):
        raise TypeError("sources must be a list of strings; wrap a single sentence in a list.")
    rows = [datamodule.encode_source(s) for s in sources]
    lengths = torch.tensor([len(r) for r in rows])
    src = torch.full((len(rows), int(lengths.max())), datamodule.pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        src[i, : len(r)] = r
    return src, lengths
