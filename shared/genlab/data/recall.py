"""A recall task that measures how far back a sequence model remembers.

"...she found the printer was out of toner ... she finally printed her ___": the word that
fills the gap was given many words earlier. Here the gap is exact and controlled. Each
sequence has a fixed length ``T = max_distance + 2``::

    filler ... filler  KEY  filler x N  ?        -> the answer is KEY

one key character (from ``keys``) sits ``N`` filler characters before the final query mark
``?``; everything else is random filler (from ``fillers``, disjoint from the keys). A model
reads the sequence and must name the key at the last position. Chance is ``1 / len(keys)``.
Since ``T`` is fixed and ``N`` varies by row, one batch mixes every distance, and accuracy
can be read off per distance.

``train_recall`` and ``recall_accuracy`` train and score any model that maps ids ``(B, T)``
to logits ``(B, T, V)`` (or to ``(logits, state)``, as recurrent models do) with a plain
PyTorch loop: each step is tiny, and a trainer's per-step overhead would dominate.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.data import _checks
from genlab.data.vocab import Vocab

__all__ = ["RecallTask", "train_recall", "recall_accuracy"]


class RecallTask:
    """Sequences ``(B, T)`` where the answer is a key character ``N`` steps before the end.

    Args:
        max_distance: the largest N; sequences have ``T = max_distance + 2`` characters.
        keys: the characters to remember (the answers).
        fillers: the distractor characters (disjoint from ``keys`` and from ``query``).
        query: the final character that asks for the key.

    Attributes: ``vocab`` (keys, fillers, query), ``vocab_size``, ``seq_len`` (T),
    ``chance`` (1 / number of keys).
    """

    def __init__(self, max_distance: int = 48, keys: str = "ABCDEFGH",
                 fillers: str = "abcdefghijklmnopqrstuvwxyz", query: str = "?"):
        self.max_distance = _checks.positive_int("max_distance", max_distance)
        if len(set(keys)) != len(keys) or len(set(fillers)) != len(fillers) or len(keys) < 2 or not fillers:
            raise ValueError("keys (at least 2) and fillers (at least 1) must be strings of distinct characters.")
        if set(keys) & set(fillers) or query in keys or query in fillers or len(query) != 1:
            raise ValueError("keys, fillers and the one-character query must not share any character.")
        self.keys, self.fillers, self.query = keys, fillers, query
        self.vocab = Vocab(list(keys) + list(fillers) + [query])
        self.vocab_size = len(self.vocab)
        self.seq_len = self.max_distance + 2
        self.chance = 1.0 / len(keys)
        self._key_ids = self.vocab.encode(keys)
        self._filler_ids = self.vocab.encode(fillers)
        self._query_id = self.vocab.stoi[query]

    def sample(self, distances: Tensor | Sequence[int], generator: torch.Generator | None = None
               ) -> tuple[Tensor, Tensor]:
        """One sequence per entry of ``distances`` (each in 1..max_distance).

        Returns x LongTensor ``(B, T)`` and the answers LongTensor ``(B,)`` (vocabulary ids of
        the keys): ``x[b, T - 2 - distances[b]] == answers[b]`` and ``x[b, -1]`` is the query.
        """
        d = torch.as_tensor(distances, dtype=torch.long).reshape(-1)
        if d.numel() == 0 or int(d.min()) < 1 or int(d.max()) > self.max_distance:
            raise ValueError(f"distances must lie in 1..{self.max_distance}, got {d.tolist()[:8]}.")
        B, T = d.numel(), self.seq_len
        fill = torch.randint(len(self._filler_ids), (B, T), generator=generator)
        x = self._filler_ids[fill]
        answers = self._key_ids[torch.randint(len(self._key_ids), (B,), generator=generator)]
        x[torch.arange(B), T - 2 - d] = answers
        x[:, -1] = self._query_id
        return x, answers

    def batch(self, batch_size: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """A training batch: (x, answers, distances).

        Distances are log-uniform in 1..max_distance (as many rows with N in 1-2 as in 16-32),
        so short gaps, which are learned first, are common enough to get learning started.
        """
        u = torch.rand(batch_size, generator=generator)
        d = torch.exp(u * torch.log(torch.tensor(self.max_distance + 1.0))).floor().long().clamp(1, self.max_distance)
        x, answers = self.sample(d, generator)
        return x, answers, d

    def render(self, x: Tensor) -> str:
        """One sequence ``(T,)`` as text, the key in place (for printing an example)."""
        return self.vocab.decode(x.tolist())


def _last_logits(model: nn.Module, x: Tensor, context: int | None = None) -> Tensor:
    """Logits ``(B, V)`` at the last position from a model returning logits or (logits, state).

    With ``context`` the model reads only the last ``context`` characters (a Transformer's
    window): a key further back is invisible to it.
    """
    if context is not None:
        x = x[:, -int(context):]
    out = model(x)
    logits = out[0] if isinstance(out, (tuple, list)) else out
    return logits[:, -1].float()


def train_recall(model: nn.Module, task: RecallTask, steps: int, batch_size: int = 64, lr: float = 3e-3,
                 seed: int = 0, clip: float = 1.0, context: int | None = None) -> list[float]:
    """Train ``model`` on ``task`` for ``steps`` AdamW steps; the loss is the cross-entropy of
    the answer at the last position only (nothing else in a sequence is predictable).

    Returns the training loss of every step. The model stays on its device; batches are
    drawn on the CPU from ``seed`` and moved there. ``context``: see ``recall_accuracy``.
    """
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(int(seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for _ in range(int(steps)):
        x, answers, _ = task.batch(batch_size, generator)
        loss = F.cross_entropy(_last_logits(model, x.to(device), context), answers.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


@torch.no_grad()
def recall_accuracy(model: nn.Module, task: RecallTask, distances: Sequence[int], n_per_distance: int = 256,
                    seed: int = 1, context: int | None = None) -> Tensor:
    """Share of correct answers (argmax at the last position) for each distance: float ``(len(distances),)``.

    ``context``: feed only the last ``context`` characters (a model with a bounded window).
    """
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(int(seed))
    was_training = model.training
    model.eval()
    try:
        accuracy = []
        for d in distances:
            x, answers = task.sample([int(d)] * n_per_distance, generator)
            pred = _last_logits(model, x.to(device), context).argmax(-1).cpu()
            accuracy.append((pred == answers).float().mean())
    finally:
        model.train(was_training)
    return torch.stack(accuracy)
