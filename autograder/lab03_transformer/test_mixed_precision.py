"""Mixed precision: the attention must survive float16 (CPU emulation here, a real GPU run when present)."""
import math

import pytest
import torch
import torch.nn.functional as F

from autograder import kit
from genlab.checks import lab03_bugs as bugs

OVERFLOW_HINT = (" In float16 the most negative number is -65504, so a literal like -1e9 cannot be stored: fill masked "
                 "scores with torch.finfo(scores.dtype).min, which is right for every dtype.")


def _call_fp16(fn, /, *args, **kwargs):
    """``kit.call`` that adds the float16 overflow hint to what the student's code raised."""
    try:
        return kit.call(fn, *args, **kwargs)
    except AssertionError as exc:
        hint = OVERFLOW_HINT if "overflow" in str(exc) or "Half" in str(exc) else ""
        raise AssertionError(f"on float16 inputs: {exc}.{hint}") from None


def _inputs(seed, B=2, H=2, T=6, d=8):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, H, T, d, generator=g) for _ in range(3))
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    pad = torch.arange(T)[None, :] < torch.tensor([T, T - 2])[:, None]
    mask = causal[None, None] & pad[:, None, None, :]
    return q, k, v, mask


def _check_result(out, w, q, k, v, mask, where):
    if not isinstance(out, torch.Tensor) or not isinstance(w, torch.Tensor):
        raise AssertionError(f"{where}: expected (output, weights) tensors, got {kit.describe(out)}, {kit.describe(w)}.")
    if not (torch.isfinite(out).all() and torch.isfinite(w).all()):
        raise AssertionError(f"{where}: the output or the weights contain inf/NaN. Fill masked scores with "
                             "torch.finfo(scores.dtype).min (not -inf, not -1e9) and zero masked weights after the softmax.")
    want = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask)
    err = (out.float() - want).abs().max().item()
    if err > 3e-2:
        raise AssertionError(f"{where}: the output differs from float32 attention by {err:.3g}, more than float16 "
                             "rounding explains. If part 1's tests fail too, fix those first.")


@pytest.mark.points(4)
def test_half_inputs_with_mask(submission):
    """float16 tensors with a causal + padding mask: no overflow error, finite, float16 output."""
    sdpa = submission.function("scaled_dot_product_attention")
    q, k, v, mask = _inputs(0)
    result = _call_fp16(sdpa, q.half(), k.half(), v.half(), mask)
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise AssertionError(f"expected (output, weights), got {kit.describe(result)}.")
    out, w = result
    _check_result(out, w, q, k, v, mask, "float16 inputs")
    if out.dtype != torch.float16:
        raise AssertionError(f"float16 inputs should give a float16 output, got {out.dtype}: do not convert to float32 "
                             "and back inside the function's result.")


@pytest.mark.points(1)
def test_half_fully_masked_row(submission):
    """float16, a query with no allowed key: zeros, no NaN."""
    sdpa = submission.function("scaled_dot_product_attention")
    q, k, v, mask = _inputs(1)
    mask = mask.expand(2, 2, 6, 6).clone()
    mask[1, 0, 2] = False
    out, w = _call_fp16(sdpa, q.half(), k.half(), v.half(), mask)
    if torch.isnan(out).any() or torch.isnan(w).any():
        raise AssertionError("float16: a query whose keys are all masked gave NaN; its weights and output must be 0.")
    if w[1, 0, 2].abs().max() != 0:
        raise AssertionError("float16: a query whose keys are all masked must get weights exactly 0.")


@pytest.mark.points(4)
def test_autocast_float16_on_cpu(submission):
    """Inside torch.autocast("cpu", dtype=torch.float16), as under mixed-precision training."""
    q, k, v, mask = _inputs(2)
    data = _call_fp16(submission.probe, "autocast", fn="scaled_dot_product_attention", args=(q, k, v, mask),
                      dtype="float16")
    out, w = kit.expect_tuple(data["outputs"], 2, "scaled_dot_product_attention under autocast", ("output", "weights"))
    _check_result(out, w, q, k, v, mask, "under float16 autocast")


@pytest.mark.points(1)
def test_multi_head_attention_under_autocast(submission):
    """Your MultiHeadAttention with a causal mask inside CPU float16 autocast."""
    torch.manual_seed(3)
    d, H = 16, 4
    state = {f"{n}.{p}": (torch.randn(d, d) * 0.2 if p == "weight" else torch.randn(d) * 0.1)
             for n in ("q_proj", "k_proj", "v_proj", "out_proj") for p in ("weight", "bias")}
    x = torch.randn(2, 5, d)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    mha = kit.call(submission.function("MultiHeadAttention"), d, H, context=f"MultiHeadAttention({d}, {H})")
    kit.call(mha.load_state_dict, state, strict=False, context="loading q_proj, k_proj, v_proj and out_proj weights")
    data = _call_fp16(submission.probe, "autocast", fn=mha, args=(x, x, x), kwargs={"mask": causal}, dtype="float16")
    out = kit.expect_tensor(data["outputs"][0] if data["outputs"] else None, "MultiHeadAttention's output")
    want = bugs.mha_formula(state, H, x, x, x, causal)
    if not torch.isfinite(out).all():
        raise AssertionError("MultiHeadAttention under float16 autocast produced inf/NaN.")
    err = (out.double() - want).abs().max().item()
    if err > 5e-2:
        raise AssertionError(f"MultiHeadAttention under float16 autocast differs from float32 by {err:.3g}. "
                             "If the tests of parts 1 and 3 fail too, fix those first.")


@pytest.mark.gpu
@pytest.mark.points(5)
def test_gpt_trains_with_16_mixed_on_gpu(submission):
    """20 Lightning steps of genlab's GPT with your attention, precision="16-mixed", on a GPU."""
    data = submission.probe("lab03_gpu_training", steps=20)
    if data.get("error"):
        hint = OVERFLOW_HINT if "overflow" in data["error"] else ""
        raise AssertionError(f"training GPT with your attention under precision='16-mixed' raised {data['error']}.{hint}")
    losses = data.get("losses", [])
    if len(losses) < 20 or not all(isinstance(x, float) and math.isfinite(x) for x in losses):
        bad = next((i for i, x in enumerate(losses) if not (isinstance(x, float) and math.isfinite(x))), None)
        raise AssertionError(f"under 16-mixed the training loss became inf/NaN at step {bad} (of {len(losses)}); "
                             "check the mask fill value and fully masked rows in float16.")
    if not data.get("params_finite"):
        raise AssertionError("under 16-mixed some parameters became inf/NaN after 20 steps.")
    if data.get("logits_dtype") != "torch.float16":
        raise AssertionError(f"inside autocast the logits should be float16, got {data.get('logits_dtype')}.")
    if data.get("loss_dtype") != "torch.float32":
        raise AssertionError(f"the loss should be float32, got {data.get('loss_dtype')}.")
