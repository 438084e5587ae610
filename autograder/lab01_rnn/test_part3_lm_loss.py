"""Part 3: lm_loss(logits, targets) -> mean next-token cross-entropy, a float32 scalar (also under autocast).

The float32 logits compared with F.cross_entropy are drawn per submission (``submission.seed``); the
float16 ones stay fixed (chosen so that log(softmax) in half precision overflows).
"""
import pytest
import torch
import torch.nn.functional as F

from autograder import kit
from genlab.checks import lab01_bugs as bugs

NAME = "lm_loss"




def _case(B, T, V, seed, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, V, generator=g) * scale, torch.randint(V, (B, T), generator=g)


def _loss(submission, logits, targets, what):
    return kit.call(submission.function(NAME), logits, targets, context=f"{NAME}({what})",
                    hint=bugs.LOSS_FLATTEN_HINT)


@pytest.mark.points(1)
def test_returns_a_float32_scalar_tensor(submission):
    logits, targets = _case(2, 3, 5, seed=0)
    got = _loss(submission, logits, targets, "logits (2, 3, 5)")
    kit.expect_tensor(got, "the loss", shape=(), dtype=torch.float32,
                      hint="Return one 0-d float32 tensor (the mean), not a Python float and not one value per position.")


@pytest.mark.points(1)
@pytest.mark.parametrize("B, T, V", [(3, 7, 11), (5, 2, 103), (1, 9, 4), (6, 6, 30)])
def test_matches_the_mean_cross_entropy(submission, B, T, V):
    logits, targets = _case(B, T, V, seed=kit.input_seed(submission, B * 10 + T))
    got = _loss(submission, logits, targets, f"logits {(B, T, V)}")
    kit.fail_if(bugs.name_loss_bug(got, logits, targets), f"B={B}, T={T}, V={V}")
    want = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
    kit.expect_close(got, want, "the loss compared with F.cross_entropy", atol=1e-5)


@pytest.mark.points(1)
def test_the_mean_does_not_grow_with_batch_or_window(submission):
    """Repeating the batch or the window leaves the mean unchanged (a sum would double)."""
    logits, targets = _case(2, 4, 9, seed=3)
    base = _loss(submission, logits, targets, "a batch")
    for name, (z, y) in (("the batch repeated twice", (logits.repeat(2, 1, 1), targets.repeat(2, 1))),
                         ("the window repeated twice", (logits.repeat(1, 2, 1), targets.repeat(1, 2)))):
        got = _loss(submission, z, y, name)
        kit.expect_tensor(got, "the loss", shape=())
        kit.expect_tensor(base, "the loss", shape=())
        if abs(float(got) - float(base)) > 1e-4 * (1 + abs(float(base))):
            kit.fail_if(bugs.name_loss_bug(got, z, y) or "average over every position, B·T of them.", name)


@pytest.mark.points(1)
def test_half_precision_logits_give_an_accurate_float32_loss(submission):
    """float16 logits (as a 16-mixed model produces them): float32 result, finite, accurate."""
    logits, targets = _case(4, 8, 50, seed=4, scale=12.0)
    half = logits.half()
    got = _loss(submission, half, targets, "float16 logits")
    kit.fail_if(bugs.name_loss_bug(got, half.float(), targets, atol=1e-3), "float16 logits")


@pytest.mark.points(1)
def test_the_gradient_is_softmax_minus_onehot_over_bt(submission):
    B, T, V = 2, 3, 6
    logits, targets = _case(B, T, V, seed=kit.input_seed(submission, 5))
    data = kit.call(submission.probe, "gradients", fn=NAME, args=(logits, targets), wrt=[0],
                    context=f"backpropagating through {NAME}")
    grad = data["grads"][0]
    if grad is None:
        raise AssertionError("no gradient reached the logits: keep the loss a torch computation of the logits "
                             "(no .item(), no numpy, no torch.no_grad()).")
    want = (torch.softmax(logits, -1) - F.one_hot(targets, V)) / (B * T)
    kit.expect_close(grad, want, "the gradient with respect to the logits", atol=1e-5,
                     hint="for the mean loss it is (softmax(logits) - onehot(targets)) / (B·T).")


@pytest.mark.points(1)
def test_logits_left_alone_gradient_reaches_them_and_no_state(submission):
    """The logits come back unchanged (in the worker, on the very tensor passed: no in-place
    `logits -= logits.max(...)`), the gradient reaches them, and the same inputs give the same loss
    after a call on other logits."""
    submission.function(NAME)
    kit.expect_contract(submission, NAME, _case(2, 4, 9, seed=6), NAME, names=("logits", "targets"))


@pytest.mark.points(2)
def test_loss_under_cpu_float16_autocast(submission):
    """lm_loss of float16 logits inside torch.autocast("cpu", dtype=torch.float16): float32 and finite."""
    submission.function("lm_loss")
    g = torch.Generator().manual_seed(30)
    logits = (torch.randn(3, 6, 40, generator=g) * 15).half()
    targets = torch.randint(40, (3, 6), generator=g)
    data = kit.call(submission.probe, "autocast", fn="lm_loss", args=(logits, targets), dtype="float16",
                    context="lm_loss inside torch.autocast('cpu', dtype=torch.float16)")
    outputs, dtypes = data["outputs"], data["output_dtypes"]
    if len(outputs) != 1 or outputs[0].dim() != 0:
        raise AssertionError(f"under autocast lm_loss should still return one 0-d tensor, got {len(outputs)} tensor(s).")
    if dtypes[0] != "float32":
        raise AssertionError(f"under float16 autocast the loss came back as {dtypes[0]}: cast the logits with "
                             "logits.float() before the cross-entropy, so the loss is float32.")
    kit.expect_finite(outputs[0], "the loss under float16 autocast",
                      hint="use log_softmax / F.cross_entropy on float32 logits, never log(softmax(x)) in float16.")
    kit.fail_if(bugs.name_loss_bug(outputs[0], logits.float(), targets, atol=1e-3), "under float16 autocast")
