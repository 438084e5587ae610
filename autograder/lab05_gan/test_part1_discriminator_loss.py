"""Part 1: discriminator_loss(real_logits, fake_logits, label_smoothing=0.0) -> 0-dim float32 loss.

The random logits whose loss and gradients are computed here (an oracle) are drawn per
submission (``submission.seed``); the extreme and float16 ones are fixed.
"""
import pytest
import torch
from torch import nn

from autograder import kit
from genlab.checks import lab05_bugs as bugs

NAME = "discriminator_loss"


def _logits(seed, shape, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * scale




def _torch_oracle(real, fake, s=0.0):
    """torch's own BCEWithLogitsLoss in float64: mean over the real logits (target 1 - s) plus mean over the fakes."""
    bce = nn.BCEWithLogitsLoss()
    r, f = real.double(), fake.double()
    return bce(r, torch.full_like(r, 1.0 - s)) + bce(f, torch.zeros_like(f))


def _check(fn, real, fake, context, **kwargs):
    got = kit.call(fn, real, fake, context=f"{NAME}({context})", **kwargs)
    kit.fail_if(bugs.name_discriminator_loss_bug(got, real, fake, kwargs.get("label_smoothing", 0.0)), context)
    return got


@pytest.mark.points(3)
def test_matches_bce_with_logits(submission):
    """Random logits, real and fake batches of different sizes, against torch's BCEWithLogitsLoss."""
    fn = submission.function(NAME)
    for k, (n_real, n_fake) in ((100, (7, 5)), (101, (3, 9)), (102, (16, 16))):
        real, fake = _logits(kit.input_seed(submission, k), (n_real,)), _logits(kit.input_seed(submission, k + 50), (n_fake,))
        got = _check(fn, real, fake, f"{n_real} real, {n_fake} fake logits")
        kit.expect_close(got, _torch_oracle(real, fake), "the loss (against nn.BCEWithLogitsLoss)", atol=1e-5)


@pytest.mark.points(1)
def test_logits_of_shape_b_by_1(submission):
    """Logits shaped (B, 1), as a Linear(…, 1) head gives them: still one 0-dim loss."""
    fn = submission.function(NAME)
    real, fake = _logits(103, (6, 1)), _logits(104, (4, 1))
    got = _check(fn, real, fake, "logits of shape (B, 1)")
    kit.expect_tensor(got, "the loss", shape=(), dtype=torch.float32, hint=bugs.SCALAR_HINT)


@pytest.mark.points(3)
def test_one_sided_label_smoothing(submission):
    """label_smoothing=s: real targets 1 - s, fake targets stay 0."""
    fn = submission.function(NAME)
    for k, s in ((105, 0.1), (106, 0.3)):
        real, fake = _logits(kit.input_seed(submission, k), (8,)), _logits(kit.input_seed(submission, k + 50), (6,))
        got = kit.call(fn, real, fake, label_smoothing=s, context=f"{NAME}(..., label_smoothing={s})",
                       hints={"TypeError": "keep the signature discriminator_loss(real_logits, fake_logits, "
                                           "label_smoothing=0.0)."})
        kit.fail_if(bugs.name_discriminator_loss_bug(got, real, fake, s), f"label_smoothing={s}")
        kit.expect_close(got, _torch_oracle(real, fake, s), f"the loss with label_smoothing={s}", atol=1e-5)


@pytest.mark.points(2)
def test_finite_for_extreme_logits(submission):
    """Logits of ±30 and ±100 (a confident D): the right, finite loss and finite gradients."""
    fn = submission.function(NAME)
    real = torch.tensor([100.0, -100.0, 30.0, -30.0, 2.0, -60.0])
    fake = torch.tensor([-100.0, 100.0, -30.0, 30.0, 0.0, 60.0, -7.0])
    _check(fn, real, fake, "logits ±30 and ±100")
    data = kit.call(submission.probe, "gradients", fn=NAME, args=[real, fake], context=f"{NAME}'s gradients")
    for name, grad in zip(("real_logits", "fake_logits"), data["grads"], strict=True):
        if grad is None:
            raise AssertionError(f"no gradient reached {name}: compute the loss from the logits with torch operations "
                                 "(no .item(), .detach() or torch.no_grad()).")
        kit.expect_finite(grad, f"the gradient with respect to {name} for logits ±100", hint=bugs.LOGITS_HINT)


@pytest.mark.points(2)
def test_gradients_are_the_bce_gradients(submission):
    """d loss / d real = (sigmoid(r) - 1) / B_real and d loss / d fake = sigmoid(f) / B_fake."""
    real, fake = _logits(kit.input_seed(submission, 107), (5,), 3.0), _logits(kit.input_seed(submission, 108), (4,), 3.0)
    data = kit.call(submission.probe, "gradients", fn=NAME, args=[real, fake], context=f"{NAME}'s gradients")
    want = ((torch.sigmoid(real.double()) - 1) / 5, torch.sigmoid(fake.double()) / 4)
    for name, grad, w in zip(("real_logits", "fake_logits"), data["grads"], want, strict=True):
        if grad is None:
            raise AssertionError(f"no gradient reached {name}.")
        if not kit.close(grad, w, 1e-6):
            extra = ""
            if kit.close(grad, -w, 1e-6):
                extra = " It has the opposite sign: the loss is the negative of what D should minimise."
            raise AssertionError(f"the gradient with respect to {name} is not BCE-with-logits' (sigmoid(x) - target) / B."
                                 f"{extra} {bugs.LOGITS_HINT}")


@pytest.mark.points(1)
def test_float16_logits_give_a_float32_loss(submission):
    """float16 logits (as under autocast): a finite float32 loss equal to the float32 one."""
    fn = submission.function(NAME)
    real, fake = _logits(109, (8,), 4.0).half(), _logits(110, (8,), 4.0).half()
    got = _check(fn, real, fake, "float16 logits")
    kit.expect_tensor(got, "the loss for float16 logits", dtype=torch.float32, hint=bugs.FLOAT32_HINT)
    extreme = torch.tensor([100.0, -100.0, 30.0]).half(), torch.tensor([-100.0, 100.0, -30.0]).half()
    _check(fn, *extreme, "float16 logits ±100")


@pytest.mark.points(1)
def test_logits_left_alone_gradients_reach_them_and_no_state(submission):
    """Both logits come back unchanged (in the worker, on the very tensors passed: no in-place
    `.neg_()` or `.clamp_()`), gradients reach both (no `.detach()` of the fakes here: that is the
    training step's job, on the generator's output), and the same logits give the same loss after
    a call on other logits."""
    submission.function(NAME)
    kit.expect_contract(submission, NAME, (_logits(111, (6,)), _logits(112, (5,))), NAME,
                        names=("real_logits", "fake_logits"))
