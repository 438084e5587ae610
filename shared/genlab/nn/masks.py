"""Boolean attention masks and how scores are masked with them.

Convention (the same as ``torch.nn.functional.scaled_dot_product_attention``): a mask is a
``torch.bool`` tensor, ``True`` where a query may attend to a key (or where a token is real),
broadcastable to the score shape ``(B, H, T_q, T_k)``.

Masked scores are filled with the dtype's own minimum, never a literal such as ``-1e9``
(which overflows float16). Rows where every key is masked get weights exactly 0, so their
attention output is 0 and nothing is NaN.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "causal_mask",
    "padding_mask",
    "combine_masks",
    "check_mask",
    "fill_masked_scores",
    "additive_mask",
    "masked_softmax",
]


def causal_mask(T: int, device: torch.device | str | None = None) -> Tensor:
    """Lower-triangular mask: query ``i`` may attend to key ``j`` iff ``j <= i``.

    Returns a bool tensor of shape ``(T, T)``.
    """
    if int(T) < 0:
        raise ValueError(f"causal_mask: T must be >= 0, got {T}.")
    return torch.ones(int(T), int(T), dtype=torch.bool, device=device).tril()


def padding_mask(lengths: Tensor, T: int | None = None) -> Tensor:
    """``True`` for real tokens: position ``t`` of row ``b`` is real iff ``t < lengths[b]``.

    lengths: integer tensor ``(B,)``; T: padded length (defaults to ``lengths.max()``).
    Returns a bool tensor of shape ``(B, T)``.
    """
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1:
        raise ValueError(f"padding_mask: lengths must have shape (B,), got {tuple(lengths.shape)}.")
    if lengths.is_floating_point() or lengths.dtype == torch.bool:
        raise TypeError(f"padding_mask: lengths must be an integer tensor, got {lengths.dtype}.")
    if T is None:
        T = int(lengths.max()) if lengths.numel() else 0
    positions = torch.arange(int(T), device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def combine_masks(causal: Tensor | None, key_padding: Tensor | None) -> Tensor:
    """Combine a ``(T_q, T_k)`` causal mask with a ``(B, T_k)`` key-padding mask.

    A query may attend to a key only if both masks allow it. Returns a bool tensor
    ``(B, 1, T_q, T_k)`` (the 1 broadcasts over heads). Either mask may be ``None``:
    ``causal=None`` gives ``(B, 1, 1, T_k)``, ``key_padding=None`` gives ``(1, 1, T_q, T_k)``.
    """
    if causal is None and key_padding is None:
        raise ValueError("combine_masks: give at least one of causal and key_padding.")
    if causal is not None:
        _require_bool(causal, "causal")
        if causal.dim() != 2:
            raise ValueError(f"combine_masks: causal must have shape (T_q, T_k), got {tuple(causal.shape)}.")
    if key_padding is not None:
        _require_bool(key_padding, "key_padding")
        if key_padding.dim() != 2:
            raise ValueError(
                f"combine_masks: key_padding must have shape (B, T_k), got {tuple(key_padding.shape)}."
            )
    if causal is None:
        return key_padding[:, None, None, :]
    if key_padding is None:
        return causal[None, None, :, :]
    if causal.shape[-1] != key_padding.shape[-1]:
        raise ValueError(
            f"combine_masks: causal has T_k={causal.shape[-1]} keys but key_padding has "
            f"T_k={key_padding.shape[-1]}; both must describe the same keys."
        )
    return causal[None, None, :, :] & key_padding[:, None, None, :]


def _require_bool(mask: Tensor, name: str = "mask") -> None:
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a torch.bool tensor, got {type(mask).__name__}.")
    if mask.dtype != torch.bool:
        raise TypeError(
            f"{name} has dtype {mask.dtype}, but masks are bool with True = may attend "
            f"(False = masked out). Convert it with `{name}.bool()` (or `{name} == 0` if your "
            "mask marks positions to hide, as torch.nn.MultiheadAttention does)."
        )


def check_mask(mask: Tensor, scores_shape: torch.Size | tuple[int, ...], name: str = "mask") -> None:
    """Raise a clear error unless ``mask`` is bool and broadcastable to ``scores_shape``.

    scores_shape is the shape of the attention scores, ``(..., T_q, T_k)``.
    """
    _require_bool(mask, name)
    try:
        broadcast = torch.broadcast_shapes(mask.shape, tuple(scores_shape))
    except RuntimeError:
        broadcast = None
    if broadcast != torch.Size(scores_shape):
        raise ValueError(
            f"{name} of shape {tuple(mask.shape)} does not broadcast to the attention scores "
            f"of shape {tuple(scores_shape)} (..., T_q, T_k). Use (T_q, T_k) for a causal mask, "
            "(B, 1, 1, T_k) for key padding, or combine_masks(...) for both."
        )


def fill_masked_scores(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Scores with masked positions set to the most negative value of ``scores.dtype``.

    scores: float ``(..., T_q, T_k)``; mask: bool, broadcastable, ``True`` = keep.
    Safe in float16 and bfloat16 (no overflow). Out of place.
    """
    if mask is None:
        return scores
    check_mask(mask, scores.shape)
    return scores.masked_fill(~mask, torch.finfo(scores.dtype).min)


def additive_mask(mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """A float mask to add to scores: 0 where allowed, ``finfo(dtype).min`` where masked.

    mask: bool, any shape. Returns a tensor of the same shape and the given dtype.
    """
    _require_bool(mask)
    out = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return out.masked_fill(~mask, torch.finfo(dtype).min)


def masked_softmax(scores: Tensor, mask: Tensor | None, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` ignoring masked keys; fully masked rows give all zeros.

    scores: float ``(..., T_q, T_k)``; mask: bool broadcastable, ``True`` = may attend.
    The softmax runs in at least float32 for accuracy; the result has ``scores.dtype``.
    Masked positions are exactly 0; a row with no allowed key is all 0 (no NaN), and no
    gradient flows through it.
    """
    filled = fill_masked_scores(scores, mask)
    weights = torch.softmax(filled, dim=dim, dtype=torch.promote_types(scores.dtype, torch.float32))
    if mask is not None:
        # exp(min - max) underflows to 0 for partly masked rows; this also zeroes the
        # uniform weights softmax would give a row where every key is masked.
        weights = weights.masked_fill(~mask, 0.0)
    return weights.to(scores.dtype)
