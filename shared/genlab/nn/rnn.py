"""Recurrent building blocks in plain PyTorch (no Lightning): the LSTM cell from its gates,
a stack of cells run over time, and helpers for hidden states.

A *cell* maps one time step: ``cell(x (B, I), state) -> new_state``, where ``state`` is
``None`` (zeros) or what the cell returned at the previous step: a tensor ``h (B, H)``
(``nn.RNNCell``, ``nn.GRUCell``) or a tuple ``(h, c)`` (``nn.LSTMCell``, :class:`LSTMCell`).
The first tensor of a state is always the output ``h``.

A *layer state* (what :class:`CellStack` and ``nn.LSTM`` carry between calls) stacks the
layers on a leading axis: ``h (L, B, H)`` or ``(h, c)`` each ``(L, B, H)``.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = [
    "State",
    "LSTMCell",
    "lstm_gates",
    "CellStack",
    "make_recurrent",
    "RECURRENT_KINDS",
    "map_state",
    "detach_state",
    "state_output",
    "grad_fn_depth",
]

State = Tensor | tuple[Tensor, ...]
CellFactory = Callable[[int, int], nn.Module]
RECURRENT_KINDS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


# ---------------------------------------------------------------- hidden-state helpers

def map_state(fn: Callable[[Tensor], Tensor], state):
    """Apply ``fn`` to every tensor of a state (a tensor, a tuple/list of them, or None)."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, (tuple, list)):
        return type(state)(map_state(fn, s) for s in state)
    raise TypeError(f"a hidden state is a tensor or a tuple of tensors, got {type(state).__name__}.")


def detach_state(state):
    """The same state cut from the autograd graph: the truncation of truncated BPTT.

    The values are unchanged; gradients of later losses stop here instead of flowing back
    into the windows that produced the state.
    """
    return map_state(Tensor.detach, state)


def state_output(state) -> Tensor:
    """The output ``h`` of a cell state: the state itself, or its first tensor."""
    return state if isinstance(state, Tensor) else state[0]


def grad_fn_depth(state, limit: int = 1_000_000) -> int:
    """Length of the longest chain of autograd nodes behind a state (0 when detached).

    Without detaching, the carried state's graph grows with every window and this number
    grows with it; with detaching it stays bounded by one window's graph. Iterative (no
    recursion limit); returns ``limit`` once more than ``limit`` nodes have been seen.
    """
    depth: dict[object, int] = {}
    roots = [t.grad_fn for t in _tensors(state) if t.grad_fn is not None]
    for root in roots:
        stack = [(root, False)]
        while stack:
            node, children_done = stack.pop()
            if node in depth:
                continue
            children = [n for n, _ in node.next_functions if n is not None]
            if children_done:
                depth[node] = 1 + max((depth[n] for n in children), default=0)
                if len(depth) > limit:
                    return limit
            else:
                stack.append((node, True))
                stack.extend((n, False) for n in children if n not in depth)
    return max((depth[r] for r in roots), default=0)


def _tensors(state) -> list[Tensor]:
    if state is None:
        return []
    if isinstance(state, Tensor):
        return [state]
    return [t for s in state for t in _tensors(s)]


# ---------------------------------------------------------------- the LSTM cell

def lstm_gates(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
               bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The four activated gates of an LSTM step, in ``nn.LSTMCell``'s row order i, f, g, o.

    x ``(B, I)``, h ``(B, H)``, weight_ih ``(4H, I)``, weight_hh ``(4H, H)``, biases ``(4H,)``.
    Returns i, f, o = sigmoid(...) and g = tanh(...), each ``(B, H)``.
    """
    z = x @ weight_ih.T + h @ weight_hh.T
    if bias_ih is not None:
        z = z + bias_ih
    if bias_hh is not None:
        z = z + bias_hh
    zi, zf, zg, zo = z.chunk(4, dim=-1)
    return torch.sigmoid(zi), torch.sigmoid(zf), torch.tanh(zg), torch.sigmoid(zo)


class LSTMCell(nn.Module):
    """One LSTM step written from its gate equations; drop-in for ``nn.LSTMCell``.

    ``i = σ(W_ii x + b_ii + W_hi h + b_hi)`` (input gate: how much to write),
    ``f = σ(...)`` (forget gate: how much of c to keep), ``g = tanh(...)`` (candidate),
    ``o = σ(...)`` (output gate: how much of the memory to read out), then
    ``c' = f ⊙ c + i ⊙ g`` and ``h' = o ⊙ tanh(c')``.

    Parameters have ``nn.LSTMCell``'s names, shapes and gate order (i, f, g, o), so the two
    load each other's ``state_dict``. forward: x ``(B, I)`` or unbatched ``(I,)``, state
    ``(h, c)`` each ``(B, H)`` or None (zeros) -> ``(h', c')`` each ``(B, H)``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/√H, 1/√H) for every parameter, as torch does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def gates(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> dict[str, Tensor]:
        """The gates and states of one step: ``i, f, g, o, c, h`` (each ``(B, H)``), for figures."""
        h, c = self._state(x, state)
        i, f, g, o = lstm_gates(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        c = f * c + i * g
        return {"i": i, "f": f, "g": g, "o": o, "c": c, "h": o * torch.tanh(c)}

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        unbatched = x.dim() == 1
        if unbatched:
            x = x.unsqueeze(0)
            state = None if state is None else tuple(s.unsqueeze(0) for s in state)
        if x.dim() != 2 or x.shape[-1] != self.input_size:
            raise ValueError(f"LSTMCell expects x of shape (B, {self.input_size}), got {tuple(x.shape)}.")
        out = self.gates(x, state)
        h, c = out["h"], out["c"]
        return (h[0], c[0]) if unbatched else (h, c)

    def _state(self, x: Tensor, state) -> tuple[Tensor, Tensor]:
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            return zeros, zeros
        if not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise ValueError("the LSTM state is a pair (h, c) of (B, hidden_size) tensors, or None for zeros.")
        return state[0], state[1]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih is not None}"


# ---------------------------------------------------------------- running a cell over time

class CellStack(nn.Module):
    """``num_layers`` cells run over a sequence, a Python loop over time.

    ``cell`` is a factory ``cell(input_size, hidden_size) -> module`` (a class such as
    ``nn.GRUCell`` or a student's ``LSTMCell``). Dropout acts between layers, as in ``nn.LSTM``.

    forward: x ``(B, T, I)``, state a layer state (``(L, B, H)`` or a tuple of them) or None
    -> outputs ``(B, T, H)`` (the last layer's h at every step) and the final layer state.
    """

    def __init__(self, cell: CellFactory, input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        self.cells = nn.ModuleList(
            cell(input_size if layer == 0 else hidden_size, hidden_size) for layer in range(num_layers)
        )
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        if x.dim() != 3:
            raise ValueError(f"CellStack expects x of shape (B, T, input_size), got {tuple(x.shape)}.")
        layer_states = _unstack(state, self.num_layers)
        inputs = x
        for layer, cell in enumerate(self.cells):
            s = layer_states[layer]
            outputs = []
            for t in range(inputs.shape[1]):
                s = cell(inputs[:, t], s)
                outputs.append(state_output(s))
            layer_states[layer] = s
            inputs = torch.stack(outputs, dim=1)
            if layer < self.num_layers - 1:
                inputs = self.dropout(inputs)
        return inputs, _stack(layer_states)


def _unstack(state, num_layers: int) -> list:
    if state is None:
        return [None] * num_layers
    if isinstance(state, Tensor):
        return list(state.unbind(0))
    return [tuple(parts) for parts in zip(*(s.unbind(0) for s in state), strict=False)]


def _stack(states: list):
    first = states[0]
    if isinstance(first, Tensor):
        return torch.stack(states, 0)
    return tuple(torch.stack(parts, 0) for parts in zip(*states, strict=False))


class _TorchRecurrent(nn.Module):
    """``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` (fused, batch-first) behind the CellStack interface."""

    def __init__(self, kind: str, input_size: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        self.kind = kind
        self.rnn = RECURRENT_KINDS[kind](input_size, hidden_size, num_layers=num_layers, batch_first=True,
                                         dropout=dropout if num_layers > 1 else 0.0)
        self.hidden_size, self.num_layers = hidden_size, num_layers

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        if state is not None and x.dtype != state_output(state).dtype:
            state = map_state(lambda s: s.to(x.dtype), state)  # fused kernels want one dtype
        return self.rnn(x, state)


def make_recurrent(cell: str | CellFactory, input_size: int, hidden_size: int, num_layers: int = 1,
                   dropout: float = 0.0) -> nn.Module:
    """A sequence module ``(x (B, T, I), state) -> (out (B, T, H), state)``.

    cell: ``"rnn"`` (tanh), ``"gru"`` or ``"lstm"`` give torch's fused modules; a class or
    factory ``cell(input_size, hidden_size)`` (for example :class:`LSTMCell`) is run step by
    step by :class:`CellStack`. States follow torch's layout, ``(L, B, H)`` per tensor.
    """
    if isinstance(cell, str):
        kind = cell.lower()
        if kind not in RECURRENT_KINDS:
            raise ValueError(f"cell must be one of {sorted(RECURRENT_KINDS)} or a cell class, got {cell!r} (a "
                             "checkpoint trained with your own cell class needs cell=YourCell when it is loaded).")
        return _TorchRecurrent(kind, input_size, hidden_size, num_layers, dropout)
    if not callable(cell):
        raise TypeError(f"cell must be 'rnn', 'gru', 'lstm' or a callable cell(input_size, hidden_size), "
                        f"got {type(cell).__name__}.")
    return CellStack(cell, input_size, hidden_size, num_layers, dropout)
