"""Public checks for lab 01 (the RNN language model). Each prints one ✓ line or raises AssertionError.

The checks feed small fixed inputs and compare with independent oracles (``nn.LSTMCell``,
float64 formulas, exact sampling distributions); the bug-namers in ``lab01_bugs`` turn a
wrong answer into a hint. The hidden tests ask for the same things on other inputs.

The oracles are ``@oracle`` functions (``genlab.checks.recorded``): in the student build they
answer from a recording of these very checks, so everything they get is fixed here (seeded
inputs, fixed weights loaded into the student's module), and the student's code gets copies.
"""
from __future__ import annotations

import copy
import itertools
from collections.abc import Callable

import torch
from torch import Tensor, nn

from genlab.checks import kit
from genlab.checks import lab01_bugs as bugs

__all__ = [
    "check_stream_batches",
    "check_lstm_cell",
    "check_lm_loss",
    "check_tbptt_step",
    "check_sample_next",
    "observe_tbptt",
    "observe_sampling",
    "read_windows",
    "FlatStateCell",
    "sampling_contract_logits",
]


# ---------------------------------------------------------------- the contract's adapters
# genlab.checks.contract calls a function on tensors and reads the tensors it returns. Two
# parts need an adapter for that: the hidden tests load these from this file afresh inside the
# grading worker (the probe ``contract``, with ``adapter=``), so the public check and the feedback agree.

#: More windows than any check's corpus gives: a generator that never stops is cut here.
MAX_WINDOWS = 10_000


def read_windows(fn: Callable) -> Callable:
    """``stream_batches`` read to the end: a generator runs (and changes or keeps anything) only
    while it is read, so the contract sees its windows as a list."""
    def windows(ids, batch_size, seq_len):
        return list(itertools.islice(fn(ids, batch_size, seq_len), MAX_WINDOWS))
    return windows


class FlatStateCell(nn.Module):
    """``cell(x, (h, c))`` called as ``flat(x, h, c)``: the contract checks each of x, h and c as
    an input of its own (not changed in place, reached by the gradient) and the cell's parameters."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x, h, c):
        return self.cell(x, (h, c))

    def named_parameters(self, *args, **kwargs):
        """The cell's own parameters, by their own names (``weight_ih``, not ``cell.weight_ih``)."""
        cell = self.cell
        return cell.named_parameters(*args, **kwargs) if isinstance(cell, nn.Module) else iter(())


# ---------------------------------------------------------------- 1. stream_batches

def check_stream_batches(fn: Callable) -> None:
    """Contiguous rows, y shifted by one, window k+1 continuing window k, the last shorter window."""
    what = "stream_batches"
    # first: ids changed in place would spoil the checks below (N - 1 = 61 is no multiple of B = 3: tokens are
    # left over at the end, so trimming them off ids in place shows)
    kit.check_contract(read_windows(fn), (1000 + torch.arange(62), 3, 7), what, ("ids", "batch_size", "seq_len"),
              check_grads=False)
    for N, B, T in ((101, 4, 5), (97, 3, 8), (41, 1, 6), (30, 5, 10)):
        ids = 1000 + torch.arange(N)  # each id names its position in the corpus
        batches = _call_streams(fn, ids, B, T)
        kit.fail_if(bugs.name_stream_bug(batches, ids, B, T), f"{what}(ids of {N} tokens, batch_size={B}, seq_len={T})")
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(50, (203,), generator=g)  # repeated ids: nothing may depend on their values
    batches = _call_streams(fn, ids, 6, 7)
    kit.fail_if(bugs.name_stream_bug(batches, ids, 6, 7), f"{what} on a random corpus")
    kit.ok(f"{what}: B contiguous streams, y = x shifted by one, each window continues the last, "
           "the last shorter window is kept, and the ids are left as they were")


def _call_streams(fn, ids, B, T):
    """The windows of ``fn`` on a copy of ``ids`` as a list; a crash gets the likely cause of a shape error added."""
    try:
        return kit.call(f"stream_batches(ids of {ids.numel()} tokens, {B}, {T})", lambda: list(fn(ids.clone(), B, T)))
    except AssertionError as exc:
        if "invalid for input of size" in str(exc) or "shape" in str(exc):
            raise AssertionError(f"{exc} {bugs.STREAM_SHAPE_HINT}") from None
        raise


# ---------------------------------------------------------------- 2. LSTMCell

def _call_with_hint(what: str, hint: str, fn, *args):
    """kit.call, with ``hint`` added when the student's code raised (not for a missing part)."""
    try:
        return kit.call(what, fn, *args)
    except AssertionError as exc:
        if "raised an error" in str(exc):
            raise AssertionError(f"{exc} {hint}") from None
        raise


def lstm_weights(input_size: int, hidden_size: int, seed: int, scale: float = 0.6) -> dict[str, Tensor]:
    """Fixed weights for an LSTM cell, named and shaped like ``nn.LSTMCell``'s state_dict:
    ``weight_ih (4H, I)``, ``weight_hh (4H, H)``, ``bias_ih (4H,)``, ``bias_hh (4H,)``, each
    drawn from N(0, scale²) with a generator seeded by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"weight_ih": (4 * hidden_size, input_size), "weight_hh": (4 * hidden_size, hidden_size),
              "bias_ih": (4 * hidden_size,), "bias_hh": (4 * hidden_size,)}
    return {name: torch.randn(shape, generator=g) * scale for name, shape in shapes.items()}


def check_lstm_cell(cls: type) -> None:
    """Parameters like nn.LSTMCell's, the same (h, c) and the same gradients given the same weights."""
    n_in, H, B = 5, 7, 3
    cell = kit.call(f"LSTMCell({n_in}, {H})", cls, n_in, H)
    weights = lstm_weights(n_in, H, seed=20)   # loaded into the student's cell: the oracles know the cell by them
    shapes = {k: tuple(v.shape) for k, v in weights.items()}
    got_shapes = {k: tuple(v.shape) for k, v in cell.state_dict().items()} if isinstance(cell, nn.Module) else {}
    if got_shapes != shapes:
        raise AssertionError(f"LSTMCell should have exactly nn.LSTMCell's parameters {shapes} (keep the ones created "
                             f"in __init__), found {got_shapes}.")
    kit.call("LSTMCell.load_state_dict", cell.load_state_dict, weights)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(B, n_in, generator=g)
    state = (torch.randn(B, H, generator=g), torch.randn(B, H, generator=g))
    reference = bugs.lstm_cell_reference(x, state, weights)   # nn.LSTMCell with these weights: h, c, gradients

    def given():   # the cell gets copies: an (h, c) changed in place must not spoil the next comparison
        return x.clone(), tuple(s.clone() for s in state)

    with torch.no_grad():
        got = _call_with_hint("LSTMCell.forward(x, (h, c))", bugs.LSTM_SPLIT_HINT, cell, *given())
        kit.fail_if(bugs.name_lstm_bug(got, x, state, weights), "one step from a given (h, c)")
        got = kit.call("LSTMCell.forward(x) with no state", cell, x.clone())
        kit.fail_if(bugs.name_lstm_bug(got, x, None, weights), "one step from state=None (zeros)")
        got = cell(*given())
        for name, a in (("h", got[0]), ("c", got[1])):
            kit.expect_close(a, reference[name], f"{name} compared with nn.LSTMCell", atol=1e-5)
    cell64 = copy.deepcopy(cell).double()
    x64, state64 = x.double(), tuple(s.double() for s in state)
    got = kit.call("LSTMCell in float64", cell64, x64.clone(), tuple(s.clone() for s in state64))
    kit.fail_if(bugs.name_lstm_bug(got, x64, state64, weights, atol=1e-10), "float64 inputs")
    _check_lstm_gradients(cell, x, state, reference["grads"])
    # last, once the values are right (a missing term shows above as itself, not as a missing gradient)
    kit.check_contract(FlatStateCell(cell), (x, *state), "LSTMCell.forward", ("x", "h", "c"), report_crash=True)
    kit.ok("LSTMCell matches torch.nn.LSTMCell with the same weights: (h, c), state=None, float64 and gradients; "
           "x, h and c are left as they were, reached by the gradient, and no state is kept between calls")


def _check_lstm_gradients(cell, x: Tensor, state, want: dict) -> None:
    """The gradients of ``h.square().sum() + c.sum()`` through ``cell`` against ``want``
    (``lstm_cell_reference``'s ``grads``: ``"x"`` and each parameter by name)."""
    xa = x.clone().requires_grad_(True)
    cell.zero_grad(set_to_none=True)
    h, c = cell(xa, tuple(s.clone() for s in state))
    (h.square().sum() + c.sum()).backward()
    if xa.grad is None:
        raise AssertionError("no gradient reached the input x: build h and c from x with differentiable torch "
                             "operations (no .detach(), no .item(), no torch.no_grad()).")
    kit.expect_close(xa.grad, want["x"], "the gradient with respect to x", atol=1e-5)
    for name, p in cell.named_parameters():
        if p.grad is None:
            raise AssertionError(f"no gradient reached {name}: use self.{name} in forward (it must be learned).")
        kit.expect_close(p.grad, want[name], f"the gradient of {name}", atol=1e-5)


# ---------------------------------------------------------------- 3. lm_loss

def check_lm_loss(fn: Callable) -> None:
    """The mean over B·T in float32, half-precision logits, autocast, and the gradient."""
    what = "lm_loss"
    c = torch.Generator().manual_seed(30)
    kit.check_contract(fn, (torch.randn(2, 4, 9, generator=c) * 2, torch.randint(9, (2, 4), generator=c)), what,
              ("logits", "targets"))
    g = torch.Generator().manual_seed(3)
    for B, T, V in ((2, 5, 11), (4, 3, 7), (1, 6, 103)):
        logits = torch.randn(B, T, V, generator=g) * 2
        targets = torch.randint(V, (B, T), generator=g)
        got = _call_with_hint(f"{what}(logits {(B, T, V)}, targets {(B, T)})", bugs.LOSS_FLATTEN_HINT, fn,
                              logits.clone(), targets)
        kit.fail_if(bugs.name_loss_bug(got, logits, targets), f"{what} with B={B}, T={T}, V={V}")
    logits = torch.randn(3, 4, 50, generator=g) * 12
    targets = torch.randint(50, (3, 4), generator=g)
    got = kit.call(f"{what} on float16 logits", fn, logits.half(), targets)
    kit.fail_if(bugs.name_loss_bug(got, logits.half().float(), targets, atol=1e-3), f"{what} on float16 logits")
    layer = _integer_linear(8, 50, g)
    inputs = torch.randint(-6, 7, (3, 4, 8), generator=g).float()
    with torch.autocast("cpu", dtype=torch.float16):
        out = layer(inputs)
        seen = out.detach().float()   # what the oracle gets, whatever the student's code does to `out`
        got = kit.call(f"{what} inside torch.autocast('cpu', dtype=torch.float16)", fn, out, targets)
    kit.fail_if(bugs.name_loss_bug(got, seen, targets, atol=1e-3), f"{what} under float16 autocast")
    logits = torch.randn(2, 3, 5, generator=g, requires_grad=True)
    targets = torch.randint(5, (2, 3), generator=g)
    want = bugs.loss_gradient_formula(logits, targets)   # (softmax(logits) - onehot(targets)) / (B·T)
    loss = kit.call(what, fn, logits, targets)
    kit.call("lm_loss(...).backward()", loss.backward)
    if logits.grad is None:
        raise AssertionError("no gradient reached the logits: keep the computation in torch (no .item(), no numpy).")
    kit.expect_close(logits.grad, want, "the gradient of the loss with respect to the logits", atol=1e-5,
                     hint="it should be (softmax(logits) - onehot(targets)) / (B·T) for the mean loss.")
    kit.ok(f"{what}: the mean cross-entropy over batch and time, float32 (also for float16 logits and under "
           "autocast), with the right gradient; the logits are left as they were")


def _integer_linear(n_in: int, n_out: int, generator: torch.Generator) -> nn.Linear:
    """An ``nn.Linear(n_in, n_out)`` with small integer weights and biases (in -2..2): on small
    integer inputs its float16 output under autocast is exact, the same on every machine, so
    the loss oracle's recording knows it."""
    layer = nn.utils.skip_init(nn.Linear, n_in, n_out)
    with torch.no_grad():
        layer.weight.copy_(torch.randint(-2, 3, (n_out, n_in), generator=generator))
        layer.bias.copy_(torch.randint(-2, 3, (n_out,), generator=generator))
    return layer


# ---------------------------------------------------------------- 4. tbptt_step


def _grad_fn_depth(state) -> int:
    from genlab.nn.rnn import grad_fn_depth

    return grad_fn_depth(state, limit=100_000)


def observe_tbptt(step_fn: Callable, kind: str, state_dict: dict, windows, loop_windows, **sizes) -> dict:
    """Run a ``tbptt_step`` on ``bugs.ProbeLM(kind, **sizes)`` loaded with ``state_dict`` and
    record what it does, as plain data (the hidden tests run this inside the grader's worker).

    Three runs: ``windows`` in order without backward (the losses and states it returns);
    the first two windows with backward of the second loss (does gradient reach the first
    window's inputs?); ``loop_windows`` as a training loop with backward and SGD after every
    step (the grad_fn depth of each returned state, and any error).
    """
    obs: dict = {"error": None, "error_stage": "", "first": {}, "losses": [], "states": [],
                 "incoming_unchanged": True, "crossed": None, "returned_attached": [], "depths": [],
                 "loop_error": None, "loop_error_step": None}
    model = bugs.ProbeLM(kind, **sizes)
    model.load_state_dict(state_dict)
    hidden = None
    for k, batch in enumerate(windows):
        before = [t.detach().clone() for t in kit.tensors(hidden)]
        try:
            result = step_fn(model, batch, hidden)
        except Exception as exc:  # noqa: BLE001 - reported as data, named by the bug-namer
            obs.update(error=f"{type(exc).__name__}: {exc}", error_stage=f"window {k}")
            return obs
        if k == 0:
            obs["first"] = _describe_step_result(result)
            if obs["first"]["type"] != "tuple2" or not obs["first"].get("loss_is_tensor"):
                return obs
        loss, new = result
        obs["losses"].append(loss.detach().float().reshape(-1)[0].clone() if isinstance(loss, Tensor) else loss)
        obs["states"].append([t.detach().clone() for t in kit.tensors(new)])
        if hidden is not None and not all(torch.equal(b, t.detach()) for b, t in zip(before, kit.tensors(hidden), strict=False)):
            obs["incoming_unchanged"] = False
        hidden = new

    model.record, model.inputs = True, []
    try:
        loss0, h0 = step_fn(model, windows[0], None)
        obs["returned_attached"] = [bool(t.requires_grad) for t in kit.tensors(h0)]
        loss1, _ = step_fn(model, windows[1], h0)
        model.zero_grad(set_to_none=True)
        loss1.backward()
    except Exception as exc:  # noqa: BLE001
        obs.update(error=f"{type(exc).__name__}: {exc}", error_stage="backward of the second window")
        return obs
    first_inputs = model.inputs[0] if model.inputs else None
    grad = None if first_inputs is None else first_inputs.grad
    obs["crossed"] = 0.0 if grad is None else float(grad.abs().max())
    model.record, model.inputs = False, []

    model.load_state_dict(state_dict)
    hidden = None
    for k, batch in enumerate(loop_windows):
        try:
            loss, hidden = step_fn(model, batch, hidden)
            model.zero_grad(set_to_none=True)
            loss.backward()
            _sgd_step(model, lr=0.05)
        except Exception as exc:  # noqa: BLE001
            obs.update(loop_error=f"{type(exc).__name__}: {exc}", loop_error_step=k)
            break
        obs["depths"].append(_grad_fn_depth(hidden))
    return obs


@torch.no_grad()
def _sgd_step(model: nn.Module, lr: float) -> None:
    """Plain SGD by hand (torch.optim would import torch._dynamo, seconds, inside the grader)."""
    for p in model.parameters():
        if p.grad is not None:
            p -= lr * p.grad


def _describe_step_result(result) -> dict:
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        return {"type": kit.describe(result)}
    loss, new = result
    info = {"type": "tuple2", "loss_is_tensor": isinstance(loss, Tensor), "loss_desc": kit.describe(loss),
            "state_count": len(kit.tensors(new))}
    if isinstance(loss, Tensor):
        info.update(loss_shape=tuple(loss.shape), loss_dtype=str(loss.dtype), loss_requires_grad=bool(loss.requires_grad))
    return info


def tbptt_case(kind: str, seed: int) -> tuple[dict, list, list, dict]:
    """A ProbeLM's weights, 4 windows, 100 loop windows and its sizes, from ``seed``."""
    sizes = dict(vocab_size=9, embedding_dim=6, hidden_size=8)
    torch.manual_seed(seed)
    model = bugs.ProbeLM(kind, **sizes)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return state, bugs.probe_windows(seed, sizes["vocab_size"], B=3, T=5, n=4), \
        bugs.probe_windows(seed + 1, sizes["vocab_size"], B=2, T=3, n=100), sizes


def check_tbptt_step(fn: Callable, lm_loss: Callable | None = None) -> None:
    """The loss of each window from the carried state, the state returned detached, no gradient
    across the boundary, a graph that does not grow over 100 steps; for an LSTM and a plain RNN."""
    for kind in ("lstm", "rnn"):
        state, windows, loop_windows, sizes = tbptt_case(kind, seed=4)
        model = bugs.ProbeLM(kind, **sizes)
        model.load_state_dict(state)
        ref = bugs.tbptt_reference(model, windows)   # first: nothing the step does to the windows reaches it
        obs = observe_tbptt(fn, kind, state, windows, loop_windows, **sizes)
        own = None
        if lm_loss is not None:
            try:
                own = [float(lm_loss(z, y)) for z, (_, y) in zip(ref["logits"], windows, strict=False)]
            except Exception:  # noqa: BLE001 - part 3 has its own check
                own = None
        kit.fail_if(bugs.name_tbptt_bug(obs, ref, own), f"tbptt_step with {'an LSTM' if kind == 'lstm' else 'an RNN'}")
    kit.ok("tbptt_step: each window starts from the carried state, the state comes back detached, no gradient "
           "crosses a window boundary, and the graph stays the same size over 100 steps (LSTM and RNN)")


# ---------------------------------------------------------------- 5. sample_next

#: The filters the contract check runs through (temperature != 1, so that `logits /= T` shows).
SAMPLING_CONTRACT_KWARGS = dict(temperature=0.8, top_k=3, top_p=0.9)


def sampling_contract_logits(seed: int, B: int = 4, V: int = 9) -> Tensor:
    """Logits (B, V) with one token per row 40 above the others: whatever the filters keep, every
    draw is that token (another has probability below 1e-20), so the contract's calls on the same
    logits give the same samples whatever the random generator, and differences mean kept state."""
    g = torch.Generator().manual_seed(int(seed))
    logits = torch.randn(B, V, generator=g)
    top = torch.randint(V, (B,), generator=g)
    logits[torch.arange(B), top] += 40.0
    return logits


def observe_sampling(fn: Callable, logits: Tensor, temperature=1.0, top_k=None, top_p=None, seed: int = 0,
                     global_seed: int | None = None) -> dict:
    """Call ``fn`` with a fresh ``torch.Generator().manual_seed(seed)``; plain data back:
    ``samples`` or ``error``."""
    if global_seed is not None:
        torch.manual_seed(global_seed)
    generator = torch.Generator(device=logits.device).manual_seed(int(seed))
    try:
        samples = fn(logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
    except Exception as exc:  # noqa: BLE001 - reported as data
        return {"error": f"{type(exc).__name__}: {exc}"}
    if isinstance(samples, Tensor):
        samples = samples.detach().cpu()
    return {"error": None, "samples": samples}


def sampling_error_hint(error: str, top_p=None) -> str:
    """A hint for what a sampler raised (``top_p``: the call's top_p, if any)."""
    if "probability tensor contains" in error or "inf" in error or "nan" in error.lower():
        if top_p is not None:
            return (f"{error}. With top_p={top_p} every token was removed, so the probabilities are all NaN: the "
                    "token that crosses p must stay in the nucleus (keep a token while the mass BEFORE it is < p), "
                    "so the top token is never removed.")
        return (f"{error}. The probabilities contain inf/NaN: for temperature=0 return the argmax without dividing "
                "by T.")
    return error


def _sample(fn, what, logits, **kw):
    """``fn``'s samples on a copy of ``logits`` (the bug-namer gets the logits themselves)."""
    data = observe_sampling(fn, logits.clone(), **kw)
    if data["error"]:
        raise AssertionError(f"{what} raised an error: {sampling_error_hint(data['error'], kw.get('top_p'))}")
    return data["samples"]


def check_sample_next(fn: Callable) -> None:
    """Shapes, T → 0, top-k and top-p supports, the frequencies at several T, the generator."""
    what = "sample_next"
    # first: logits changed in place (`logits /= T`) would spoil every check below
    kit.check_contract(fn, (sampling_contract_logits(5),), what, ("logits",), kwargs=SAMPLING_CONTRACT_KWARGS,
              check_grads=False)
    g = torch.Generator().manual_seed(5)
    row = torch.randn(12, generator=g) * 1.5
    n = 4000
    logits = row.expand(n, 12).clone()
    for kw in (dict(temperature=1.0), dict(temperature=0.5), dict(temperature=2.0), dict(temperature=1.0, top_k=3),
               dict(temperature=1.0, top_p=0.6), dict(temperature=2.0, top_p=0.5), dict(temperature=0.7, top_k=5,
                                                                                           top_p=0.8)):
        samples = _sample(fn, f"{what}(logits, **{kw})", logits, seed=1, **kw)
        kit.fail_if(bugs.name_sampling_bug(samples, logits, **kw), f"{what} with {kw}")
    two = torch.stack([row, row.flip(0)])
    for T in (0, 1e-4):
        samples = _sample(fn, f"{what}(temperature={T})", two, temperature=T, seed=2)
        kit.fail_if(bugs.name_sampling_bug(samples, two, temperature=0), f"{what} with temperature={T} (greedy limit)")
    peaked = torch.tensor([[4.0, 0.0, -1.0, -2.0]]).expand(500, 4).clone()  # p(top) ≈ 0.93
    samples = _sample(fn, f"{what}(top_p=0.5)", peaked, temperature=1.0, top_p=0.5, seed=3)
    if not bool((samples == 0).all()):
        raise AssertionError(f"{what} with top_p=0.5: the top token alone has probability 0.93 ≥ 0.5, so the nucleus is "
                             "that one token, but others were sampled. Keep a token only while the mass before it is < p.")
    tied = torch.tensor([0.2, 0.4, 0.2, 0.2]).log().expand(2000, 4).clone()
    samples = _sample(fn, f"{what}(top_p=0.55) with tied probabilities", tied, temperature=1.0, top_p=0.55, seed=6)
    support = set(torch.unique(samples).tolist())
    if 1 not in support or len(support) != 2:
        raise AssertionError(f"{what} with probabilities 0.4, 0.2, 0.2, 0.2 and top_p=0.55: the smallest nucleus is the "
                             f"top token and ONE of the tied tokens (0.4 + 0.2 ≥ 0.55), but {len(support)} distinct "
                             "tokens were sampled. Keep tokens in sorted order while the mass before them is < p.")
    a = _sample(fn, what, logits[:200], temperature=1.0, seed=11, global_seed=0)
    b = _sample(fn, what, logits[:200], temperature=1.0, seed=11, global_seed=1)
    c = _sample(fn, what, logits[:200], temperature=1.0, seed=12, global_seed=0)
    if not torch.equal(a, b):
        raise AssertionError(f"{what} with the same generator seed gave different samples: draw with the generator you "
                             "are given (torch.multinomial(probs, 1, generator=generator)), not the global RNG.")
    if torch.equal(a, c):
        raise AssertionError(f"{what} gave the same samples for two different generator seeds: it ignores the generator.")
    kit.ok(f"{what}: temperature (T → 0 is greedy), top-k, the minimal top-p nucleus, the frequencies of softmax(x/T), "
           "and the generator; the logits are left as they were")
