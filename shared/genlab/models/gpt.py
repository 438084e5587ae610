"""A decoder-only Transformer language model (GPT) as a LightningModule.

Token ids ``idx (B, T)`` -> logits ``(B, T, V)``; learned positions (the context size
``block_size`` bounds T), pre-LN blocks with causal self-attention, final LayerNorm, and an
unembedding tied to the token embedding (no bias).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.data import CharTextDataModule
from genlab.decoding import SampleFn, sample_next
from genlab.models.common import configure_adamw
from genlab.nn.attention import KVCache
from genlab.nn.blocks import GPTBlock, dropout_layer
from genlab.nn.positional import LearnedPositionalEncoding

__all__ = ["GPTConfig", "count_parameters", "parameter_breakdown", "GPT"]


@dataclass
class GPTConfig:
    """Architecture of a GPT (biases on, tied weights, learned positions)."""

    vocab_size: int
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0

    @classmethod
    def coerce(cls, config: GPTConfig | Mapping) -> GPTConfig:
        """A GPTConfig from itself or a dict with (a subset of) its keys; extra keys ignored."""
        if isinstance(config, cls):
            return config
        if not isinstance(config, Mapping):
            raise TypeError(f"expected a GPTConfig or a dict, got {type(config).__name__}.")
        if "vocab_size" not in config:
            raise ValueError("the config needs a 'vocab_size' entry (number of distinct tokens).")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})


def parameter_breakdown(config: GPTConfig | Mapping) -> dict[str, int]:
    """Parameter counts by part, in closed form, plus ``"total"``.

    Per layer (d = n_embd): attention ``4d² + 4d`` (q, k, v, out projections with bias; the
    model fuses q, k, v into one ``d -> 3d`` layer, which changes nothing in the count),
    MLP ``8d² + 5d`` (d->4d->d with bias), two LayerNorms ``4d``. Plus token embedding
    ``V·d``, positions ``block_size·d``, final LayerNorm ``2d``; the tied lm_head adds nothing.
    """
    c = GPTConfig.coerce(config)
    d, V, T, n = int(c.n_embd), int(c.vocab_size), int(c.block_size), int(c.n_layer)
    parts = {
        "token_embedding": V * d,
        "position_embedding": T * d,
        "attention": n * (4 * d * d + 4 * d),
        "mlp": n * (8 * d * d + 5 * d),
        "layernorm": n * 4 * d + 2 * d,
    }
    parts["total"] = sum(parts.values())
    return parts


def count_parameters(config: GPTConfig | Mapping) -> int:
    """Total number of parameters of ``GPT(**config)``, by formula (see ``parameter_breakdown``)."""
    return parameter_breakdown(config)["total"]


class GPT(L.LightningModule):
    """GPT language model. ``attention`` is a callable with the ``scaled_dot_product_attention``
    signature (a student's goes here; it gets the causal mask); default ``None``: torch's fused
    causal kernel (``F.scaled_dot_product_attention(..., is_causal=True)``, no mask tensor).

    Batches are ``(x, y)`` LongTensors ``(B, T)`` with ``y`` = ``x`` shifted left by one.
    """

    fit_name = "gpt"  # genlab fit gpt (configs/gpt.yaml)
    datamodule_class = CharTextDataModule
    #: attributes of the datamodule the CLI passes to ``__init__``
    linked_from_data = ("vocab_size", "block_size")
    figures = "genlab.plots.transformer:save_gpt_figures"
    demo_steps = 400  # genlab demo: recognisable output in about a minute on 2 CPU cores
    demo_metrics = ("val_loss",)

    def __init__(
        self,
        vocab_size: int,
        block_size: int = 64,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.0,
        lr: float = 3e-4,
        weight_decay: float = 0.1,
        attention: Callable | None = None,
        warmup_steps: int = 0,
        schedule: Literal["constant", "cosine"] = "constant",
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["attention"])
        self.config = GPTConfig(vocab_size, block_size, n_layer, n_head, n_embd, dropout)
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = LearnedPositionalEncoding(n_embd, block_size)
        self.drop = dropout_layer(dropout)
        self.blocks = nn.ModuleList(
            GPTBlock(n_embd, n_head, dropout, attention, max_len=block_size) for _ in range(n_layer)
        )
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying: one matrix embeds and unembeds
        self._init_weights()

    # ----------------------------------------------------------------- model
    def _init_weights(self) -> None:
        """N(0, 0.02) weights, zero biases; residual output projections scaled by 1/sqrt(2·n_layer)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        for block in self.blocks:
            for proj in (block.attn.out_proj, block.mlp.proj):
                nn.init.normal_(proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer))

    def _logits(
        self,
        idx: Tensor,
        caches: list[KVCache] | None = None,
        offset: int = 0,
        need_weights: bool = False,
        last_only: bool = False,
    ) -> Tensor:
        """idx ``(B, T)`` at positions ``offset..offset+T-1`` -> logits ``(B, T, V)``.

        caches: one ``KVCache`` per block, holding the ``offset`` earlier positions.
        last_only: the output layer on the last position only -> ``(B, 1, V)`` (generation).
        """
        if idx.dim() != 2 or idx.dtype not in (torch.long, torch.int, torch.int16, torch.uint8):
            raise ValueError(f"GPT expects integer token ids of shape (B, T), got {tuple(idx.shape)} {idx.dtype}.")
        x = self.drop(self.wpe(self.wte(idx), offset=offset))  # (B, T, d)
        for i, block in enumerate(self.blocks):
            x = block(x, cache=None if caches is None else caches[i], need_weights=need_weights)  # (B, T, d)
        if last_only:
            x = x[:, -1:]  # (B, 1, d)
        return self.lm_head(self.ln_f(x))  # (B, T or 1, V)

    def forward(self, idx: Tensor) -> Tensor:
        """idx ``(B, T)`` long, ``T <= block_size`` -> logits ``(B, T, vocab_size)``."""
        return self._logits(idx)

    def attention_maps(self, idx: Tensor) -> list[Tensor]:
        """Self-attention weights of every layer for ``idx (B, T)``: a list of ``(B, H, T, T)``."""
        self._logits(idx, need_weights=True)
        return [block.attn.last_weights for block in self.blocks]

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Mean next-token cross-entropy in float32: logits ``(B, T, V)``, targets ``(B, T)``."""
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))

    # -------------------------------------------------------------- training
    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", self.loss(self(x), y), prog_bar=True)

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_loss", self.loss(self(x), y))

    def configure_optimizers(self):
        """AdamW (decay on matrices only) with optional warmup and cosine decay over the run."""
        return configure_adamw(self)

    # ------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        return_logits: bool = False,
        keep: int | None = None,
        sampler: SampleFn | None = None,
    ):
        """Extend ``idx (B, T)`` by ``max_new_tokens`` sampled tokens -> ``(B, T + max_new_tokens)``.

        Each new token comes from ``sampler(logits (B, V), temperature=, top_k=, top_p=,
        generator=)`` (default ``genlab.decoding.sample_next``, lab 01's graded part: pass your
        own; ``temperature=0`` is greedy). With ``return_logits`` also returns the next-token
        logits of each step, ``(B, max_new_tokens, V)`` float32.

        Context policy. The model sees a window of at most ``block_size`` tokens. While the
        window grows, each step feeds only the newest token and, with ``use_cache``, reuses the
        keys and values of the earlier ones (one position per step instead of the whole window).
        When the window is full, the next one restarts from the last ``keep`` tokens
        (``1 <= keep <= block_size``; default ``block_size // 2``), computed in one forward that
        refills the cache, and grows again. Learned absolute positions shift when the window
        moves, so a cache cannot slide; this policy keeps every cached logit equal to an
        uncached forward over the same window, and recomputes once every ``block_size - keep + 1``
        tokens. ``keep=block_size`` is the strict sliding window of a cache-less GPT (every step
        after the window fills is a full forward). ``use_cache=False`` follows the same windows
        with full forwards and gives the same logits.
        """
        block = self.config.block_size
        keep = max(1, block // 2) if keep is None else int(keep)
        if not 1 <= keep <= block:
            raise ValueError(f"generate: keep must be in [1, block_size={block}], got {keep}.")
        sampler = sample_next if sampler is None else sampler
        was_training = self.training
        self.eval()
        window = min(idx.shape[1], block)  # tokens the next step sees
        fresh = True  # the next step computes its whole window (no usable cache)
        caches: list[KVCache] | None = None
        step_logits = []
        try:
            for _ in range(int(max_new_tokens)):
                if fresh:  # a cache is only read if the window can still grow
                    caches = [KVCache() for _ in self.blocks] if use_cache and window < block else None
                    logits = self._logits(idx[:, -window:], caches, last_only=True)  # (B, 1, V)
                else:
                    logits = self._logits(idx[:, -1:], caches, offset=window - 1, last_only=True)  # (B, 1, V)
                last = logits[:, -1, :].float()  # (B, V)
                if return_logits:
                    step_logits.append(last)
                next_id = sampler(last, temperature=temperature, top_k=top_k, top_p=top_p,
                                  generator=generator).reshape(-1)  # (B,)
                idx = torch.cat([idx, next_id.unsqueeze(1).to(idx.dtype)], dim=1)  # (B, T + 1)
                if window == block:  # full: restart from the last `keep` tokens
                    window, fresh = keep, True
                else:  # grow by the new token
                    window, fresh = window + 1, not use_cache
        finally:
            self.train(was_training)
        if return_logits:
            V = self.config.vocab_size
            stacked = torch.stack(step_logits, 1) if step_logits else idx.new_zeros(idx.shape[0], 0, V).float()
            return idx, stacked
        return idx
