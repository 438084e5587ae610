"""Batched greedy and beam search over any step-by-step decoder.

A decoder is given as a ``step`` function and its state:

    logits, state = step(tokens, state)

``tokens (N,)`` long are the previous tokens, ``state`` is a tensor (or a tuple of tensors)
whose first axis has one row per hypothesis, and ``logits (N, V)`` score the next token.
Rows are independent: ``step`` may be called with any number of rows, in any order, and
``take_rows(state, index)`` picks, repeats or reorders them.
Searches start from <bos> and return the generated tokens without it, each row ending with
its first <eos> and then ``pad_id``.

Beam search (width ``k``), per example:

* keep the ``k`` best live hypotheses by total log-probability (one at the start: <bos>);
* extend each by every token and keep the ``k`` best extensions; those ending in <eos> are
  **finished**: set aside with the score ``total / length**alpha`` (length = generated tokens,
  <eos> included; ``alpha = 0`` is no length normalisation), the others stay live;
* stop when ``k`` hypotheses have finished (or after ``max_len`` steps) and return the finished
  hypothesis with the best score. If none finished, the best live one is returned, scored the
  same way.

With ``k = 1`` this is exactly greedy search. Rows ``b*k .. b*k + k - 1`` of the state that
``step`` sees here are the beams of example ``b``.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["greedy_search", "beam_search", "take_rows", "num_rows", "map_state", "StepFn"]

#: ``step(tokens (N,), state) -> (logits (N, V), state)``
StepFn = Callable[[Tensor, object], tuple[Tensor, object]]


def map_state(state, fn: Callable[[Tensor], Tensor]):
    """Apply ``fn`` to every tensor of a state (a tensor, or a tuple/list of them, or None)."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, (tuple, list)):
        return type(state)(map_state(s, fn) for s in state)
    raise TypeError(f"a decoder state must be a tensor or a tuple of tensors, got {type(state).__name__}.")


def take_rows(state, index: Tensor):
    """Rows ``index`` of every tensor of ``state``: ``index`` is a long tensor of row numbers
    (it may repeat and reorder rows). Works for a tensor or a tuple of tensors."""
    index = torch.as_tensor(index, dtype=torch.long)
    return map_state(state, lambda t: t.index_select(0, index.to(t.device)))


def num_rows(state) -> int:
    """The number of rows (hypotheses) of a state: a tensor or a tuple of tensors."""
    if isinstance(state, Tensor):
        return state.shape[0]
    if isinstance(state, (tuple, list)) and state:
        return num_rows(state[0])
    raise TypeError("the decoder state must be a tensor (or a tuple of tensors) whose first axis is the batch.")


_batch_size = num_rows


def _device(state) -> torch.device:
    return state.device if isinstance(state, Tensor) else _device(state[0])


def _check(bos_id: int, eos_id: int, max_len: int) -> None:
    if int(max_len) < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}.")
    if int(bos_id) == int(eos_id):
        raise ValueError(f"bos_id and eos_id must differ, both are {bos_id}.")


def _logits(step: StepFn, tokens: Tensor, state, rows: int):
    out = step(tokens, state)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError("step(tokens, state) must return (logits, state).")
    logits, state = out
    if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != rows:
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"step must return logits of shape (N={rows}, V), got {got}.")
    return logits, state


@torch.no_grad()
def greedy_search(step: StepFn, state, bos_id: int, eos_id: int, max_len: int, pad_id: int = 0) -> Tensor:
    """The most likely token at every step: ``(B, L)`` long, ``L <= max_len``.

    Each row ends with its first <eos>, followed by ``pad_id``; the search stops as soon as
    every row has produced <eos>.
    """
    _check(bos_id, eos_id, max_len)
    B, device = _batch_size(state), _device(state)
    tokens = torch.full((B,), int(bos_id), dtype=torch.long, device=device)
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    out = []
    for _ in range(int(max_len)):
        logits, state = _logits(step, tokens, state, B)
        tokens = logits.argmax(dim=-1).masked_fill(finished, int(pad_id))
        out.append(tokens)
        finished |= tokens == int(eos_id)
        if bool(finished.all()):
            break
    return torch.stack(out, dim=1)


@torch.no_grad()
def beam_search(step: StepFn, state, bos_id: int, eos_id: int, max_len: int, width: int = 4,
                alpha: float = 1.0, pad_id: int = 0) -> tuple[Tensor, Tensor]:
    """Beam search of ``width`` hypotheses per example (see the module docstring).

    state: the decoder state of ``B`` examples (first axis ``B``); it is repeated to
    ``B * width`` rows before the first step and reordered with ``take_rows`` after each. Returns ``tokens (B, L)`` long (generated
    tokens, first <eos>, then ``pad_id``) and ``scores (B,)`` float32: the total
    log-probability of each returned sequence divided by its length ** ``alpha``.
    """
    _check(bos_id, eos_id, max_len)
    k = int(width)
    if k < 1:
        raise ValueError(f"width must be >= 1, got {width}.")
    B, device = _batch_size(state), _device(state)
    max_len, eos = int(max_len), int(eos_id)
    state = take_rows(state, torch.arange(B, device=device).repeat_interleave(k))
    seqs = torch.full((B, k, 0), int(pad_id), dtype=torch.long, device=device)
    last = torch.full((B * k,), int(bos_id), dtype=torch.long, device=device)
    scores = torch.full((B, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live hypothesis (<bos>) at the start
    slots = 2 * k  # at most k - 1 finished before the last step, plus k at it
    fin_seqs = torch.full((B, slots, max_len), int(pad_id), dtype=torch.long, device=device)
    fin_scores = torch.full((B, slots), float("-inf"), device=device)
    fin_count = torch.zeros(B, dtype=torch.long, device=device)
    rows = torch.arange(B, device=device)
    for t in range(1, max_len + 1):
        logits, state = _logits(step, last, state, B * k)
        V = logits.shape[-1]
        logp = torch.log_softmax(logits.float(), dim=-1).view(B, k, V)
        cand = (scores.unsqueeze(-1) + logp).view(B, k * V)
        top, index = cand.topk(k, dim=-1)  # (B, k), best first
        beam, token = index // V, index % V
        seqs = torch.cat([seqs.gather(1, beam.unsqueeze(-1).expand(-1, -1, seqs.shape[-1])), token.unsqueeze(-1)], -1)
        ends = (token == eos) & torch.isfinite(top) & (fin_count < k).unsqueeze(1)
        if bool(ends.any()):
            slot = fin_count.unsqueeze(1) + ends.long().cumsum(dim=1) - 1  # (B, k)
            b_idx, j_idx = ends.nonzero(as_tuple=True)
            s_idx = slot[b_idx, j_idx]
            fin_scores[b_idx, s_idx] = top[b_idx, j_idx] / t ** float(alpha)
            fin_seqs[b_idx, s_idx, :t] = seqs[b_idx, j_idx]
            fin_count += ends.long().sum(dim=1)
        scores = top.masked_fill(token == eos, float("-inf"))
        done = (fin_count >= k) | ~torch.isfinite(scores).any(dim=1)
        if bool(done.all()):
            break
        state = take_rows(state, (rows.unsqueeze(1) * k + beam).view(-1))
        last = token.view(-1)
    # examples where nothing finished: the best live hypothesis competes
    none = fin_count == 0
    if bool(none.any()):
        best = scores.argmax(dim=1)
        length = seqs.shape[-1]
        fin_scores[none, 0] = scores[rows, best][none] / length ** float(alpha)
        fin_seqs[none, 0, :length] = seqs[rows, best][none]
    choice = fin_scores.argmax(dim=1)
    tokens, best_scores = fin_seqs[rows, choice], fin_scores[rows, choice]
    return _trim(tokens, eos, int(pad_id)), best_scores


def _trim(tokens: Tensor, eos: int, pad: int) -> Tensor:
    """Pad everything after each row's first <eos>, then drop the all-pad columns at the end."""
    after = ((tokens == eos).long().cumsum(dim=1) - (tokens == eos).long()) > 0  # strictly after the first <eos>
    tokens = tokens.masked_fill(after, pad)
    used = (tokens != pad).any(dim=0).nonzero()
    L = int(used.max()) + 1 if used.numel() else 1
    return tokens[:, :L]
