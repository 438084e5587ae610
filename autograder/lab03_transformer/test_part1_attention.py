"""Part 1: scaled_dot_product_attention(q, k, v, mask=None) -> (output, weights), float16 included."""
import math

import pytest
import torch
import torch.nn.functional as F

from autograder import kit
from genlab.checks import lab03_bugs as bugs

NAME = "scaled_dot_product_attention"


def _call(fn, /, *args, hint="", **kwargs):
    return bugs.explained_call(kit.call, fn, *args, hint=hint, **kwargs)


def _pair(result):
    return kit.expect_tuple(result, 2, NAME, ("output", "weights"))


def _qkv(seed, lead, T_q, T_k, d_k, d_v, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*lead, T_q, d_k, generator=g) * scale
    k = torch.randn(*lead, T_k, d_k, generator=g) * scale
    v = torch.randn(*lead, T_k, d_v, generator=g)
    return q, k, v


@pytest.mark.points(2)
def test_inputs_state_and_gradients(submission):
    """q, k, v and the mask come back unchanged, no state is kept between calls, and gradients
    reach q, k and v (the model learns through attention)."""
    q, k, v = _qkv(40, (2, 2), 5, 6, 8, 4)
    mask = torch.rand(5, 6, generator=torch.Generator().manual_seed(41)) > 0.3
    mask[:, 0] = True
    kit.expect_contract(submission, NAME, (q, k, v, mask), NAME, names=("q", "k", "v", "mask"))


@pytest.mark.points(1)
def test_unbatched_inputs(submission):
    """(T, d) inputs with no batch or head axis: the docstring's `...` may be empty."""
    sdpa = submission.function(NAME)
    q, k, v = _qkv(42, (), 4, 6, 8, 5)
    out, w = _pair(_call(sdpa, q, k, v, hint="Use k.transpose(-2, -1) (not k.T or k.permute(0, 2, 1)), which "
                                               "works whatever the number of leading axes"))
    kit.fail_if(bugs.name_attention_bug(out, w, q, k, v), "for unbatched (T, d) inputs")


@pytest.mark.points(2)
def test_shapes_and_dtype(submission):
    """Output (..., T_q, d_v) and weights (..., T_q, T_k) for 3-D and 4-D inputs."""
    sdpa = submission.function(NAME)
    for lead, (T_q, T_k, d_k, d_v) in (((2, 3), (5, 7, 8, 6)), ((4,), (3, 3, 16, 16)), ((1, 1), (1, 4, 2, 5))):
        q, k, v = _qkv(0, lead, T_q, T_k, d_k, d_v)
        out, w = _pair(_call(sdpa, q, k, v, hint="Use k.transpose(-2, -1) (not k.T) so that leading batch/head "
                                                  "axes are kept, and @ rather than torch.mm or torch.bmm"))
        want_out, want_w = (*lead, T_q, d_v), (*lead, T_q, T_k)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != want_out:
            raise AssertionError(f"for q {(*lead, T_q, d_k)}, k {(*lead, T_k, d_k)}, v {(*lead, T_k, d_v)} the output "
                                 f"should have shape {want_out}, got {kit.describe(out)}. Use k.transpose(-2, -1) "
                                 "(not k.T) so any leading batch/head axes are kept.")
        if not isinstance(w, torch.Tensor) or tuple(w.shape) != want_w:
            raise AssertionError(f"the weights should have shape {want_w} (..., T_q, T_k), got {kit.describe(w)}.")
        if out.dtype != torch.float32:
            raise AssertionError(f"float32 inputs should give a float32 output, got {out.dtype}.")


@pytest.mark.points(3)
def test_matches_formula_without_mask(submission):
    """softmax(QKᵀ/√d_k)V against a float64 computation, for several d_k."""
    sdpa = submission.function(NAME)
    for seed, d_k in ((1, 4), (2, 64), (3, 25)):
        q, k, v = _qkv(seed, (2, 2), 6, 9, d_k, 5)
        out, w = _pair(_call(sdpa, q, k, v))
        kit.fail_if(bugs.name_attention_bug(out, w, q, k, v), f"without a mask (d_k={d_k})")


@pytest.mark.points(3)
def test_scale_is_one_over_sqrt_dk(submission):
    """The 1/√d_k scale: wrong scales (none, 1/d_k, √d_v, √T_k) give measurably different results."""
    sdpa = submission.function(NAME)
    for seed, d_k in ((4, 9), (5, 100)):
        q, k, v = _qkv(seed, (3,), 4, 6, d_k, 3, scale=0.7)
        out, w = _pair(_call(sdpa, q, k, v))
        kit.fail_if(bugs.name_attention_bug(out, w, q, k, v), f"d_k={d_k}")


@pytest.mark.points(3)
def test_softmax_over_keys(submission):
    """Each query's weights sum to 1 over the keys (T_q != T_k, so the wrong axis shows)."""
    sdpa = submission.function(NAME)
    q, k, v = _qkv(6, (2,), 3, 8, 16, 4)
    out, w = _pair(_call(sdpa, q, k, v))
    if not isinstance(w, torch.Tensor) or w.shape != (2, 3, 8):
        raise AssertionError(f"weights should have shape (B, T_q, T_k), got {kit.describe(w)}.")
    sums = w.double().sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
        col = w.double().sum(-2)
        if torch.allclose(col, torch.ones_like(col), atol=1e-4):
            raise AssertionError("the weights sum to 1 over the queries (dim=-2); the softmax must run over the keys, "
                                 "the last axis (dim=-1), so that each query's weights sum to 1.")
        raise AssertionError(f"each row of the weights should sum to 1; row sums range from {sums.min():.4g} to "
                             f"{sums.max():.4g}. Apply torch.softmax(scores, dim=-1).")
    if (w < 0).any():
        raise AssertionError("attention weights must be non-negative (they come out of a softmax).")


def _mask(seed, shape):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(*shape, generator=g) > 0.4
    mask[..., 0] = True  # every query keeps at least one key here
    return mask


@pytest.mark.points(3)
def test_matches_torch_with_mask(submission):
    """A random boolean mask (True = may attend), compared with torch's fused attention."""
    sdpa = submission.function(NAME)
    q, k, v = _qkv(7, (2, 3), 5, 6, 8, 4)
    mask = _mask(8, (2, 3, 5, 6))
    out, w = _pair(_call(sdpa, q, k, v, mask=mask))
    kit.fail_if(bugs.name_attention_bug(out, w, q, k, v, mask), "with a mask")
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    err = (out - want).abs().max().item()
    if err > 1e-4:
        raise AssertionError(f"with a mask the output differs from torch's scaled_dot_product_attention by {err:.3g}.")


@pytest.mark.points(2)
def test_masks_broadcast(submission):
    """Masks of shape (T_q, T_k) and (B, 1, 1, T_k) broadcast over batch and heads."""
    sdpa = submission.function(NAME)
    q, k, v = _qkv(9, (2, 4), 6, 6, 8, 8)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    pad = (torch.arange(6)[None, :] < torch.tensor([6, 3])[:, None])[:, None, None, :]
    for mask, what in ((causal, "a (T_q, T_k) causal mask"), (pad, "a (B, 1, 1, T_k) padding mask")):
        out, w = _pair(_call(sdpa, q, k, v, mask=mask, hint="The mask broadcasts against the scores (..., T_q, T_k)"))
        kit.fail_if(bugs.name_attention_bug(out, w, q, k, v, mask), f"with {what}")


@pytest.mark.points(2)
def test_masked_weights_are_exactly_zero(submission):
    """Masked positions get weight exactly 0.0 (not just small)."""
    sdpa = submission.function(NAME)
    q, k, v = _qkv(10, (2,), 7, 7, 16, 4, scale=3.0)
    mask = torch.ones(7, 7, dtype=torch.bool).tril()
    out, w = _pair(_call(sdpa, q, k, v, mask=mask))
    if not isinstance(w, torch.Tensor) or w.shape != (2, 7, 7):
        raise AssertionError(f"weights should have shape (2, 7, 7), got {kit.describe(w)}.")
    leaked = w.masked_select(~mask.expand_as(w))
    if leaked.numel() and leaked.abs().max() != 0:
        raise AssertionError(f"masked positions should have weight exactly 0, the largest is {leaked.abs().max():.3g}. "
                             "Fill masked scores with torch.finfo(scores.dtype).min before the softmax and set the "
                             "masked weights to 0 after it; adding a moderate negative number is not enough.")


@pytest.mark.points(2)
def test_fully_masked_row_is_zero_not_nan(submission):
    """A query with no allowed key: weights all 0, output 0, nothing NaN."""
    sdpa = submission.function(NAME)
    q, k, v = _qkv(11, (2,), 4, 5, 8, 3)
    mask = torch.ones(2, 4, 5, dtype=torch.bool)
    mask[0, 1] = False
    mask[1, 3] = False
    out, w = _pair(_call(sdpa, q, k, v, mask=mask))
    kit.fail_if(bugs.name_attention_bug(out, w, q, k, v, mask), "with a query whose keys are all masked")


@pytest.mark.points(3)
def test_causal_invariance(submission):
    """With a causal mask, changing later keys/values leaves earlier outputs bit-for-bit unchanged."""
    sdpa = submission.function(NAME)
    q, k, v = _qkv(12, (2, 2), 8, 8, 8, 8)
    causal = torch.ones(8, 8, dtype=torch.bool).tril()
    out1, _ = _pair(_call(sdpa, q, k, v, mask=causal))
    k2, v2 = k.clone(), v.clone()
    k2[..., 5:, :] = 100 * torch.randn_like(k2[..., 5:, :])
    v2[..., 5:, :] = -7.0
    out2, _ = _pair(_call(sdpa, q, k2, v2, mask=causal))
    if not (isinstance(out1, torch.Tensor) and isinstance(out2, torch.Tensor) and out1.shape == out2.shape):
        raise AssertionError(f"output should be a tensor of shape (2, 2, 8, 8), got {kit.describe(out1)}.")
    if not torch.equal(out1[..., :5, :], out2[..., :5, :]):
        err = (out1[..., :5, :] - out2[..., :5, :]).abs().max().item()
        raise AssertionError(f"with a causal mask, changing keys/values at positions >= t changed the outputs of "
                             f"earlier positions (by up to {err:.3g}): information leaks from the future. Masked "
                             "positions must get weight exactly 0 (check which side of the diagonal you mask).")


@pytest.mark.points(3)
def test_padding_invariance(submission):
    """Changing padded keys/values does not change any output."""
    sdpa = submission.function(NAME)
    q, k, v = _qkv(13, (3,), 4, 6, 8, 5)
    lengths = torch.tensor([6, 4, 1])
    pad = (torch.arange(6)[None, :] < lengths[:, None])[:, None, :]  # (B, 1, T_k)
    out1, _ = _pair(_call(sdpa, q, k, v, mask=pad))
    k2, v2 = k.clone(), v.clone()
    k2[~pad[:, 0]] = 50.0
    v2[~pad[:, 0]] = 1e4
    out2, _ = _pair(_call(sdpa, q, k2, v2, mask=pad))
    if not (isinstance(out1, torch.Tensor) and isinstance(out2, torch.Tensor) and out1.shape == out2.shape):
        raise AssertionError(f"output should be a tensor of shape (3, 4, 5), got {kit.describe(out1)}.")
    if not torch.allclose(out1, out2, atol=1e-6, rtol=0):
        err = (out1 - out2).abs().max().item()
        raise AssertionError(f"changing the keys/values of padding positions changed the output (by up to {err:.3g}): "
                             "padded keys must get weight exactly 0.")


# ----------------------------------------------------------------- float16 (mixed precision)

def _fp16_inputs(seed, B=2, H=2, T=6, d=8):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, H, T, d, generator=g) for _ in range(3))
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    pad = torch.arange(T)[None, :] < torch.tensor([T, T - 2])[:, None]
    return q, k, v, causal[None, None] & pad[:, None, None, :]


@pytest.mark.points(3)
def test_half_inputs_with_mask(submission):
    """float16 tensors with a causal + padding mask: no overflow error, finite, float16 output."""
    sdpa = submission.function(NAME)
    q, k, v, mask = _fp16_inputs(0)
    h = (q.half(), k.half(), v.half())
    out, w = _pair(_call(sdpa, *h, mask, context="on float16 inputs"))
    kit.fail_if(bugs.name_half_attention_bug(out, w, *h, mask), "float16 inputs")


@pytest.mark.points(1)
def test_half_fully_masked_row(submission):
    """float16, a query with no allowed key: zeros, no NaN."""
    sdpa = submission.function(NAME)
    q, k, v, mask = _fp16_inputs(1)
    mask = mask.expand(2, 2, 6, 6).clone()
    mask[1, 0, 2] = False
    h = (q.half(), k.half(), v.half())
    out, w = _pair(_call(sdpa, *h, mask, context="on float16 inputs"))
    kit.fail_if(bugs.name_half_attention_bug(out, w, *h, mask), "float16 inputs, a query whose keys are all masked")


@pytest.mark.points(4)
def test_autocast_float16_on_cpu(submission):
    """Inside torch.autocast("cpu", dtype=torch.float16), as under mixed-precision training."""
    q, k, v, mask = _fp16_inputs(2)
    data = _call(submission.probe, "autocast", fn=NAME, args=(q, k, v, mask), dtype="float16",
                 context="under float16 autocast")
    out, w = kit.expect_tuple(data["outputs"], 2, f"{NAME} under autocast", ("output", "weights"))
    kit.fail_if(bugs.name_half_attention_bug(out, w, q, k, v, mask, dtype=None), "under float16 autocast")


@pytest.mark.gpu
@pytest.mark.points(5)
def test_gpt_trains_with_16_mixed_on_gpu(submission):
    """20 Lightning steps of genlab's GPT with your attention, precision="16-mixed", on a GPU."""
    data = submission.probe("lightning_fit", model="genlab.models.gpt:GPT", data="genlab.data:CharTextDataModule",
                            parts={"attention": NAME}, from_data={"vocab_size": "vocab_size"},
                            model_kwargs=dict(block_size=32, n_layer=2, n_head=2, n_embd=64, lr=1e-3),
                            data_kwargs=dict(block_size=32, batch_size=8, seed=0), steps=20)
    if data.get("error"):
        fix = bugs.explain_error(data["error"])
        raise AssertionError(f"training GPT with your attention under precision='16-mixed' raised {data['error']}."
                             + (f" {fix}." if fix else ""))
    losses = data.get("losses", [])
    if len(losses) < 20 or not all(isinstance(x, float) and math.isfinite(x) for x in losses):
        bad = next((i for i, x in enumerate(losses) if not (isinstance(x, float) and math.isfinite(x))), None)
        raise AssertionError(f"under 16-mixed the training loss became inf/NaN at step {bad} (of {len(losses)}); "
                             "check the mask fill value and fully masked rows in float16.")
    if not data.get("params_finite"):
        raise AssertionError("under 16-mixed some parameters became inf/NaN after 20 steps.")
    if data.get("output_dtype") != "torch.float16":
        raise AssertionError(f"inside autocast the logits should be float16, got {data.get('output_dtype')}.")
    if data.get("loss_dtype") != "torch.float32":
        raise AssertionError(f"the loss should be float32, got {data.get('loss_dtype')}.")
