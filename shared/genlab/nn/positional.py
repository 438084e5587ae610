"""Position encodings: attention alone has no notion of order, so positions are added.

Both modules map token embeddings ``x (B, T, d)`` to ``x + P[offset : offset + T]``.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["sinusoidal_positions", "SinusoidalPositionalEncoding", "LearnedPositionalEncoding"]


def sinusoidal_positions(T: int, d: int) -> Tensor:
    """The fixed sinusoidal table of "Attention Is All You Need", interleaved.

    ``PE[p, 2i] = sin(p / 10000^(2i/d))`` and ``PE[p, 2i+1] = cos(p / 10000^(2i/d))``.
    Returns float32 ``(T, d)`` (computed in float64, then rounded). An odd ``d`` ends with a sin column.
    """
    T, d = int(T), int(d)
    if T < 0 or d <= 0:
        raise ValueError(f"sinusoidal_positions: need T >= 0 and d > 0, got T={T}, d={d}.")
    position = torch.arange(T, dtype=torch.float64).unsqueeze(1)  # (T, 1)
    two_i = torch.arange(0, d, 2, dtype=torch.float64)  # (ceil(d/2),)
    angle = position / torch.pow(10000.0, two_i / d)  # (T, ceil(d/2))
    pe = torch.empty(T, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d // 2])
    return pe.to(torch.float32)


def _check_input(x: Tensor, d_model: int, name: str) -> None:
    if x.dim() != 3 or x.shape[-1] != d_model:
        raise ValueError(f"{name}: expected embeddings of shape (B, T, {d_model}), got {tuple(x.shape)}.")


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal table (no parameters).

    The table is precomputed for ``max_len`` positions and extended on the fly beyond that.
    ``table`` builds it: ``(T, d) -> (T, d)`` float, default ``sinusoidal_positions`` (lab 03's
    students pass theirs).
    """

    def __init__(self, d_model: int, max_len: int = 512, table: Callable[[int, int], Tensor] | None = None):
        super().__init__()
        self.d_model = d_model
        self.table = sinusoidal_positions if table is None else table
        self.register_buffer("pe", self._build(max_len), persistent=False)

    def _build(self, T: int) -> Tensor:
        pe = torch.as_tensor(self.table(T, self.d_model))
        if pe.shape != (T, self.d_model) or not pe.is_floating_point():
            raise ValueError(f"SinusoidalPositionalEncoding: the position table for T={T}, d={self.d_model} must "
                             f"be a float tensor of shape ({T}, {self.d_model}), got {pe.dtype} {tuple(pe.shape)}.")
        return pe.float()

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x: ``(B, T, d)`` -> ``x + PE[offset : offset + T]`` (same shape and dtype)."""
        _check_input(x, self.d_model, "SinusoidalPositionalEncoding")
        end = offset + x.shape[1]
        pe = self.pe if end <= self.pe.shape[0] else self._build(end).to(x.device)
        return x + pe[offset:end].to(x.dtype)


class LearnedPositionalEncoding(nn.Module):
    """A learned vector per position, ``max_len * d_model`` parameters (GPT's choice).

    The table has one row per position, so the context size ``max_len`` bounds the length of
    every sequence the model can see.
    """

    def __init__(self, d_model: int, max_len: int):
        super().__init__()
        self.d_model = d_model
        self.max_len = max_len
        self.weight = nn.Parameter(torch.zeros(max_len, d_model))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x: ``(B, T, d)`` -> ``x + W[offset : offset + T]``."""
        _check_input(x, self.d_model, "LearnedPositionalEncoding")
        end = offset + x.shape[1]
        if end > self.max_len:
            raise ValueError(
                f"sequence of {end} positions is longer than the context size max_len={self.max_len}: "
                "the context size bounds how many tokens the model sees. Crop the input to its last "
                f"{self.max_len} tokens (idx[:, -{self.max_len}:]) or build the model with a larger block_size."
            )
        return x + self.weight[offset:end]
