"""Part 2: class AdditiveAttention(query_size, key_size, attention_size) with W, U, v and
forward(query, keys, values, mask=None) -> (context (B, d_v), weights (B, S)).

The weights and inputs are drawn per submission (``submission.seed``); the lengths are fixed.
"""
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
    attn = _loaded(submission, 7, 5, 4, _state(7, 5, 4, kit.input_seed(submission, 1)))
    query, keys, values, mask = _inputs(kit.input_seed(submission, 2), 4, 6, 7, 5, 3, [6, 2, 1, 4])
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
        state = _state(d_q, d_k, d_a, kit.input_seed(submission, seed))
        attn = _loaded(submission, d_q, d_k, d_a, state)
        query, keys, values, mask = _inputs(kit.input_seed(submission, seed + 10), B, S, d_q, d_k, d_v, lengths)
        for m, where in ((mask, f"with a padding mask (lengths {lengths})"), (None, "without a mask")):
            context, weights = _pair(_call(attn, query, keys, values, m, context=f"AdditiveAttention {where}"),
                                     "AdditiveAttention.forward")
            kit.fail_if(bugs.name_additive_bug(context, weights, state, query, keys, values, m),
                        f"AdditiveAttention {where}")


@pytest.mark.points(3)
def test_weights_sum_to_one_and_padding_is_exactly_zero(submission):
    """Rows sum to 1 over the real positions; padded positions get exactly 0.0."""
    state = _state(5, 5, 6, kit.input_seed(submission, 5))
    attn = _loaded(submission, 5, 5, 6, state)
    query, keys, values, mask = _inputs(kit.input_seed(submission, 6), 4, 7, 5, 5, 5, [7, 1, 4, 2])
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
    attn = _loaded(submission, 6, 4, 5, _state(6, 4, 5, kit.input_seed(submission, 7)))
    query, keys, values, mask = _inputs(kit.input_seed(submission, 8), 3, 5, 6, 4, 4, [5, 2, 1])
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
    state = _state(6, 4, 5, kit.input_seed(submission, 9))
    attn = _loaded(submission, 6, 4, 5, state)
    query, keys, values, mask = _inputs(kit.input_seed(submission, 10), 3, 6, 6, 4, 4, [6, 3, 1])
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
def test_inputs_state_and_gradients(submission):
    """query, keys, values and the mask come back unchanged, no state is kept between calls, and
    gradients reach the query, the keys, the values and W, U and v (the decoder learns through them)."""
    attn = _loaded(submission, 6, 4, 5, _state(6, 4, 5, 13))
    query, keys, values, mask = _inputs(14, 2, 4, 6, 4, 4, [4, 2])
    kit.expect_contract(submission, attn, (query, keys, values, mask), "AdditiveAttention.forward",
                        names=("query", "keys", "values", "mask"))


@pytest.mark.points(1)
def test_padded_keys_get_no_gradient(submission):
    """Backpropagating through the context gives the keys at padded positions exactly zero gradient."""
    attn = _loaded(submission, 6, 4, 5, _state(6, 4, 5, 11))
    query, keys, values, mask = _inputs(12, 3, 5, 6, 4, 4, [5, 3, 2])
    data = kit.call(submission.probe, "gradients", fn=attn, args=[query, keys, values, mask], wrt=[0, 1, 2],
                    output_index=0, context="AdditiveAttention's gradients")
    gk = data["grads"][1]
    if not isinstance(gk, torch.Tensor) or float(gk[mask].abs().sum()) == 0.0:
        raise AssertionError("no gradient reached the keys: compute the scores from them with the layers themselves "
                             "(no .detach(), torch.no_grad() or .item() on the way).")
    if bool((gk[~mask] != 0).any()):
        raise AssertionError("the keys at padded positions received a gradient: they must not influence the output.")
