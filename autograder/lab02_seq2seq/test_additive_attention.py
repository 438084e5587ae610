"""Part 2: class AdditiveAttention(query_size, key_size, attention_size) with W, U, v and
forward(query, keys, values, mask=None) -> (context (B, d_v), weights (B, S))."""
import pytest
import torch

from autograder import kit
from autograder.runner.errors import SubmissionError
from genlab.checks import lab02_bugs as bugs


def _call(fn, *args, context=None, **kwargs):
    """``kit.call`` with this lab's hint for a known error message."""
    try:
        return kit.call(fn, *args, context=context, **kwargs)
    except AssertionError as exc:
        raise AssertionError(f"{exc}{bugs.explain_error(str(exc), bugs.ATTENTION_ERRORS)}") from None


NAME = "AdditiveAttention"
FP16_HINT = ("In float16 the most negative number is -65504, so a literal like -1e9 cannot be stored: fill masked "
             "scores with torch.finfo(scores.dtype).min, which is right in every dtype.")


def _state(d_q, d_k, d_a, seed):
    g = torch.Generator().manual_seed(seed)
    return {"W.weight": torch.randn(d_a, d_q, generator=g) * 0.6, "U.weight": torch.randn(d_a, d_k, generator=g) * 0.6,
            "v.weight": torch.randn(1, d_a, generator=g)}


def _inputs(seed, B, S, d_q, d_k, d_v, lengths):
    g = torch.Generator().manual_seed(seed)
    query, keys = torch.randn(B, d_q, generator=g), torch.randn(B, S, d_k, generator=g)
    values = torch.randn(B, S, d_v, generator=g)
    mask = torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]
    return query, keys, values, mask


def _loaded(submission, d_q, d_k, d_a, state):
    attn = _call(submission.function(NAME), d_q, d_k, d_a, context=f"AdditiveAttention({d_q}, {d_k}, {d_a})")
    try:
        attn.load_state_dict(state, strict=True)
    except SubmissionError as exc:
        if type(exc) is not SubmissionError:
            raise
        raise AssertionError(
            f"loading weights into AdditiveAttention({d_q}, {d_k}, {d_a}) failed: {exc}. It needs exactly "
            "self.W = nn.Linear(query_size, attention_size, bias=False), self.U = nn.Linear(key_size, "
            "attention_size, bias=False) and self.v = nn.Linear(attention_size, 1, bias=False).") from None
    return attn


def _pair(result, what):
    return kit.expect_tuple(result, 2, what, ("context", "weights"))


@pytest.mark.points(2)
def test_parameters(submission):
    """W, U, v are bias-free Linear layers of the documented sizes (their weights load by name)."""
    _loaded(submission, 7, 5, 4, _state(7, 5, 4, 0))


@pytest.mark.points(2)
def test_shapes_and_dtype(submission):
    """context (B, d_v) and weights (B, S), float32 for float32 inputs; keys and values of different sizes."""
    attn = _loaded(submission, 7, 5, 4, _state(7, 5, 4, 1))
    query, keys, values, mask = _inputs(2, 4, 6, 7, 5, 3, [6, 2, 1, 4])
    context, weights = _pair(_call(attn, query, keys, values, mask, context="AdditiveAttention.forward"),
                             "AdditiveAttention.forward")
    kit.expect_tensor(context, "the context", shape=(4, 3), dtype=torch.float32,
                      hint="It is Σ_j α_j values_j: (B, d_v), the values' size, here 3.")
    kit.expect_tensor(weights, "the weights", shape=(4, 6), dtype=torch.float32,
                      hint="One weight per source position: (B, S).")


@pytest.mark.points(5)
def test_equals_the_reference_with_the_same_parameters(submission):
    """vᵀ tanh(W s + U h_j), softmax over real positions, Σ α values: against float64, with and without masks."""
    for seed, (B, S, d_q, d_k, d_v, d_a), lengths in ((3, (3, 5, 6, 4, 4, 8), [5, 3, 1]),
                                                      (4, (2, 9, 3, 8, 5, 6), [2, 9])):
        state = _state(d_q, d_k, d_a, seed)
        attn = _loaded(submission, d_q, d_k, d_a, state)
        query, keys, values, mask = _inputs(seed + 10, B, S, d_q, d_k, d_v, lengths)
        for m, where in ((mask, f"with a padding mask (lengths {lengths})"), (None, "without a mask")):
            context, weights = _pair(_call(attn, query, keys, values, m, context=f"AdditiveAttention {where}"),
                                     "AdditiveAttention.forward")
            kit.fail_if(bugs.name_additive_bug(context, weights, state, query, keys, values, m),
                        f"AdditiveAttention {where}")


@pytest.mark.points(3)
def test_weights_sum_to_one_and_padding_is_exactly_zero(submission):
    """Rows sum to 1 over the real positions; padded positions get exactly 0.0."""
    state = _state(5, 5, 6, 5)
    attn = _loaded(submission, 5, 5, 6, state)
    query, keys, values, mask = _inputs(6, 4, 7, 5, 5, 5, [7, 1, 4, 2])
    query, keys = query * 3, keys * 3  # large energies: a soft mask would show
    context, weights = _pair(_call(attn, query, keys, values, mask, context="AdditiveAttention.forward"),
                             "AdditiveAttention.forward")
    kit.expect_tensor(weights, "the weights", shape=(4, 7))
    leaked = weights.masked_select(~mask)
    if leaked.numel() and float(leaked.abs().max()) != 0.0:
        hint = bugs.name_additive_bug(context, weights, state, query, keys, values, mask)
        raise AssertionError(f"padded positions should get weight exactly 0, the largest is {float(leaked.abs().max()):.3g}. "
                             + (hint or "Fill the masked scores with torch.finfo(scores.dtype).min before the softmax."))
    sums = weights.double().sum(-1)
    if float((sums - 1).abs().max()) > 1e-5:
        raise AssertionError(f"each row of the weights should sum to 1; row sums range from {float(sums.min()):.4g} to "
                             f"{float(sums.max()):.4g}. "
                             + (bugs.name_additive_bug(context, weights, state, query, keys, values, mask) or ""))


@pytest.mark.points(3)
def test_padding_invariance(submission):
    """Whatever sits at padded positions, and however much padding there is, the context is the same."""
    attn = _loaded(submission, 6, 4, 5, _state(6, 4, 5, 7))
    query, keys, values, mask = _inputs(8, 3, 5, 6, 4, 4, [5, 2, 1])
    context, _ = _pair(_call(attn, query, keys, values, mask, context="AdditiveAttention.forward"), "forward")
    keys2, values2 = keys.clone(), values.clone()
    keys2[~mask], values2[~mask] = 50.0, 1e4
    keys2 = torch.cat([keys2, torch.full((3, 3, 4), -20.0)], dim=1)
    values2 = torch.cat([values2, torch.full((3, 3, 4), 1e4)], dim=1)
    mask2 = torch.cat([mask, torch.zeros(3, 3, dtype=torch.bool)], dim=1)
    context2, _ = _pair(_call(attn, query, keys2, values2, mask2, context="AdditiveAttention with more padding"),
                        "forward")
    kit.expect_tensor(context2, "the context", shape=tuple(context.shape))
    if not kit.close(context2, context, atol=1e-5):
        err = float((context2.double() - context.double()).abs().max())
        raise AssertionError(f"changing what sits at padded positions (and adding 3 more) changed the context by up to "
                             f"{err:.3g}: padded positions must get weight exactly 0 (fill their scores before the "
                             "softmax).")


@pytest.mark.points(3)
def test_float16_on_cpu(submission):
    """The module and its inputs in float16 (.half()): no overflow, finite, float16, padding exactly 0."""
    state = _state(6, 4, 5, 9)
    attn = _loaded(submission, 6, 4, 5, state)
    query, keys, values, mask = _inputs(10, 3, 6, 6, 4, 4, [6, 3, 1])
    want_c, _ = bugs.additive_formula(state, query, keys, values, mask)
    half = _call(attn.half, context="AdditiveAttention.half()")
    try:
        out = _call(half, query.half(), keys.half(), values.half(), mask, context="AdditiveAttention on float16")
    except AssertionError as exc:
        extra = f" {FP16_HINT}" if "overflow" in str(exc) or "Half" in str(exc) else ""
        raise AssertionError(f"{exc}{extra}") from None
    context, weights = _pair(out, "AdditiveAttention on float16")
    kit.expect_tensor(context, "the float16 context", dtype=torch.float16,
                      hint="float16 inputs should give float16 outputs.")
    kit.expect_finite(context, "the float16 context", FP16_HINT)
    kit.expect_finite(weights, "the float16 weights", FP16_HINT)
    if bool((weights.masked_select(~mask) != 0).any()):
        raise AssertionError(f"in float16 padded positions must still get weight exactly 0. {FP16_HINT}")
    kit.expect_close(context.float(), want_c.float(), "the float16 context", atol=2e-2, rtol=2e-2,
                     hint="It should equal the float32 result up to float16 rounding.")


@pytest.mark.points(3)
def test_gradients_reach_W_U_and_v(submission):
    """Backpropagating through the context gives every parameter a non-zero gradient."""
    attn = _loaded(submission, 6, 4, 5, _state(6, 4, 5, 11))
    query, keys, values, mask = _inputs(12, 3, 5, 6, 4, 4, [5, 3, 2])
    data = submission.probe("gradients", fn=attn, args=[query, keys, values, mask], wrt=[0, 1, 2], output_index=0)
    grads = data.get("parameter_grads", {})
    for name in ("W.weight", "U.weight", "v.weight"):
        g = grads.get(name)
        if not isinstance(g, torch.Tensor) or float(g.abs().sum()) == 0.0:
            raise AssertionError(f"no gradient reached {name.split('.')[0]}: compute the scores with the layers "
                                 "themselves (no .detach(), torch.no_grad() or .item() on the way).")
    gk = data["grads"][1]
    if isinstance(gk, torch.Tensor) and bool((gk[~mask] != 0).any()):
        raise AssertionError("the keys at padded positions received a gradient: they must not influence the output.")


@pytest.mark.points(1)
def test_no_hidden_state_between_calls_and_inputs_unchanged(submission):
    """Two calls with the same inputs give the same result; the inputs are left unchanged."""
    attn = _loaded(submission, 6, 4, 5, _state(6, 4, 5, 13))
    inputs = _inputs(14, 2, 4, 6, 4, 4, [4, 2])
    first = _pair(_call(attn, *inputs, context="AdditiveAttention (first call)"), "forward")
    _call(attn, *_inputs(15, 2, 4, 6, 4, 4, [1, 3]), context="AdditiveAttention (other inputs)")
    data = submission.probe("recorded_inputs", fn=attn, args=list(inputs))
    if data["error"]:
        raise AssertionError(f"AdditiveAttention (same inputs again) raised {data['error']}")
    again = _pair(data["result"], "forward")
    if not kit.close(again[0], first[0], atol=1e-6):
        raise AssertionError("the same inputs gave a different context on a later call: do not keep state between "
                             "calls (no caching of keys or weights on self).")
    if data["changed"]:
        names = ", ".join(("query", "keys", "values", "mask")[i] for i in data["changed"])
        raise AssertionError(f"AdditiveAttention changed its input(s) {names} in place; compute new tensors instead.")
