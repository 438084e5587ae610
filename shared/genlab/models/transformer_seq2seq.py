"""An encoder-decoder Transformer for sequence-to-sequence tasks (e.g. dates -> ISO dates).

Trains on ``genlab.data.PairBatch`` ``(src, src_lengths, tgt, tgt_lengths)``: src ``(B, S)``
= tokens + <eos> padded; tgt ``(B, T)`` = <bos> + tokens + <eos> padded. The decoder reads
``tgt[:, :-1]`` and predicts ``tgt[:, 1:]`` (teacher forcing).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric

from genlab.data import DatesDataModule
from genlab.models.common import configure_adamw
from genlab.nn import (
    DecoderBlock,
    EncoderBlock,
    SinusoidalPositionalEncoding,
    fast_scaled_dot_product_attention,
    masks,
    padding_mask,
)
from genlab.nn.attention import AttentionFn, AttentionLayer

__all__ = ["TransformerSeq2Seq", "truncate_after_eos", "exact_match", "encode_sources"]


def truncate_after_eos(seq: Tensor, eos_id: int, pad_id: int) -> Tensor:
    """Replace every token after the first <eos> of each row by <pad>: ``(B, L) -> (B, L)``."""
    is_eos = seq == eos_id
    after = (is_eos.cumsum(dim=1) - is_eos.long()) > 0  # strictly after the first eos
    return seq.masked_fill(after, pad_id)


def exact_match(pred: Tensor, target: Tensor, eos_id: int, pad_id: int) -> Tensor:
    """Per-row exact match of two token sequences up to (and including) their first <eos>.

    pred ``(B, L1)``, target ``(B, L2)`` (either may be padded). Returns bool ``(B,)``.
    """
    L = max(pred.shape[1], target.shape[1])
    pred = F.pad(truncate_after_eos(pred, eos_id, pad_id), (0, L - pred.shape[1]), value=pad_id)
    target = F.pad(truncate_after_eos(target, eos_id, pad_id), (0, L - target.shape[1]), value=pad_id)
    return (pred == target).all(dim=1)


class TransformerSeq2Seq(L.LightningModule):
    """Pre-LN encoder-decoder Transformer with sinusoidal positions and cross-attention.

    The parts lab 03 has students write can be passed in, each ``None`` by default:

    * ``attention_layer``: builds every attention layer, ``(d_model, n_heads) -> module`` with
      ``forward(query, key, value, mask=None)`` (a ``MultiHeadAttention`` class);
    * ``attention``: a ``scaled_dot_product_attention`` callable, run inside genlab's
      ``MultiHeadAttention`` (ignored when ``attention_layer`` is given: that layer has its own);
    * ``causal_mask``: ``T -> (T, T)`` bool; ``combine_masks``: ``(causal (T, T), key_padding
      (B, T)) -> (B, 1, T, T)`` bool; ``positions``: ``(T, d) -> (T, d)`` float (the sinusoidal table).

    With neither attention part the layers are genlab's ``MultiHeadAttention`` with the fused
    ``fast_scaled_dot_product_attention`` (a graded part of lab 03, a stub in the student build:
    there, pass ``attention_layer=TorchMultiHeadAttention``, torch's own ``nn.MultiheadAttention``,
    as lab 02's notebook does, or the student's class). The other defaults are genlab's own functions.
    """

    #: attributes of the datamodule the CLI passes to ``__init__``
    fit_name = "transformer"  # genlab fit transformer (configs/transformer.yaml)
    datamodule_class = DatesDataModule
    linked_from_data = ("src_vocab_size", "tgt_vocab_size", "pad_id", "bos_id", "eos_id")
    figures = "genlab.plots.transformer:save_seq2seq_figures"
    demo_steps = 600  # genlab demo: recognisable output in about a minute on 2 CPU cores
    demo_metrics = ("val_loss", "val_exact_match")

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
        d_model: int = 128,
        n_heads: int = 4,
        n_encoder_layers: int = 2,
        n_decoder_layers: int = 2,
        max_len: int = 64,
        lr: float = 1e-3,
        attention: AttentionFn | None = None,
        dropout: float = 0.0,
        weight_decay: float = 0.01,
        warmup_steps: int = 0,
        schedule: Literal["constant", "cosine"] = "constant",
        attention_layer: AttentionLayer | None = None,
        causal_mask: Callable[[int], Tensor] | None = None,
        combine_masks: Callable[[Tensor, Tensor], Tensor] | None = None,
        positions: Callable[[int, int], Tensor] | None = None,
    ):
        super().__init__()
        parts = ("attention", "attention_layer", "causal_mask", "combine_masks", "positions")
        self.save_hyperparameters(ignore=list(parts))
        if attention_layer is None and attention is None:
            attention = fast_scaled_dot_product_attention   # 15 % faster per layer than torch's nn.MultiheadAttention here
        self._causal_mask = causal_mask or masks.causal_mask
        self._combine_masks = combine_masks or masks.combine_masks
        self.src_embed = nn.Embedding(src_vocab_size, d_model, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model, padding_idx=pad_id)
        self.positions = SinusoidalPositionalEncoding(d_model, max_len, table=positions)
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.ModuleList(EncoderBlock(d_model, n_heads, dropout, attention, attention_layer)
                                     for _ in range(n_encoder_layers))
        self.encoder_ln = nn.LayerNorm(d_model)
        self.decoder = nn.ModuleList(DecoderBlock(d_model, n_heads, dropout, attention, attention_layer)
                                     for _ in range(n_decoder_layers))
        self.decoder_ln = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, tgt_vocab_size)
        for table in (self.src_embed, self.tgt_embed):
            nn.init.normal_(table.weight, std=d_model**-0.5)  # times sqrt(d) below: unit scale
            with torch.no_grad():
                table.weight[pad_id].zero_()
        self.val_exact_match = MeanMetric()
        self.test_exact_match = MeanMetric()

    # ----------------------------------------------------------------- model
    def _embed(self, tokens: Tensor, table: nn.Embedding) -> Tensor:
        return self.drop(self.positions(table(tokens) * math.sqrt(self.hparams.d_model)))

    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """src ``(B, S)``, src_lengths ``(B,)`` -> memory ``(B, S, d)`` and its mask ``(B, 1, 1, S)``."""
        if src.dim() != 2:
            raise ValueError(f"TransformerSeq2Seq: src must have shape (B, S), got {tuple(src.shape)}.")
        src_mask = padding_mask(src_lengths.to(src.device), src.shape[1])[:, None, None, :]  # (B, 1, 1, S)
        x = self._embed(src, self.src_embed)
        for block in self.encoder:
            x = block(x, mask=src_mask)
        return self.encoder_ln(x), src_mask

    def decode(
        self,
        tgt_in: Tensor,
        memory: Tensor,
        src_mask: Tensor,
        tgt_lengths: Tensor | None = None,
        need_weights: bool = False,
    ) -> Tensor:
        """tgt_in ``(B, T)`` (starts with <bos>), memory ``(B, S, d)`` -> logits ``(B, T, V_tgt)``.

        The self-attention mask is causal, combined with the padding of ``tgt_in`` when its
        lengths ``(B,)`` are given; cross-attention masks the source padding.
        """
        T = tgt_in.shape[1]
        causal = torch.as_tensor(self._causal_mask(T)).to(tgt_in.device)  # (T, T)
        if tgt_lengths is not None:
            key_padding = padding_mask(tgt_lengths.to(tgt_in.device).clamp(min=1), T)  # (B, T)
            self_mask = self._combine_masks(causal, key_padding)  # (B, 1, T, T)
        else:
            self_mask = causal
        x = self._embed(tgt_in, self.tgt_embed)
        for block in self.decoder:
            x = block(x, memory, self_mask=self_mask, memory_mask=src_mask, need_weights=need_weights)
        return self.out(self.decoder_ln(x))

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, tgt_lengths: Tensor | None = None) -> Tensor:
        """Teacher-forced logits ``(B, T, V_tgt)`` for decoder inputs ``tgt_in (B, T)``."""
        memory, src_mask = self.encode(src, src_lengths)
        return self.decode(tgt_in, memory, src_mask, tgt_lengths)

    def cross_attention_weights(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Cross-attention weights of every decoder layer: ``(n_decoder_layers, B, H, T, S)``."""
        memory, src_mask = self.encode(src, src_lengths)
        self.decode(tgt_in, memory, src_mask, need_weights=True)
        return torch.stack([block.cross_attn.last_weights for block in self.decoder])

    @torch.no_grad()
    def greedy_decode(self, src: Tensor, src_lengths: Tensor, max_len: int | None = None) -> Tensor:
        """Greedy output tokens (no <bos>) ``(B, L)``, ``L <= max_len``, long.

        Each row ends with its first <eos> followed by <pad>; decoding stops once every row
        has produced <eos> (or after ``max_len`` tokens, default ``hparams.max_len``).
        """
        max_len = int(self.hparams.max_len if max_len is None else max_len)
        memory, src_mask = self.encode(src, src_lengths)
        B = src.shape[0]
        ys = torch.full((B, 1), self.hparams.bos_id, dtype=torch.long, device=src.device)
        finished = torch.zeros(B, dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            next_id = self.decode(ys, memory, src_mask)[:, -1].argmax(dim=-1)
            next_id = next_id.masked_fill(finished, self.hparams.pad_id)
            ys = torch.cat([ys, next_id.unsqueeze(1)], dim=1)
            finished |= next_id == self.hparams.eos_id
            if bool(finished.all()):
                break
        return ys[:, 1:]

    # -------------------------------------------------------------- training
    def _loss(self, batch) -> Tensor:
        src, src_lengths, tgt, tgt_lengths = batch
        tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]
        logits = self(src, src_lengths, tgt_in, tgt_lengths - 1)
        return F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), tgt_out.reshape(-1), ignore_index=self.hparams.pad_id
        )

    def _exact(self, batch) -> Tensor:
        src, src_lengths, tgt, _ = batch
        pred = self.greedy_decode(src, src_lengths, max_len=tgt.shape[1] - 1)
        return exact_match(pred, tgt[:, 1:], self.hparams.eos_id, self.hparams.pad_id).float()

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch), prog_bar=True)
        self.val_exact_match.update(self._exact(batch))
        self.log("val_exact_match", self.val_exact_match, prog_bar=True)

    def test_step(self, batch, batch_idx):
        self.log("test_loss", self._loss(batch))
        self.test_exact_match.update(self._exact(batch))
        self.log("test_exact_match", self.test_exact_match)

    def configure_optimizers(self):
        """AdamW (decay on matrices only) with optional warmup and cosine decay over the run."""
        return configure_adamw(self, betas=(0.9, 0.98))

    # ----------------------------------------------------------- convenience
    def translate(self, sources: Sequence[str], src_vocab, tgt_vocab, max_len: int | None = None) -> list[str]:
        """Greedy translations of raw source strings (encoded with ``src_vocab`` + <eos>)."""
        was_training = self.training
        self.eval()
        src, lengths = encode_sources(sources, src_vocab, self.hparams.eos_id, self.hparams.pad_id)
        pred = self.greedy_decode(src.to(self.device), lengths.to(self.device), max_len)
        self.train(was_training)
        return [_to_text(row, tgt_vocab, self.hparams) for row in pred.tolist()]


def encode_sources(sources: Sequence[str], vocab, eos_id: int, pad_id: int) -> tuple[Tensor, Tensor]:
    """Encode strings as ``(B, S)`` ids + <eos>, padded with <pad>; returns ``(src, lengths)``."""
    rows = [torch.cat([torch.as_tensor(vocab.encode(s), dtype=torch.long), torch.tensor([eos_id])]) for s in sources]
    lengths = torch.tensor([len(r) for r in rows])
    src = torch.full((len(rows), int(lengths.max())), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        src[i, : len(r)] = r
    return src, lengths


def _to_text(ids: list[int], vocab, hparams) -> str:
    """Token ids up to the first <eos>, specials dropped, decoded to a string."""
    kept = []
    for i in ids:
        if i == hparams.eos_id:
            break
        if i not in (hparams.pad_id, hparams.bos_id):
            kept.append(i)
    return vocab.decode(torch.tensor(kept, dtype=torch.long))
