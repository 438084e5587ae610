"""Part 2: generator_loss(fake_logits) -> the non-saturating -mean log D(G(z)), a 0-dim float32 loss.

The random logits whose loss and gradient are computed here (an oracle) are drawn per submission
(``submission.seed``); the extreme and float16 ones are fixed.
"""
import pytest
import torch
from torch import nn

from autograder import kit
from genlab.checks import lab05_bugs as bugs

NAME = "generator_loss"


def _logits(seed, shape, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * scale




def _check(fn, fake, context):
    got = kit.call(fn, fake, context=f"{NAME}({context})")
    kit.fail_if(bugs.name_generator_loss_bug(got, fake), context)
    return got


def _grad(submission, fake):
    data = kit.call(submission.probe, "gradients", fn=NAME, args=[fake], context=f"{NAME}'s gradient")
    return data["grads"][0]


@pytest.mark.points(3)
def test_matches_bce_with_target_one(submission):
    """Random logits against torch's BCEWithLogitsLoss with target 1 (= -mean log sigmoid)."""
    fn = submission.function(NAME)
    for k, n in ((200, (7,)), (201, (12,)), (202, (5, 1))):
        fake = _logits(kit.input_seed(submission, k), n)
        got = _check(fn, fake, f"{n[0]} logits")
        f = fake.double()
        want = nn.BCEWithLogitsLoss()(f, torch.ones_like(f))
        kit.expect_close(got, want, "the loss (against nn.BCEWithLogitsLoss with target 1)", atol=1e-5)
        kit.expect_tensor(got, "the loss", shape=(), dtype=torch.float32, hint=bugs.SCALAR_HINT)


@pytest.mark.points(3)
def test_non_saturating_gradient(submission):
    """When D rejects the fakes (logits down to -100) the gradient stays near -1/N, never vanishes."""
    fake = torch.tensor([-100.0, -40.0, -12.0, -3.0, 0.0, 2.0, 9.0, 100.0])
    kit.fail_if(bugs.name_generator_gradient_bug(_grad(submission, fake), fake), f"{NAME}'s gradient")
    fake = _logits(kit.input_seed(submission, 203), (6,), 3.0)
    kit.fail_if(bugs.name_generator_gradient_bug(_grad(submission, fake), fake), f"{NAME}'s gradient, random logits")


@pytest.mark.points(2)
def test_finite_for_extreme_logits(submission):
    """Logits of ±30 and ±100: the right finite loss (not log(0), not sigmoid rounded to 1)."""
    fn = submission.function(NAME)
    for values in ([100.0, -100.0], [-30.0, -30.0, 30.0], [-100.0] * 3):
        _check(fn, torch.tensor(values), f"logits {values}")


@pytest.mark.points(1)
def test_float16_logits_give_a_float32_loss(submission):
    """float16 logits (as under autocast): a finite float32 loss equal to the float32 one."""
    fn = submission.function(NAME)
    fake = _logits(204, (8,), 4.0).half()
    got = _check(fn, fake, "float16 logits")
    kit.expect_tensor(got, "the loss for float16 logits", dtype=torch.float32, hint=bugs.FLOAT32_HINT)
    _check(fn, torch.tensor([-100.0, 100.0, -30.0]).half(), "float16 logits ±100")


@pytest.mark.points(1)
def test_logits_left_alone_gradient_reaches_them_and_no_state(submission):
    """The logits come back unchanged (in the worker, on the very tensor passed: no in-place
    `.neg_()`), the gradient reaches them (G learns through it), and the same logits give the same
    loss after a call on other logits."""
    submission.function(NAME)
    kit.expect_contract(submission, NAME, (_logits(205, (6,)),), NAME, names=("fake_logits",))
