"""Part 3: class MultiHeadAttention(d_model, n_heads) with split_heads, merge_heads, forward; float16 autocast."""
import pytest
import torch

from autograder import kit
from genlab.checks import lab03_bugs as bugs

NAME = "MultiHeadAttention"
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")


def _call(fn, /, *args, hint="", **kwargs):
    return bugs.explained_call(kit.call, fn, *args, hint=hint, **kwargs)


def _loaded(submission, d, H, state):
    cls = submission.function(NAME)
    mha = _call(cls, d, H)
    kit.call(mha.load_state_dict, state, strict=False, context=f"loading weights into MultiHeadAttention({d}, {H})",
             hint="It needs q_proj, k_proj, v_proj and out_proj, each nn.Linear(d_model, d_model) with bias.")
    return mha


@pytest.mark.points(2)
def test_projections(submission):
    """q_proj, k_proj, v_proj, out_proj are Linear(d_model, d_model) layers with biases."""
    cls = submission.function(NAME)
    mha = _call(cls, 12, 3)
    _, state = bugs.torch_mha(12, 3, 0)
    kit.call(mha.load_state_dict, state, strict=True, context="loading the weights of four nn.Linear(12, 12)",
             hint="MultiHeadAttention(12, 3) should have exactly four layers with parameters, q_proj, k_proj, "
                  "v_proj and out_proj, each nn.Linear(12, 12) with bias.")


@pytest.mark.points(3)
def test_split_heads(submission):
    """(B, T, d) -> (B, H, T, d_h) with head h holding features [h*d_h:(h+1)*d_h]."""
    cls = submission.function(NAME)
    mha = _call(cls, 12, 3)
    x = torch.arange(2 * 5 * 12, dtype=torch.float32).reshape(2, 5, 12)
    heads = _call(mha.split_heads, x)
    if not isinstance(heads, torch.Tensor) or tuple(heads.shape) != (2, 3, 5, 4):
        raise AssertionError(f"split_heads should map (B, T, d_model) = (2, 5, 12) to (B, H, T, d_head) = (2, 3, 5, 4), "
                             f"got {kit.describe(heads)}.")
    want = x.view(2, 5, 3, 4).transpose(1, 2)
    if not torch.equal(heads, want):
        if torch.equal(heads, x.reshape(2, 3, 5, 4)):
            raise AssertionError("split_heads reshapes (B, T, d) straight to (B, H, T, d_h), which mixes time steps and "
                                 "heads: view as (B, T, H, d_h) first, then .transpose(1, 2).")
        raise AssertionError("split_heads: head h must hold features [h*d_head:(h+1)*d_head] of every time step; "
                             "view as (B, T, H, d_head), then transpose(1, 2).")


@pytest.mark.points(2)
def test_merge_heads(submission):
    """(B, H, T, d_h) -> (B, T, d), the inverse of split_heads."""
    cls = submission.function(NAME)
    mha = _call(cls, 12, 3)
    heads = torch.arange(2 * 3 * 5 * 4, dtype=torch.float32).reshape(2, 3, 5, 4)
    merged = _call(mha.merge_heads, heads)
    if not isinstance(merged, torch.Tensor) or tuple(merged.shape) != (2, 5, 12):
        raise AssertionError(f"merge_heads should map (2, 3, 5, 4) (B, H, T, d_head) to (2, 5, 12), got "
                             f"{kit.describe(merged)}.")
    want = heads.transpose(1, 2).reshape(2, 5, 12)
    if not torch.equal(merged, want):
        if torch.equal(merged, heads.reshape(2, 5, 12)):
            raise AssertionError("merge_heads reshapes (B, H, T, d_h) to (B, T, d) without moving the head axis: "
                                 "transpose(1, 2) to (B, T, H, d_h) first, then reshape.")
        raise AssertionError("merge_heads should put head h's features at [h*d_head:(h+1)*d_head] of each time step "
                             "(the inverse of split_heads).")


@pytest.mark.points(3)
def test_self_attention_matches_torch(submission):
    """Causal self-attention equals nn.MultiheadAttention with the same weights."""
    d, H = 32, 4
    ref, state = bugs.torch_mha(d, H, 1)
    mha = _loaded(submission, d, H, state)
    x = torch.randn(3, 6, d, generator=torch.Generator().manual_seed(2))
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    got = _call(mha, x, x, x, mask=causal)
    hint = bugs.name_mha_bug(got, state, H, x, x, x, causal)
    if hint is not None:
        raise AssertionError(f"causal self-attention: {hint}")
    with torch.no_grad():
        want = ref(x, x, x, attn_mask=~causal, need_weights=False)[0]
    err = (got - want).abs().max().item()
    if err > 1e-4:
        raise AssertionError(f"causal self-attention differs from torch.nn.MultiheadAttention by {err:.3g}.")


@pytest.mark.points(1)
def test_last_weights_are_per_head(submission):
    """self.last_weights holds each head's weights (B, H, T_q, T_k), as nn.MultiheadAttention gives
    them with average_attn_weights=False."""
    d, H = 16, 4
    ref, state = bugs.torch_mha(d, H, 5)
    mha = _loaded(submission, d, H, state)
    x = torch.randn(2, 5, d, generator=torch.Generator().manual_seed(6))
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    _call(mha, x, x, x, mask=causal)
    got = kit.call(mha.getattr, "last_weights", context="reading self.last_weights")
    kit.expect_tensor(got, "self.last_weights after a forward", shape=(2, H, 5, 5),
                      hint="keep the weights of every head, (B, n_heads, T_q, T_k): not their mean, not one head.")
    with torch.no_grad():
        want = ref(x, x, x, attn_mask=~causal, need_weights=True, average_attn_weights=False)[1]
    kit.expect_close(got, want, "self.last_weights", atol=1e-5,
                     hint="store the weights your scaled_dot_product_attention returned, per head.")


@pytest.mark.points(1)
def test_inputs_state_and_gradients(submission):
    """The input is left unchanged, no state is kept between calls, and gradients reach the input
    and every projection's weights."""
    d, H = 16, 2
    _, state = bugs.torch_mha(d, H, 7)
    mha = _loaded(submission, d, H, state)
    x = torch.randn(2, 4, d, generator=torch.Generator().manual_seed(8))
    causal = torch.ones(4, 4, dtype=torch.bool).tril()
    kit.expect_contract(submission, mha, (x, x, x, causal), "MultiHeadAttention.forward",
                        names=("query", "key", "value", "mask"))


@pytest.mark.points(3)
def test_cross_attention_matches_torch(submission):
    """Query from one sequence, key/value from another (T_q != T_k), with key padding."""
    d, H = 24, 3
    ref, state = bugs.torch_mha(d, H, 3)
    mha = _loaded(submission, d, H, state)
    g = torch.Generator().manual_seed(4)
    y, memory = torch.randn(2, 3, d, generator=g), torch.randn(2, 7, d, generator=g)
    pad = torch.arange(7)[None, :] < torch.tensor([7, 4])[:, None]
    mask = pad[:, None, None, :]
    got = _call(mha, y, memory, memory, mask=mask, context="cross-attention (query length 3, key/value length 7)",
                hint="Keys and values come from `key` and `value` (the encoder's output), whose length may differ "
                     "from the query's; project query/key/value with q_proj/k_proj/v_proj respectively")
    hint = bugs.name_mha_bug(got, state, H, y, memory, memory, mask)
    if hint is not None:
        raise AssertionError(f"cross-attention (query length 3, key/value length 7): {hint}")
    with torch.no_grad():
        want = ref(y, memory, memory, key_padding_mask=~pad, need_weights=False)[0]
    err = (got - want).abs().max().item()
    if err > 1e-4:
        raise AssertionError(f"cross-attention differs from torch.nn.MultiheadAttention by {err:.3g}.")


@pytest.mark.points(3)
def test_head_layout_for_other_head_counts(submission):
    """Head order agrees with torch's packing for 1, 2 and 8 heads; key and value used separately."""
    g = torch.Generator().manual_seed(5)
    for d, H in ((16, 1), (16, 2), (16, 8)):
        ref, state = bugs.torch_mha(d, H, 10 + H)
        mha = _loaded(submission, d, H, state)
        x, kx, vx = (torch.randn(2, 5, d, generator=g) for _ in range(3))
        got = _call(mha, x, kx, vx)
        hint = bugs.name_mha_bug(got, state, H, x, kx, vx)
        if hint is not None:
            raise AssertionError(f"with d_model={d}, n_heads={H} and different query/key/value inputs: {hint}")
        with torch.no_grad():
            want = ref(x, kx, vx, need_weights=False)[0]
        if (got - want).abs().max() > 1e-4:
            raise AssertionError(f"with d_model={d}, n_heads={H} the output differs from torch.nn.MultiheadAttention.")


@pytest.mark.points(1)
def test_multi_head_attention_under_autocast(submission):
    """Your MultiHeadAttention with a causal mask inside CPU float16 autocast."""
    torch.manual_seed(3)
    d, H = 16, 4
    state = {f"{n}.{p}": (torch.randn(d, d) * 0.2 if p == "weight" else torch.randn(d) * 0.1)
             for n in PROJECTIONS for p in ("weight", "bias")}
    x = torch.randn(2, 5, d)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    mha = _call(submission.function(NAME), d, H, context=f"MultiHeadAttention({d}, {H})")
    kit.call(mha.load_state_dict, state, strict=False, context="loading q_proj, k_proj, v_proj and out_proj weights")
    data = _call(submission.probe, "autocast", fn=mha, args=(x, x, x), kwargs={"mask": causal}, dtype="float16",
                 context="under float16 autocast")
    out = kit.expect_tensor(data["outputs"][0] if data["outputs"] else None, "under float16 autocast the output",
                            shape=(2, 5, d))
    kit.expect_finite(out, "under float16 autocast the output",
                      "Fill masked scores with torch.finfo(scores.dtype).min in your attention (part 1).")
    err = (out.double() - bugs.mha_formula(state, H, x, x, x, causal)).abs().max().item()
    if err > 5e-2:
        raise AssertionError(f"under float16 autocast the output differs from float32 by {err:.3g}. " + bugs.PART1_NOTE)
