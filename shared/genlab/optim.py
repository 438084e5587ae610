"""Adam written from its equations, as a readable ``torch.optim.Optimizer``.

With the gradient ``g_t`` of step ``t = 1, 2, ...``::

    m_t = β1 m_{t-1} + (1 - β1) g_t            first moment (a running mean of g)
    v_t = β2 v_{t-1} + (1 - β2) g_t²           second moment (a running mean of g²)
    m̂_t = m_t / (1 - β1^t),  v̂_t = v_t / (1 - β2^t)   bias correction (m_0 = v_0 = 0)
    θ_t = θ_{t-1} - α m̂_t / (√v̂_t + ε)

Weight decay ``λ`` comes in two flavours. *Coupled* (``torch.optim.Adam``'s
``weight_decay``) adds ``λ θ`` to the gradient before the moments, so Adam's normalisation
rescales it like any other gradient. *Decoupled* (AdamW, Loshchilov and Hutter) shrinks the
weights directly, ``θ ← θ (1 - α λ)``, before the Adam update.

``adam_step`` is the whole algorithm for one tensor; ``Adam`` applies it to every parameter.

    opt = Adam(model.parameters(), lr=1e-3)                                   # torch.optim.Adam
    opt = Adam(model.parameters(), lr=1e-3, weight_decay=0.1, decoupled_weight_decay=True)  # AdamW
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

__all__ = ["adam_step", "Adam", "AdamW"]


def _check_hyperparameters(lr: float, betas, eps: float, weight_decay: float) -> tuple[float, float]:
    if not 0.0 <= lr:
        raise ValueError(f"lr must be >= 0, got {lr}.")
    try:
        beta1, beta2 = (float(b) for b in betas)
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}.") from None
    for name, beta in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {beta}; typical values are betas=(0.9, 0.999).")
    if not 0.0 <= eps:
        raise ValueError(f"eps must be >= 0, got {eps}.")
    if not 0.0 <= weight_decay:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}.")
    return beta1, beta2


def adam_step(param: Tensor, grad: Tensor, state: dict, lr: float = 1e-3,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
              weight_decay: float = 0.0, decoupled: bool = False) -> tuple[Tensor, dict]:
    """One Adam (or AdamW) step for one tensor; the arguments are not modified.

    Args:
        param: the current parameter θ_{t-1}, a float tensor of any shape.
        grad: its gradient g_t, the same shape and dtype.
        state: ``{}`` before the first step, afterwards what the previous call returned:
            ``{"t": int, "m": Tensor, "v": Tensor}`` (the step count and both moments,
            shaped like ``param``).
        lr, betas, eps: α, (β1, β2), ε.
        weight_decay: λ (0 for none).
        decoupled: False: coupled decay (``torch.optim.Adam``); True: decoupled (AdamW).

    Returns:
        ``(new_param, new_state)``: θ_t and ``{"t": t, "m": m_t, "v": v_t}``.
    """
    beta1, beta2 = _check_hyperparameters(lr, betas, eps, weight_decay)
    if not isinstance(param, Tensor) or not isinstance(grad, Tensor):
        raise TypeError(f"param and grad must be tensors, got {type(param).__name__} and {type(grad).__name__}.")
    if grad.shape != param.shape:
        raise ValueError(f"grad has shape {tuple(grad.shape)} but param has {tuple(param.shape)}; "
                         "pass each parameter with its own gradient.")
    t = int(state.get("t", 0)) + 1  # the first step is t = 1, so 1 - β^t is never 0
    m = state.get("m", torch.zeros_like(param))
    v = state.get("v", torch.zeros_like(param))

    if weight_decay and not decoupled:
        grad = grad + weight_decay * param  # coupled: decay goes through the moments
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)

    if weight_decay and decoupled:
        param = param * (1 - lr * weight_decay)  # AdamW: shrink the weights directly
    param = param - lr * m_hat / (v_hat.sqrt() + eps)  # ε outside the square root
    return param, {"t": t, "m": m, "v": v}


class Adam(torch.optim.Optimizer):
    """Adam over parameter groups, one ``adam_step`` per parameter.

    ``decoupled_weight_decay=False`` matches ``torch.optim.Adam`` and ``True`` matches
    ``torch.optim.AdamW`` (same hyperparameters, ``amsgrad=False``). The per-parameter state
    is ``{"t", "m", "v"}``; ``state_dict()`` and ``load_state_dict()`` work as usual.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False):
        _check_hyperparameters(lr, betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=bool(decoupled_weight_decay))
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("genlab's Adam does not support sparse gradients; use torch.optim.SparseAdam.")
                new_p, self.state[p] = adam_step(
                    p, p.grad, self.state[p], lr=group["lr"], betas=group["betas"], eps=group["eps"],
                    weight_decay=group["weight_decay"], decoupled=group["decoupled_weight_decay"])
                p.copy_(new_p)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay; defaults as ``torch.optim.AdamW`` (λ = 0.01)."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decoupled_weight_decay=True)
