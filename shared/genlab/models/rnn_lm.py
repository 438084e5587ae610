"""A recurrent character language model trained with truncated BPTT, as a LightningModule.

Token ids ``x (B, T)`` -> embedding -> a recurrent stack (RNN, GRU, LSTM, or any cell class
such as a student's ``LSTMCell``) -> logits ``(B, T, V)``, plus the final hidden state.

Truncated backpropagation through time uses Lightning's automatic optimisation: each
``training_step`` runs ``step_fn(self, batch, hidden)`` (default ``genlab.lm.tbptt_step``)
on one window of the contiguous streams of ``CharTextDataModule(mode="streams")``, carries
the returned (detached) state into the next window, and returns the loss; Lightning runs
backward, clips the gradient (``gradient_clip_val`` in the config) and steps AdamW. The state
is reset to zeros at the start of every training epoch (the streams start over) and every
evaluation runs from zeros with its own state. Logged: ``train_loss``/``train_ppl`` per
step, ``val_loss``/``val_ppl`` (mean over every validation token) per evaluation.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.data import CharTextDataModule
from genlab.decoding import SampleFn, sample_next
from genlab.lm import lm_loss, tbptt_step
from genlab.models.common import configure_adamw
from genlab.nn.rnn import CellFactory, State, detach_state, lstm_gates, make_recurrent, state_output

__all__ = ["RNNLanguageModel", "count_rnn_lm_parameters", "hidden_size_for_budget", "ValidationClock"]

GATES = {"rnn": 1, "gru": 3, "lstm": 4}

LossFn = Callable[[Tensor, Tensor], Tensor]
StepFn = Callable[..., tuple[Tensor, object]]


def count_rnn_lm_parameters(vocab_size: int, cell: str = "lstm", embedding_dim: int = 64, hidden_size: int = 256,
                            num_layers: int = 1, tie_weights: bool = False) -> int:
    """Parameters of ``RNNLanguageModel`` by formula (cell "rnn", "gru" or "lstm").

    A layer with g gate blocks (1 for a tanh RNN, 3 for a GRU, 4 for an LSTM) has
    ``g (H·I + H·H + 2H)``: input and recurrent matrices and their two biases, as in torch.
    Plus the embedding ``V·E`` and the output layer ``H·V + V`` (``V`` when tied).
    """
    if cell not in GATES:
        raise ValueError(f"cell must be one of {sorted(GATES)} to count by formula, got {cell!r}.")
    V, E, H, g = int(vocab_size), int(embedding_dim), int(hidden_size), GATES[cell]
    layers = sum(g * (H * (E if layer == 0 else H) + H * H + 2 * H) for layer in range(int(num_layers)))
    return V * E + layers + (V if tie_weights else H * V + V)


def hidden_size_for_budget(budget: int, vocab_size: int, cell: str = "lstm", embedding_dim: int = 64,
                           num_layers: int = 1) -> int:
    """The hidden size whose model's parameter count is closest to ``budget`` (for fair comparisons)."""
    sizes = range(1, 4097)
    return min(sizes, key=lambda H: abs(count_rnn_lm_parameters(vocab_size, cell, embedding_dim, H, num_layers)
                                          - int(budget)))


class ValidationClock(L.Callback):
    """Records ``(seconds since training started, metric)`` at every validation, for
    loss-against-wall-time figures of any model: ``clock.seconds``, ``clock.values``."""

    def __init__(self, key: str = "val_loss"):
        super().__init__()
        self.key, self.seconds, self.values = key, [], []
        self._start = None

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.key)
        if trainer.sanity_checking or value is None or self._start is None:
            return
        self.seconds.append(time.perf_counter() - self._start)
        self.values.append(float(value))


class RNNLanguageModel(L.LightningModule):
    """Character-level RNN/GRU/LSTM language model with truncated BPTT.

    Args:
        vocab_size: V, number of distinct tokens (linked from the datamodule).
        cell: "rnn" (tanh), "gru", "lstm" (torch's fused modules) or a cell class/factory
            ``cell(input_size, hidden_size)`` run step by step (a student's ``LSTMCell``).
        embedding_dim, hidden_size, num_layers: sizes of the embedding and recurrent stack.
        dropout: on the embeddings, between layers and before the output layer.
        tie_weights: share the output matrix with the embedding (needs
            ``embedding_dim == hidden_size``).
        lr, weight_decay, warmup_steps, schedule: AdamW settings (``configure_adamw``).
        loss_fn: ``loss_fn(logits (B, T, V), targets (B, T)) -> float32 scalar``; default
            ``genlab.lm.lm_loss``.
        step_fn: ``step_fn(model, (x, y), hidden) -> (loss, detached new hidden)``; default
            ``genlab.lm.tbptt_step`` with ``loss_fn``.
    """

    fit_name = "rnn_lm"
    datamodule_class = CharTextDataModule
    linked_from_data = ("vocab_size",)
    figures = "genlab.plots.rnn:save_run_figures"
    demo_steps = 300  # genlab demo: words and indentation appear in the samples within about a minute
    demo_metrics = ("val_loss",)

    def __init__(
        self,
        vocab_size: int,
        cell: str | CellFactory = "lstm",
        embedding_dim: int = 64,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        tie_weights: bool = False,
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        schedule: Literal["constant", "cosine"] = "constant",
        loss_fn: LossFn | None = None,
        step_fn: StepFn | None = None,
    ):
        super().__init__()
        if tie_weights and embedding_dim != hidden_size:
            raise ValueError(f"tie_weights=True shares one matrix between the embedding ({embedding_dim} wide) and "
                             f"the output layer ({hidden_size} wide); set embedding_dim equal to hidden_size.")
        self.save_hyperparameters(ignore=["cell", "loss_fn", "step_fn"])
        self.hparams["cell"] = cell if isinstance(cell, str) else getattr(cell, "__name__", type(cell).__name__)
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.drop = nn.Dropout(dropout)
        self.rnn = make_recurrent(cell, embedding_dim, hidden_size, num_layers, dropout)
        self.head = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            self.head.weight = self.embedding.weight
        self.loss_fn: LossFn = lm_loss if loss_fn is None else loss_fn
        self.step_fn: StepFn = step_fn if step_fn is not None else self._default_step
        self._train_hidden: State | None = None
        self._eval_hidden: State | None = None
        self._eval_totals: list[Tensor] = []

    # ----------------------------------------------------------------- model
    def forward(self, x: Tensor, hidden: State | None = None) -> tuple[Tensor, State]:
        """x ``(B, T)`` integer ids, hidden a layer state or None -> (logits ``(B, T, V)``, hidden)."""
        if x.dim() != 2 or x.dtype.is_floating_point or x.dtype == torch.bool:
            raise ValueError(f"RNNLanguageModel expects integer token ids of shape (B, T), got "
                             f"{tuple(x.shape)} {x.dtype}.")
        if hidden is not None and state_output(hidden).shape[-2] != x.shape[0]:
            raise ValueError(f"the hidden state is for a batch of {state_output(hidden).shape[-2]} streams but x has "
                             f"{x.shape[0]} rows; pass hidden=None to start new streams.")
        out, hidden = self.rnn(self.drop(self.embedding(x)), hidden)
        return self.head(self.drop(out)), hidden

    def _default_step(self, model, batch, hidden):
        return tbptt_step(model, batch, hidden, loss_fn=self.loss_fn)

    # -------------------------------------------------------------- training
    def on_fit_start(self) -> None:
        data = getattr(self.trainer, "datamodule", None)
        mode = getattr(data, "mode", "streams")
        if mode != "streams":
            raise ValueError(f"RNNLanguageModel carries its hidden state from batch to batch, so it needs contiguous "
                             f"batches: use CharTextDataModule(mode='streams'), not mode={mode!r}.")

    def on_train_epoch_start(self) -> None:
        self._train_hidden = None  # the streams start over: so does the state

    def training_step(self, batch, batch_idx):
        hidden = self._train_hidden
        if hidden is not None and state_output(hidden).shape[-2] != batch[0].shape[0]:
            hidden = None  # a batch of another size: new streams
        loss, self._train_hidden = self.step_fn(self, batch, hidden)
        self.log("train_loss", loss, prog_bar=True)
        self.log("train_ppl", torch.exp(loss.detach().float()))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._eval_hidden, self._eval_totals = None, []

    def validation_step(self, batch, batch_idx):
        self._eval_window(batch)

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val")

    def on_test_epoch_start(self) -> None:
        self.on_validation_epoch_start()

    def test_step(self, batch, batch_idx):
        self._eval_window(batch)

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")

    def _eval_window(self, batch) -> None:
        """Score one window from the carried evaluation state (token-weighted running sum)."""
        x, y = batch
        logits, hidden = self(x, self._eval_hidden)
        self._eval_hidden = detach_state(hidden)
        self._eval_totals.append(torch.stack([self.loss_fn(logits, y).detach().float() * y.numel(),
                                              torch.tensor(float(y.numel()), device=y.device)]))

    def _log_eval(self, split: str) -> None:
        if not self._eval_totals:
            return
        total, count = torch.stack(self._eval_totals).sum(0)
        mean = total / count
        self.log(f"{split}_loss", mean, prog_bar=True)
        self.log(f"{split}_ppl", torch.exp(mean))
        self._eval_hidden, self._eval_totals = None, []

    def configure_optimizers(self):
        """AdamW (decay on matrices only) with the warmup and schedule of the hyperparameters."""
        return configure_adamw(self)

    # ------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(
        self,
        prompt: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        sampler: SampleFn | None = None,
    ) -> Tensor:
        """Read ``prompt (B, T0)`` (priming the state), then sample ``max_new_tokens`` more.

        Each new token comes from ``sampler(logits (B, V), temperature=, top_k=, top_p=,
        generator=)`` (default ``genlab.decoding.sample_next``; ``temperature=0`` is greedy)
        and is fed back with the carried state: one step per token, no recomputation.
        Returns ``(B, T0 + max_new_tokens)`` long.
        """
        if prompt.dim() != 2 or prompt.shape[1] < 1:
            raise ValueError(f"prompt must be token ids of shape (B, T0) with T0 >= 1, got {tuple(prompt.shape)}.")
        sampler = sample_next if sampler is None else sampler
        was_training = self.training
        self.eval()
        try:
            logits, hidden = self(prompt)
            out = [prompt]
            for _ in range(int(max_new_tokens)):
                next_id = sampler(logits[:, -1].float(), temperature=temperature, top_k=top_k, top_p=top_p,
                                  generator=generator)
                next_id = next_id.reshape(-1, 1).to(prompt.device, prompt.dtype)
                out.append(next_id)
                logits, hidden = self(next_id, hidden)
        finally:
            self.train(was_training)
        return torch.cat(out, dim=1)

    def sample_text(self, vocab, prime: str, length: int, **sampling) -> str:
        """``prime`` followed by ``length`` sampled characters, as text (``vocab`` encodes and decodes)."""
        if not prime:
            raise ValueError("prime must be a non-empty string: the model needs at least one character to start from.")
        unknown = sorted(set(prime) - set(vocab.stoi))
        if unknown:
            raise ValueError(f"prime contains characters the vocabulary does not know: {unknown}.")
        ids = vocab.encode(prime).view(1, -1).to(self.device)
        return vocab.decode(self.generate(ids, length, **sampling)[0].tolist())

    # --------------------------------------------------------------- inspection
    @torch.no_grad()
    def gate_trace(self, ids: Tensor) -> dict[str, Tensor]:
        """The first LSTM layer's gates and states while reading ``ids (T,)`` from a zero state.

        Returns ``{"i", "f", "g", "o", "c", "h"}``, each float32 ``(T, hidden_size)``: input,
        forget and output gates (in (0, 1)), the candidate g (in (-1, 1)), the cell state c
        and the output h. Works for ``cell="lstm"`` and for cells with ``nn.LSTMCell``'s
        parameters (weight_ih, weight_hh, bias_ih, bias_hh).
        """
        weights = self._first_lstm_weights()
        x = self.embedding(ids.reshape(1, -1).to(self.device)).float()
        h = c = x.new_zeros(1, self.hparams.hidden_size)
        trace: dict[str, list[Tensor]] = {k: [] for k in "ifgoch"}
        for t in range(x.shape[1]):
            i, f, g, o = lstm_gates(x[:, t], h, *weights)
            c = f * c + i * g
            h = o * torch.tanh(c)
            for name, value in zip("ifgoch", (i, f, g, o, c, h), strict=False):
                trace[name].append(value[0])
        return {k: torch.stack(v).cpu() for k, v in trace.items()}

    def _first_lstm_weights(self) -> tuple:
        layer = getattr(self.rnn, "rnn", None)
        if isinstance(layer, nn.LSTM):
            names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
            return tuple(getattr(layer, n, None) for n in names)
        cells = getattr(self.rnn, "cells", None)
        if cells is not None and all(hasattr(cells[0], n) for n in ("weight_ih", "weight_hh")):
            cell = cells[0]
            if cell.weight_ih.shape[0] == 4 * self.hparams.hidden_size:
                return cell.weight_ih, cell.weight_hh, getattr(cell, "bias_ih", None), getattr(cell, "bias_hh", None)
        raise ValueError("gate_trace needs an LSTM: build the model with cell='lstm' or an LSTM cell class.")

    def state_gradient_norms(self, ids: Tensor) -> Tensor:
        """How much the loss at the last position depends on each earlier hidden state.

        Reads ``ids (T + 1,)`` one token at a time from a zero state and returns float32
        ``(T,)``: entry t is ``‖∂L_T / ∂h_t‖``, the norm of the gradient of the last
        prediction's cross-entropy with respect to the (last layer's) hidden state after token t.
        Backpropagation through time multiplies one Jacobian per step, so for a plain RNN
        these norms usually shrink geometrically as t moves away from T.
        """
        ids = ids.reshape(-1).to(self.device)
        if ids.numel() < 3:
            raise ValueError("state_gradient_norms needs at least 3 token ids (inputs and the last target).")
        was_training = self.training
        self.eval()
        try:
            steps, hidden = [], None
            # cuDNN refuses backward through an RNN in eval mode; the native kernels do not
            with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
                for t in range(ids.numel() - 1):
                    out, hidden = self.rnn(self.embedding(ids[t].view(1, 1)), hidden)
                    h = state_output(hidden)  # what the next step reads
                    h.retain_grad()
                    out.retain_grad()  # what the output layer reads (the same values, another tensor)
                    steps.append((h, out))
                loss = F.cross_entropy(self.head(out)[0].float(), ids[-1:])  # one prediction: no loss_fn needed
                loss.backward()
            norms = []
            for h, out in steps:
                grad = torch.zeros_like(out[0, -1])
                if h.grad is not None:
                    grad = grad + h.grad[-1, 0]
                if out.grad is not None:
                    grad = grad + out.grad[0, -1]
                norms.append(grad.norm())
            norms = torch.stack(norms).float().cpu()
        finally:
            self.zero_grad(set_to_none=True)
            self.train(was_training)
        return norms
