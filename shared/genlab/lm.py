"""Language-model training pieces shared by the recurrent models: corpus streaming for
truncated BPTT, the next-token loss, and one truncated-BPTT step.

These are the reference versions of lab 01's graded parts 1, 3 and 4 (part 5, sampling, is
``genlab.decoding.sample_next``). A language model here is any callable
``model(x (B, T) long, hidden) -> (logits (B, T, V), new_hidden)``; ``hidden`` is ``None``
(zeros) or the state the model returned before (a tensor, or a tuple such as ``(h, c)``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.nn.rnn import detach_state

__all__ = ["stream_batches", "lm_loss", "perplexity", "tbptt_step", "IGNORE_INDEX"]

IGNORE_INDEX = -100  # targets equal to this are skipped by lm_loss (F.cross_entropy's default)


def stream_batches(ids: Tensor, batch_size: int, seq_len: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Cut a corpus into ``batch_size`` contiguous streams and yield windows of them.

    Args:
        ids: LongTensor ``(N,)``, the whole corpus as token ids.
        batch_size: B, the number of parallel streams (rows).
        seq_len: T, the window length (columns).

    Stream ``i`` is ``ids[i*L : i*L + L + 1]`` with ``L = (N - 1) // B`` input tokens; the few
    tokens at the very end that do not fill a stream are dropped. Window ``k`` is
    ``x = stream[:, k*T : (k+1)*T]`` and ``y = stream[:, k*T + 1 : (k+1)*T + 1]`` (the next
    token of every position), so row ``i`` of window ``k + 1`` continues exactly where row
    ``i`` of window ``k`` stopped: ``x_{k+1}[i, 0] == y_k[i, -1]``. When ``T`` does not divide
    ``L`` the last window is shorter (``L % T`` columns), never padded, so every input token
    of every stream is used exactly once.

    Yields:
        (x, y), LongTensors ``(B, T)`` (the last one possibly ``(B, L % T)``).
    """
    ids = _check_ids(ids)
    batch_size, seq_len = _positive("batch_size", batch_size), _positive("seq_len", seq_len)
    length = (ids.numel() - 1) // batch_size
    if length < 1:
        raise ValueError(f"a corpus of {ids.numel()} tokens is too short for {batch_size} streams: each stream "
                         "needs at least 2 tokens (one input, one target). Use a smaller batch_size.")
    streams = ids[: batch_size * length + 1]
    x_all = streams[:-1].view(batch_size, length)  # row i = ids[i*L : (i+1)*L]
    y_all = streams[1:].view(batch_size, length)   # shifted by one: the next token of each position
    for start in range(0, length, seq_len):
        yield x_all[:, start : start + seq_len], y_all[:, start : start + seq_len]


def lm_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean next-token cross-entropy over every position of the batch, in float32.

    ``L = -(1 / (B*T)) Σ_b Σ_t log softmax(logits[b, t])[targets[b, t]]`` in nats; its exp
    is the perplexity. logits ``(B, T, V)`` of any float dtype (cast to float32 first, so
    float16 logits never overflow), targets ``(B, T)`` long; targets equal to
    ``IGNORE_INDEX`` (-100) are left out of the mean. Returns a float32 scalar.
    """
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"lm_loss expects logits (B, T, V) and targets (B, T), got {tuple(logits.shape)} "
                         f"and {tuple(targets.shape)}.")
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=IGNORE_INDEX)


def perplexity(loss: float | Tensor) -> float:
    """``exp(loss)`` for a mean cross-entropy in nats: the effective number of equally likely
    next tokens (103 for a uniform guess over 103 characters, 1 for a perfect model)."""
    value = float(loss)
    return math.exp(value) if value < 700 else math.inf


def tbptt_step(model: Callable, batch: tuple[Tensor, Tensor], hidden,
               loss_fn: Callable[[Tensor, Tensor], Tensor] = lm_loss):
    """One step of truncated backpropagation through time on window ``batch = (x, y)``.

    Runs ``model(x, hidden)`` from the carried state, scores it with ``loss_fn`` and returns
    ``(loss, new_hidden)``: ``loss`` is a float32 scalar whose graph reaches the parameters
    through this window only (the incoming ``hidden`` is detached first, so no gradient
    crosses into the previous window even if the caller passed an attached state), and
    ``new_hidden`` is the model's final state, detached, to carry into the next window.
    The caller runs ``loss.backward()`` and the optimizer step.
    """
    x, y = batch
    logits, new_hidden = model(x, detach_state(hidden))
    return loss_fn(logits, y), detach_state(new_hidden)


def _check_ids(ids) -> Tensor:
    if not isinstance(ids, Tensor) or ids.dim() != 1:
        shape = tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__
        raise ValueError(f"ids must be a 1-D LongTensor of token ids (the whole corpus), got {shape}.")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"ids must hold integer token ids, got dtype {ids.dtype}; encode the text first.")
    return ids.long()


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)
