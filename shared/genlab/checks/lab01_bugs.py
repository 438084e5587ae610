"""Recognise the usual bugs of lab 01's graded parts from what they return.

Each ``name_*_bug`` function compares a result with the right answer and with what the
common mistakes would have produced, and returns a hint naming the likely bug (``None``
when the result is right). The notebook's public checks and the hidden tests both use
them, so a student reads the same words in both places. Nothing here calls student code.

The oracles are independent of what a student writes: ``torch.nn.LSTMCell`` and the LSTM
equations in float64, the negative log-likelihood in float64, torch's own recurrent
modules (``ProbeLM``), and exact categorical distributions for sampling. The ``*_formula``
functions with a ``variant`` argument reproduce the mistakes, to name them.

Every function that computes a right answer or a bug's output is an ``@oracle``
(``genlab.checks.recorded``): the student build answers it from the lab's recording, so it
must be called on the checks' own fixed inputs, and its results compared with
``close``/``same`` only.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from genlab.checks.kit import close, describe, same, tensors
from genlab.checks.recorded import oracle

__all__ = [
    "stream_formula",
    "name_stream_bug",
    "lstm_formula",
    "lstm_cell_reference",
    "name_lstm_bug",
    "loss_formula",
    "loss_gradient_formula",
    "name_loss_bug",
    "ProbeLM",
    "probe_windows",
    "tbptt_reference",
    "name_tbptt_bug",
    "sampling_probs",
    "greedy_formula",
    "name_sampling_bug",
    "chi_square_pvalue",
]

LSTM_SPLIT_HINT = ("(Split the (B, 4H) gate pre-activations along the feature axis, z.chunk(4, dim=1), into four "
                   "(B, H) blocks i, f, g, o.)")
LOSS_FLATTEN_HINT = ("(F.cross_entropy wants logits (N, V) and targets (N,): flatten (B, T, V) to (B·T, V) with "
                     "reshape(B * T, V) and the targets to (B·T,).)")
PART3_NOTE = "(Part 4 scores windows with your lm_loss: if part 3's checks fail, fix those first.)"


# ---------------------------------------------------------------- 1. stream_batches

@oracle
def stream_formula(ids: Tensor, B: int, T: int) -> list[tuple[Tensor, Tensor]]:
    """The documented windows: B streams of L = (N - 1) // B inputs, windows of T columns, the
    last one shorter when T does not divide L. Written with explicit indices (no views)."""
    L = (ids.numel() - 1) // B
    out = []
    for start in range(0, L, T):
        width = min(T, L - start)
        cols = torch.arange(start, start + width)
        pos = torch.arange(B)[:, None] * L + cols[None, :]  # position of x[i, t] in the corpus
        out.append((ids[pos], ids[pos + 1]))
    return out


def name_stream_bug(batches, ids: Tensor, B: int, T: int) -> str | None:
    """None if ``batches`` are the documented windows of ``ids``; otherwise the likely bug.

    Most helpful when ``ids`` is ``offset + arange(N)`` (each id names its position), which
    the checks use: then the positions a window read can be decoded from its values.
    """
    want = stream_formula(ids, B, T)
    L = (ids.numel() - 1) // B
    if not isinstance(batches, (list, tuple)):
        return (f"stream_batches should yield (x, y) pairs (use `yield x, y` in a loop, or return a list); "
                f"got {describe(batches)}.")
    for k, pair in enumerate(batches):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            return f"window {k} should be a pair (x, y), got {describe(pair)}."
        x, y = pair
        if not (isinstance(x, Tensor) and isinstance(y, Tensor)):
            return f"window {k} should hold two tensors (x, y), got {describe(x)} and {describe(y)}."
        if x.dtype != torch.long or y.dtype != torch.long:
            return (f"x and y must stay integer token ids (torch.long), got {x.dtype} and {y.dtype}: do not convert "
                    "them to float (an embedding layer needs integer indices).")
        if x.dim() != 2 or x.shape[0] != B or y.shape != x.shape:
            return (f"each window should be two (B, T) = ({B}, ...) tensors, one row per stream; window {k} has x "
                    f"{tuple(x.shape)} and y {tuple(y.shape)}. Cut the corpus into B rows first (a (B, L) view), "
                    "then take columns.")
    positional = bool((ids[1:] - ids[:-1] == 1).all())
    if positional and batches:
        hint = _positional_stream_hint(batches, ids, B, T, L)
        if hint is not None:
            return hint
    widths = [int(x.shape[1]) for x, _ in batches]
    want_widths = [int(x.shape[1]) for x, _ in want]
    if widths != want_widths:
        return _width_hint(widths, want_widths, L, T)
    for k, ((x, y), (wx, wy)) in enumerate(zip(batches, want, strict=False)):
        if not same(x, wx):
            return (f"window {k}'s inputs x are not the documented ones: row i must read stream i, the corpus "
                    f"positions [i*L, (i+1)*L) with L = (N - 1) // B, and window k its columns [k*T, (k+1)*T).")
        if not same(y, wy):
            return f"window {k}'s targets y are wrong: y[:, t] must be the token right after x[:, t]."
    return None


STREAM_SHAPE_HINT = ("(A shape error here usually means the streams are cut with N // B tokens: each stream holds "
                     "L = (N - 1) // B inputs, so that its last input still has a target after it.)")


def _positional_stream_hint(batches, ids: Tensor, B: int, T: int, L: int) -> str | None:
    base = int(ids[0])
    x0, y0 = batches[0]
    pos_x, pos_y = x0 - base, y0 - base
    diff = pos_y - pos_x
    if bool((diff == 0).all()):
        return "y equals x: the targets were not shifted. y[:, t] must be the NEXT token, ids[p + 1] for x = ids[p]."
    if bool((diff == 2).all()):
        return ("y is shifted by two positions (the targets skip a token): y[:, t] is the token right after x[:, t], "
                "so shift once, by exactly one.")
    if bool((diff == -1).all()):
        return "y is shifted the wrong way (y is the PREVIOUS token): y[:, t] = ids[p + 1] for x[:, t] = ids[p]."
    if not bool((diff == 1).all()):
        return "y should be x shifted by one position: y[:, t] is the token that follows x[:, t] in the corpus."
    if x0.shape[1] > 1 and bool((pos_x[:, 1] - pos_x[:, 0] == B).all()) and B > 1:
        return ("each row jumps B positions per column: the corpus was reshaped as (L, B) and transposed, so row i "
                "reads every B-th token. A row must be one contiguous stretch of text: view the corpus as (B, L).")
    starts = pos_x[:, 0]
    if B > 1 and bool((starts[1:] - starts[:-1] == x0.shape[1]).all()) and int(starts[1] - starts[0]) != L:
        return ("the rows of the first window are consecutive chunks of T tokens: that is one stream cut into pieces, "
                "not B streams. Row i must start at position i*L, with L = (N - 1) // B tokens per stream.")
    if B > 1 and int(starts[1] - starts[0]) != L:
        per = int(starts[1] - starts[0])
        if per == ids.numel() // B:
            return (f"each stream holds N // B = {per} tokens, but it also needs the target after its last input: "
                    f"use L = (N - 1) // B = {L} inputs per stream.")
        return f"row i should start at position i*L with L = (N - 1) // B = {L} (the streams start {per} apart)."
    for k in range(1, len(batches)):
        prev, cur = batches[k - 1][0] - base, batches[k][0] - base
        if cur.shape[1] == 0 or prev.shape[1] == 0:
            break
        if bool((cur[:, 0] == prev[:, 0] + 1).all()) and prev.shape[1] > 1:
            return ("consecutive windows overlap (window k+1 starts one token after window k): advance by T "
                    "columns per window, so every token is read once.")
        if not bool((cur[:, 0] == prev[:, -1] + 1).all()):
            return (f"window {k} does not continue where window {k - 1} stopped: row i of window k+1 must start "
                    "with the token right after the end of row i of window k (x_{k+1}[:, 0] == y_k[:, -1]), "
                    "or the carried hidden state meets text it has not read.")
    return None


def _width_hint(widths: list[int], want: list[int], L: int, T: int) -> str:
    if L % T and widths == want[:-1]:
        return (f"the last, shorter window is missing: each stream has L = {L} inputs, {L // T} full windows of {T} "
                f"and a last one of {L % T}. Yield it too (as documented), without padding.")
    if L % T and len(widths) == len(want) and widths[-1] == T:
        return f"the last window should be shorter ({L % T} columns), not padded or filled to {T}."
    if widths and widths[0] != T:
        return f"windows should have T = {T} columns (the last may be shorter), got {widths[0]} in the first one."
    return (f"expected {len(want)} windows of widths {want[:3]}{'...' if len(want) > 3 else ''} "
            f"(L = (N - 1) // B = {L} inputs per stream, T = {T}), got {len(widths)}.")


# ---------------------------------------------------------------- 2. LSTMCell

LSTM_VARIANTS = ("swap_input_forget", "sigmoid_candidate", "tanh_gates", "no_output_tanh", "old_cell",
                 "gate_order_ifog", "no_input_gate", "no_hidden_bias", "coupled_gates")


@oracle
def lstm_formula(x: Tensor, state, weights: dict, variant: str = "right") -> tuple[Tensor, Tensor]:
    """One LSTM step in float64 from ``nn.LSTMCell``'s weights, or one of its usual bugs.

    variant: "right", "swap_input_forget" (f and i exchanged), "sigmoid_candidate" (g with
    sigmoid), "tanh_gates" (tanh on the gates and sigmoid on the candidate), "no_output_tanh"
    (h = o·c), "old_cell" (h from the previous c), "gate_order_ifog" (rows read as i, f, o, g),
    "no_input_gate" (c = f·c + g), "no_hidden_bias" (bias_hh left out), "coupled_gates"
    (c = f·c + (1 - f)·g).
    """
    w = {k: v.double() for k, v in weights.items()}
    x = x.double()
    H = w["weight_hh"].shape[1]
    h, c = (torch.zeros(x.shape[0], H, dtype=torch.float64),) * 2 if state is None else (s.double() for s in state)
    z = x @ w["weight_ih"].T + h @ w["weight_hh"].T + w["bias_ih"]
    if variant != "no_hidden_bias":
        z = z + w["bias_hh"]
    zi, zf, zg, zo = z.split(H, dim=-1)
    if variant == "gate_order_ifog":
        zg, zo = zo, zg
    gate, cand = (torch.tanh, torch.sigmoid) if variant == "tanh_gates" else (torch.sigmoid, torch.tanh)
    i, f, o = gate(zi), gate(zf), gate(zo)
    g = torch.sigmoid(zg) if variant == "sigmoid_candidate" else cand(zg)
    if variant == "swap_input_forget":
        i, f = f, i
    if variant == "no_input_gate":
        c_new = f * c + g
    elif variant == "coupled_gates":
        c_new = f * c + (1 - f) * g
    else:
        c_new = f * c + i * g
    if variant == "no_output_tanh":
        h_new = o * c_new
    elif variant == "old_cell":
        h_new = o * torch.tanh(c)
    else:
        h_new = o * torch.tanh(c_new)
    return h_new, c_new


@oracle
def lstm_cell_reference(x: Tensor, state, weights: dict) -> dict:
    """What ``torch.nn.LSTMCell`` loaded with ``weights`` gives for ``x (B, I)`` and
    ``state = (h, c)``, each ``(B, H)``: ``h``, ``c`` and ``grads``, the gradients of
    ``h.square().sum() + c.sum()`` with respect to ``"x"`` and to each parameter (by name)."""
    ref = nn.utils.skip_init(nn.LSTMCell, x.shape[-1], weights["weight_hh"].shape[1])  # no draw from the global RNG
    ref.load_state_dict(weights)
    x = x.clone().requires_grad_(True)
    with torch.enable_grad():
        h, c = ref(x, state)
        (h.square().sum() + c.sum()).backward()
    grads = {"x": x.grad, **{name: p.grad for name, p in ref.named_parameters()}}
    return {"h": h.detach(), "c": c.detach(), "grads": grads}


LSTM_HINTS = {
    "swap_input_forget": ("the input and forget gates are exchanged: the forget gate f (rows H..2H) multiplies the old "
                          "cell state, c' = f * c + i * g, and the input gate i (rows 0..H) scales the candidate."),
    "sigmoid_candidate": ("the candidate g uses a sigmoid; it takes tanh (values in (-1, 1), so the memory can also "
                          "decrease), while the three gates i, f, o take sigmoid."),
    "tanh_gates": ("tanh and sigmoid are swapped: the gates i, f, o are sigmoids (0 = closed, 1 = open) and the "
                   "candidate g is a tanh."),
    "no_output_tanh": "h' = o * tanh(c'), not o * c': squash the new cell state with tanh before the output gate.",
    "old_cell": "h' must use the NEW cell state: compute c' = f * c + i * g first, then h' = o * tanh(c').",
    "gate_order_ifog": ("the gate blocks are read in the wrong order: nn.LSTMCell stacks the rows as i, f, g, o "
                        "(input, forget, cell candidate, output), so the third block is g and the fourth is o."),
    "no_input_gate": "the candidate is added without the input gate: c' = f * c + i * g.",
    "no_hidden_bias": ("bias_hh is missing: nn.LSTMCell adds two biases, W_ih x + b_ih + W_hh h + b_hh; add "
                       "self.bias_hh too."),
    "coupled_gates": ("the input gate was replaced by (1 - f): that is a coupled-gate variant (like a GRU), not the "
                      "LSTM; use the input gate i from rows 0..H."),
}


def name_lstm_bug(got, x: Tensor, state, weights: dict, atol: float = 1e-5) -> str | None:
    """None if ``got`` is ``(h', c')`` of one LSTM step; otherwise a hint naming the likely bug."""
    shape = (x.shape[0], weights["weight_hh"].shape[1])
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return f"LSTMCell.forward should return the pair (h, c), each of shape {shape}; got {describe(got)}."
    h, c = got
    for name, t in (("h", h), ("c", c)):
        if not isinstance(t, Tensor):
            return f"{name} should be a tensor of shape {shape}, got {describe(t)}."
        if tuple(t.shape) != shape:
            return (f"{name} should have shape {shape} (B, hidden_size), got {tuple(t.shape)}. Split the (B, 4H) gate "
                    "pre-activations along dim 1 (the last axis) into four (B, H) blocks.")
        if t.dtype != x.dtype:
            return f"{name} should keep the input's dtype {x.dtype}, got {t.dtype}: do not cast inside the cell."
    want_h, want_c = lstm_formula(x, state, weights)
    if close(h, want_h, atol) and close(c, want_c, atol):
        return None
    if not (torch.isfinite(h).all() and torch.isfinite(c).all()):
        return "h or c contains inf or NaN."
    for variant in LSTM_VARIANTS:
        vh, vc = lstm_formula(x, state, weights, variant)
        if close(h, vh, atol) and close(c, vc, atol):
            return LSTM_HINTS[variant]
    if close(h, want_c, atol) and close(c, want_h, atol):
        return "h and c are returned in the wrong order: return (h, c), the output first, then the cell state."
    if close(c, want_c, atol):
        return "c' is right but h' is not: h' = o * tanh(c'), with the output gate o = sigmoid of rows 3H..4H."
    err = max((h.double() - want_h).abs().max().item(), (c.double() - want_c).abs().max().item())
    return (f"(h', c') differ from nn.LSTMCell with the same weights (largest error {err:.3g}). Gates: z = x W_ihᵀ + "
            "b_ih + h W_hhᵀ + b_hh, split into i, f, g, o (in that order); i, f, o = sigmoid, g = tanh; "
            "c' = f * c + i * g; h' = o * tanh(c').")


# ---------------------------------------------------------------- 3. lm_loss

LOSS_VARIANTS = ("sum", "mean_over_batch", "mean_over_time", "softmax_then_cross_entropy", "shifted_again",
                 "no_log_softmax", "probabilities_not_log")


@oracle
def loss_formula(logits: Tensor, targets: Tensor, variant: str = "right") -> Tensor:
    """The next-token loss in float64, or one of its usual bugs.

    variant: "right" (mean over B·T), "sum", "mean_over_batch" (summed over time, averaged over
    the batch), "mean_over_time", "softmax_then_cross_entropy" (cross-entropy of
    probabilities), "shifted_again" (targets shifted once more), "no_log_softmax" (−logit of
    the target), "probabilities_not_log" (−p of the target).
    """
    return _next_token_loss(logits, targets, variant)


def _next_token_loss(logits: Tensor, targets: Tensor, variant: str = "right") -> Tensor:
    """``loss_formula``'s body: ``logits (B, T, V)``, ``targets (B, T)`` -> a 0-d float64 loss."""
    z = logits.double()
    if variant == "shifted_again":
        z, targets = z[:, :-1], targets[:, 1:]
    if variant == "softmax_then_cross_entropy":
        z = torch.softmax(z, -1)
    if variant == "no_log_softmax":
        picked = -z.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    elif variant == "probabilities_not_log":
        picked = -torch.softmax(z, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    else:
        picked = -torch.log_softmax(z, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    if variant == "sum":
        return picked.sum()
    if variant == "mean_over_batch":
        return picked.sum(1).mean()
    if variant == "mean_over_time":
        return picked.sum(0).mean()
    return picked.mean()


@oracle
def loss_gradient_formula(logits: Tensor, targets: Tensor) -> Tensor:
    """The gradient of the mean loss with respect to ``logits (B, T, V)``, float64:
    ``(softmax(logits) - onehot(targets)) / (B·T)``."""
    z = logits.detach().double()
    onehot = nn.functional.one_hot(targets, z.shape[-1]).double()
    return (torch.softmax(z, -1) - onehot) / targets.numel()


LOSS_HINTS = {
    "sum": ("the loss is summed instead of averaged: divide by the number of predictions B·T (the mean over batch "
            "AND time), so the loss does not grow with the batch size or the window length."),
    "mean_over_batch": ("the loss is summed over time and averaged only over the batch: average over every "
                        "position, B·T predictions (flatten to (B·T, V) and (B·T,) first)."),
    "mean_over_time": "the loss is averaged over time but summed over the batch: average over all B·T predictions.",
    "softmax_then_cross_entropy": ("softmax was applied before the cross-entropy, which applies log-softmax itself: "
                                   "pass the raw logits (a double softmax flattens the distribution)."),
    "shifted_again": ("the targets were shifted once more: stream_batches already made y[:, t] the token after "
                      "x[:, t], so compare logits[:, t] with targets[:, t] directly."),
    "no_log_softmax": ("the loss uses the raw logit of the target: take log_softmax over the vocabulary first "
                       "(or use F.cross_entropy, which does it)."),
    "probabilities_not_log": "the loss averages −p(target); cross-entropy is −log p(target) (use log_softmax).",
}


def name_loss_bug(got, logits: Tensor, targets: Tensor, atol: float = 1e-4) -> str | None:
    """None if ``got`` is the mean next-token cross-entropy as a float32 scalar tensor."""
    want = loss_formula(logits, targets)
    if not isinstance(got, Tensor):
        return (f"lm_loss should return a tensor (a 0-d float32 scalar that backward() can use), got {describe(got)}; "
                "do not call .item() or float() on it.")
    if got.numel() != 1 or got.dim() != 0:
        return (f"lm_loss should return one number, a 0-d tensor, got shape {tuple(got.shape)}: average over every "
                "position (reduction='mean'), or call .mean().")
    if got.dtype != torch.float32:
        return (f"lm_loss should return float32, got {got.dtype}: cast the logits with logits.float() before the "
                "cross-entropy, so a half-precision model still gets an accurate float32 loss.")
    if not bool(torch.isfinite(got)):
        return ("the loss is inf or NaN. With float16 logits, log(softmax(x)) underflows to log(0) = -inf: cast to "
                "float32 first and use log_softmax (or F.cross_entropy), which never takes log(0).")
    if close(got, want, atol):
        return None
    for variant in LOSS_VARIANTS:
        if variant == "shifted_again" and logits.shape[1] < 2:
            continue
        if close(got, loss_formula(logits, targets, variant), atol):
            return LOSS_HINTS[variant]
    err = abs(float(got.detach()) - float(want))
    return (f"the loss differs from the mean cross-entropy −(1/BT) Σ log softmax(logits)[target] by {err:.3g}. "
            "Flatten logits to (B·T, V) and targets to (B·T,) in the same order (reshape, not transpose).")


# ---------------------------------------------------------------- 4. tbptt_step

class ProbeLM(nn.Module):
    """A tiny language model built on torch's own recurrent modules, for checking tbptt_step.

    ``model(x (B, T), hidden) -> (logits (B, T, V), hidden)``; ``kind`` is "lstm" (state
    ``(h, c)``), "gru" or "rnn" (state ``h``). With ``record=True`` it keeps every window's
    embedding output (with ``retain_grad``) in ``self.inputs``, so a check can see whether a
    later loss sends gradient into an earlier window.
    """

    KINDS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}

    def __init__(self, kind: str = "lstm", vocab_size: int = 9, embedding_dim: int = 6, hidden_size: int = 8):
        super().__init__()
        self.kind = kind
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = self.KINDS[kind](embedding_dim, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)
        self.record, self.inputs = False, []

    def forward(self, x: Tensor, hidden=None):
        e = self.embedding(x)
        if self.record and e.requires_grad:
            e.retain_grad()
            self.inputs.append(e)
        out, hidden = self.rnn(e, hidden)
        return self.head(out), hidden


def probe_windows(seed: int, vocab_size: int = 9, B: int = 3, T: int = 5, n: int = 4) -> list[tuple[Tensor, Tensor]]:
    """``n`` contiguous (x, y) windows ``(B, T)`` of a random corpus (written out by index)."""
    g = torch.Generator().manual_seed(seed)
    L = n * T
    ids = torch.randint(vocab_size, (B * L + 1,), generator=g)
    rows = torch.stack([ids[i * L: i * L + L + 1] for i in range(B)])
    return [(rows[:, k * T:(k + 1) * T].clone(), rows[:, k * T + 1:(k + 1) * T + 1].clone()) for k in range(n)]



@oracle
def tbptt_reference(model: nn.Module, windows: Sequence[tuple[Tensor, Tensor]]) -> dict:
    """What a correct tbptt_step gives on ``windows`` (``(x, y)`` pairs, each ``(B, T)``) from a
    zero state, and what the usual bugs give: ``losses`` (carried state; 0-d float32 tensors),
    ``fresh_losses`` (state reset each window), ``stale_losses`` (the first window's state
    reused), ``states`` (flat lists of tensors), ``logits`` (``(B, T, V)`` of each window).

    ``model``: a ``ProbeLM`` with the check's fixed weights (the recording knows it by them)."""
    losses, fresh, stale, states, logits_all, hidden = [], [], [], [], [], None
    first_state = None
    with torch.no_grad():
        for k, (x, y) in enumerate(windows):
            logits, new = model(x, hidden)
            logits_all.append(logits.float())
            losses.append(_next_token_loss(logits, y).float())
            fresh.append(_next_token_loss(model(x, None)[0], y).float())
            stale.append(_next_token_loss(model(x, first_state)[0], y).float() if k > 0 else losses[0])
            states.append([t.detach().clone() for t in tensors(new)])
            hidden = new
            first_state = first_state if first_state is not None else new
    return {"losses": losses, "fresh_losses": fresh, "stale_losses": stale, "states": states, "logits": logits_all}


def name_tbptt_bug(obs: dict, ref: dict, own_losses: Sequence[float] | None = None, atol: float = 1e-4) -> str | None:
    """Name the bug behind the observations of ``genlab.checks.lab01.observe_tbptt``.

    ref: ``tbptt_reference`` on the same model and windows. own_losses: the student's own
    lm_loss on the reference logits (so part 4 is judged apart from part 3), if known.
    """
    error, stage = obs.get("error"), obs.get("error_stage", "")
    if error and (stage.startswith("window") or not obs.get("first")):
        return _tbptt_error_hint(error, stage)
    first = obs["first"]
    if first.get("type") != "tuple2":
        return (f"tbptt_step should return (loss, new_hidden), got {first.get('type')}: return the window's loss and "
                "the state to carry into the next window.")
    if not first.get("loss_is_tensor") or first.get("loss_shape") != ():
        return (f"the loss should be a 0-d tensor that backward() can use, got {first.get('loss_desc')}; keep it a "
                "tensor (no .item()).")
    if not first.get("loss_requires_grad"):
        return ("the loss is cut from the model (it has no grad_fn): detach the HIDDEN STATE, not the loss or the "
                "logits, so that backward() still reaches the parameters through this window.")
    if first.get("loss_dtype") != "torch.float32":
        return f"the loss should be float32, got {first.get('loss_dtype')}. {PART3_NOTE}"
    if first.get("state_count") != len(ref["states"][0]):
        return (f"new_hidden should have the structure the model returned ({len(ref['states'][0])} tensor(s): "
                f"{'(h, c)' if len(ref['states'][0]) == 2 else 'h'}), got {first.get('state_count')} tensor(s).")
    losses = [_scalar(v) for v in obs.get("losses") or []]
    want = ref["losses"]
    own = [_scalar(v) for v in own_losses] if own_losses is not None else want

    def near(got: Tensor, expected) -> bool:   # |got - expected| <= atol·(1 + |expected|)
        return close(got, expected, atol, rtol=atol)

    if not near(losses[0], want[0]) and not near(losses[0], own[0]):
        return (f"the loss of the first window (from a zero state) is not lm_loss(model(x, hidden)[0], y) "
                f"(off by {abs(float(losses[0]) - float(want[0])):.3g}): score the model's logits for this window "
                f"against its targets y. {PART3_NOTE}")
    for k in range(1, len(losses)):
        if near(losses[k], want[k]) or near(losses[k], own[k]):
            continue
        if near(losses[k], ref["fresh_losses"][k]):
            return ("the state is not carried: every window starts from zeros (hidden=None), so the model forgets the "
                    "text it just read. Pass the incoming hidden to the model and return the model's NEW state.")
        if near(losses[k], ref["stale_losses"][k]):
            return ("the state does not advance: tbptt_step returns the state it was given instead of the model's new "
                    "final state, so every window restarts from the same point.")
        return (f"the loss of window {k} does not match the model run from the state carried from window {k - 1}. "
                "Run model(x, hidden) with the incoming state and return the state it gives back.")
    for k, (got, wanted) in enumerate(zip(obs.get("states") or [], ref["states"], strict=False)):
        if len(got) != len(wanted) or not all(close(g, w, atol) for g, w in zip(got, wanted, strict=False)):
            return (f"the state returned after window {k} is not the model's final state: return the second output "
                    "of model(x, hidden), detached (same values, cut from the graph).")
    if error:
        return _tbptt_error_hint(error, stage)
    if not obs.get("incoming_unchanged", True):
        return ("the hidden state passed in was modified in place: detach with .detach() (a new tensor), not "
                ".detach_() or in-place arithmetic, so the caller's tensors keep their values.")
    crossed = obs.get("crossed")
    if crossed is not None and crossed > 0:
        parts = obs.get("returned_attached", [])
        if len(parts) == 2 and not parts[0] and parts[1]:
            return ("gradient crosses the truncation boundary through the cell state: you detached h but not c. "
                    "Detach every tensor of the state, (h.detach(), c.detach()).")
        if len(parts) == 2 and parts[0] and not parts[1]:
            return ("gradient crosses the truncation boundary through h: you detached c but not h. Detach every "
                    "tensor of the state, (h.detach(), c.detach()).")
        return ("gradient crosses the truncation boundary: the loss of window k+1 sent gradient into window k. Detach "
                "the hidden state you carry (h.detach(), and c.detach() for an LSTM), so that backpropagation stops at "
                "the start of each window.")
    depths = obs.get("depths") or []
    if len(depths) >= 3 and depths[-1] > max(depths[:2]):
        return (f"the autograd graph of the carried state grows with every window (grad_fn depth {depths[0]} after "
                f"the first step, {depths[-1]} after {len(depths)}): detach the state you return, or memory and time "
                "grow without bound.")
    if obs.get("loop_error"):
        return _tbptt_error_hint(obs["loop_error"], f"training step {obs.get('loop_error_step')}")
    return None


def _scalar(value) -> Tensor:
    """A loss (a Python number or a one-element tensor) as a 0-d float64 tensor."""
    return torch.tensor(float(value), dtype=torch.float64)


def _tbptt_error_hint(error: str, stage: str) -> str:
    where = f" ({stage})" if stage else ""
    if "backward through the graph a second time" in error or "Trying to backward" in error:
        return (f"backward failed{where}: the carried state is still attached to the previous window's graph, which "
                "the previous backward() already freed. Detach the state you carry into the next window "
                "(h.detach(), and c.detach() for an LSTM).")
    if "does not require grad" in error:
        return (f"the loss cannot be backpropagated{where}: it was detached or computed under torch.no_grad(). "
                "Detach only the hidden state.")
    return f"tbptt_step raised an error{where}: {error}"


# ---------------------------------------------------------------- 5. sample_next

@oracle
def sampling_probs(logits: Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                   variant: str = "right") -> Tensor:
    """The exact distribution ``sample_next`` should sample from, float64 ``(B, V)``; or a bug's.

    Order: temperature, then top-k, then top-p on the renormalised distribution. The nucleus
    is the smallest set of likeliest tokens whose mass reaches ``top_p`` (the token that
    crosses the threshold is in; ties are broken by token index). ``temperature=0`` puts all
    mass on the argmax. variant: "right", "temperature_after_softmax" (T ignored),
    "top_p_drops_crossing" (the crossing token left out), "top_p_before_temperature"
    (nucleus from the untempered distribution), "top_k_plus_one", "top_k_minus_one".
    """
    z = logits.double()
    if temperature == 0:
        out = torch.zeros_like(z)
        return out.scatter(-1, z.argmax(-1, keepdim=True), 1.0)
    T = 1.0 if variant == "temperature_after_softmax" else float(temperature)
    scaled = z / T
    keep = torch.ones_like(z, dtype=torch.bool)
    if top_k is not None:
        k = int(top_k) + (1 if variant == "top_k_plus_one" else -1 if variant == "top_k_minus_one" else 0)
        k = max(1, min(k, z.shape[-1]))
        order = torch.argsort(-scaled, dim=-1, stable=True)
        keep = torch.zeros_like(keep).scatter(-1, order[..., :k], True)
    if top_p is not None:
        base = z if variant == "top_p_before_temperature" else scaled
        probs = torch.softmax(base.masked_fill(~keep, -math.inf), -1)
        order = torch.argsort(-probs, dim=-1, stable=True)
        sorted_p = probs.gather(-1, order)
        before = sorted_p.cumsum(-1) - sorted_p
        in_sorted = before < float(top_p) - 1e-12
        if variant == "top_p_drops_crossing":
            in_sorted = sorted_p.cumsum(-1) < float(top_p) - 1e-12
        in_sorted[..., 0] = True
        keep = keep & torch.zeros_like(keep).scatter(-1, order, in_sorted)
    return torch.softmax(scaled.masked_fill(~keep, -math.inf), -1)


@oracle
def greedy_formula(logits: Tensor) -> Tensor:
    """The greedy (T → 0) choice of each row of ``logits (B, V)``: its argmax, ``(B,)`` long."""
    return logits.argmax(-1)


SAMPLING_VARIANTS = ("temperature_after_softmax", "top_p_drops_crossing", "top_p_before_temperature",
                     "top_k_plus_one", "top_k_minus_one")

SAMPLING_HINTS = {
    "temperature_after_softmax": ("the temperature has no effect: divide the LOGITS by T before the softmax, "
                                  "softmax(logits / T). Dividing the probabilities by T and renormalising (or sampling, "
                                  "which renormalises) gives back the T = 1 distribution."),
    "top_p_drops_crossing": ("the nucleus is one token too small: keep the token that makes the running total cross p "
                             "(keep a token while the mass BEFORE it is < p), so the kept mass is at least p."),
    "top_p_before_temperature": ("the nucleus was chosen from the untempered distribution: apply the temperature "
                                 "first, then choose the top-p set from softmax(logits / T)."),
    "top_k_plus_one": "one token too many survives top-k: keep exactly the k largest logits.",
    "top_k_minus_one": "one token too few survives top-k: keep exactly the k largest logits (k of them, not k - 1).",
}


def chi_square_pvalue(counts: Tensor, probs: Tensor) -> float:
    """p-value of Pearson's chi-square test of ``counts (V,)`` against ``probs (V,)`` (support only)."""
    n = float(counts.sum())
    support = probs > 0
    expected = probs[support].double() * n
    observed = counts[support].double()
    stat = float(((observed - expected) ** 2 / expected).sum())
    df = int(support.sum()) - 1
    if df <= 0:
        return 1.0
    # the chi-square survival function is the regularised upper incomplete gamma Q(df/2, stat/2)
    return float(torch.special.gammaincc(torch.tensor(df / 2.0, dtype=torch.float64),
                                         torch.tensor(stat / 2.0, dtype=torch.float64)))


def name_sampling_bug(samples, logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                      top_p: float | None = None, alpha: float = 1e-6) -> str | None:
    """None if ``samples (B,)`` look drawn from the right distribution of each row of ``logits (B, V)``.

    Rows of ``logits`` that are identical are pooled into one frequency test. A token with
    probability 0 that appears is always a bug; frequencies are judged by a chi-square test
    at level ``alpha`` (a correct sampler fails it about once in a million runs).
    """
    B, V = logits.shape
    if not isinstance(samples, Tensor):
        return f"sample_next should return a tensor of token ids of shape ({B},), got {describe(samples)}."
    if samples.shape != (B,):
        return (f"sample_next should return one token id per row, shape ({B},), got {tuple(samples.shape)}; "
                "torch.multinomial(probs, 1) gives (B, 1): squeeze the last axis.")
    if samples.dtype != torch.long:
        return f"sample_next should return token ids as torch.long (int64), got {samples.dtype}."
    if bool((samples < 0).any()) or bool((samples >= V).any()):
        return f"sample_next returned ids outside 0..{V - 1}."
    if temperature == 0:
        if same(samples, greedy_formula(logits)):
            return None
        return "temperature=0 must return the argmax of each row (greedy): check T == 0 first and use argmax."
    for rows in _identical_rows(logits):
        counts = torch.bincount(samples[rows], minlength=V)
        # from one row of the group (a (1, V) answer is what the recording keeps), and every bug's distribution
        # now, before the samples decide which are needed, so that the recording holds them all
        candidates = {variant: sampling_probs(logits[rows[:1]], temperature, top_k, top_p, variant)[0]
                      for variant in ("right", *SAMPLING_VARIANTS)}
        p = candidates.pop("right")
        outside = (counts > 0) & (p == 0)
        if bool(outside.any()):
            hint = _sampling_variant_hint(counts, candidates, alpha)
            if hint is not None:
                return hint
            return (f"tokens outside the allowed set were sampled ({int(outside.sum())} of them): apply the filters "
                    "(top-k keeps the k largest logits, top-p the smallest set reaching mass p) by setting the other "
                    "logits to -inf before the softmax.")
        if chi_square_pvalue(counts, p) <= alpha:
            hint = _sampling_variant_hint(counts, candidates, alpha)
            if hint is not None:
                return hint
            missing = (counts == 0) & (p > 20.0 / max(len(rows), 1))
            if bool(missing.any()):
                return ("some tokens that should be sampled never appear: the filter removes too much (top-p must keep "
                        "the token that crosses p; top-k keeps k tokens).")
            return ("the sampled frequencies do not follow softmax(logits / T) after the filters (chi-square test): "
                    "sample with torch.multinomial(probs, 1, generator=generator) from the renormalised probabilities.")
    return None


def _sampling_variant_hint(counts: Tensor, candidates: dict, alpha: float) -> str | None:
    """The hint of the first known bug whose distribution (``candidates``: variant -> ``(V,)``)
    has every sampled token in its support and passes the chi-square test on ``counts (V,)``."""
    for variant, q in candidates.items():
        if bool(((counts > 0) <= (q > 0)).all()) and chi_square_pvalue(counts, q) > alpha:
            return SAMPLING_HINTS[variant]
    return None


def _identical_rows(logits: Tensor) -> list[Tensor]:
    _, inverse = torch.unique(logits, dim=0, return_inverse=True)
    return [torch.nonzero(inverse == g).flatten() for g in torch.unique(inverse).tolist()]
