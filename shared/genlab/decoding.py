"""Choosing the next token from logits: greedy, temperature, top-k, top-p (nucleus).

Logits are ``(..., V)``; filters return logits of the same shape with removed tokens set
to ``-inf``. Every random function takes an explicit ``torch.Generator``.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["SampleFn", "greedy", "apply_temperature", "top_k_filter", "top_p_filter", "sample_next"]

#: What the models' ``generate`` call for each new token: ``sampler(logits (B, V), temperature=,
#: top_k=, top_p=, generator=) -> (B,)`` long (``sample_next``, or lab 01's own).
SampleFn = Callable[..., Tensor]


def greedy(logits: Tensor) -> Tensor:
    """The most likely token: ``(..., V) -> (...,)`` long (first index on ties)."""
    return logits.argmax(dim=-1)


def apply_temperature(logits: Tensor, temperature: float) -> Tensor:
    """``logits / T``, so that ``softmax`` gives ``softmax(x / T)``.

    T < 1 sharpens, T > 1 flattens. ``T = 0`` is the limit T -> 0: only the argmax keeps a
    finite logit (0), so sampling from the result is greedy. Negative T is an error.
    """
    temperature = float(temperature)
    if temperature < 0 or temperature != temperature:
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}.")
    if temperature == 0.0:
        out = torch.full_like(logits, float("-inf"))
        return out.scatter(-1, greedy(logits).unsqueeze(-1), 0.0)
    return logits / temperature


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the ``k`` largest logits per row, set the rest to ``-inf``.

    Tokens tied with the k-th largest value are kept too. ``k >= V`` keeps everything.
    """
    k = int(k)
    if k <= 0:
        raise ValueError(f"top_k must be a positive integer, got {k}.")
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability reaches ``p``.

    A token is kept if the probability mass of the tokens strictly more likely than it is
    below ``p``; so the top token is always kept. ``p = 1`` keeps everything.
    """
    p = float(p)
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {p}.")
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits.float(), dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above
    remove_sorted = mass_before >= p
    remove_sorted[..., 0] = False
    remove = remove_sorted.scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def sample_next(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sample one token per row from ``logits (B, V)``: returns long ``(B,)``.

    Applies temperature, then top-k, then top-p, then samples from the softmax (computed in
    float32) with ``generator``. ``temperature=0`` returns the argmax without sampling.
    """
    if logits.dim() != 2:
        raise ValueError(f"sample_next: logits must have shape (B, V), got {tuple(logits.shape)}.")
    if float(temperature) == 0.0:
        apply_temperature(logits, 0.0)  # validates
        return greedy(logits)
    logits = apply_temperature(logits.float(), temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = torch.softmax(logits, dim=-1)
    if generator is not None and generator.device.type != probs.device.type:
        # a CPU generator with a CUDA model (or the reverse): sample where the generator lives
        sample = torch.multinomial(probs.to(generator.device), num_samples=1, generator=generator)
        return sample.squeeze(-1).to(probs.device)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)
