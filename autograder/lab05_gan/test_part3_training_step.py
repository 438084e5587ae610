"""Part 3: training_step(gan, real) -> (d_loss, g_loss): D first on real + detached fakes, then G through D.

Every test trains a small GAN with the student's step (``genlab.models.gan.short_run``, in the
worker) while the ``call_order`` probe records the optimizer steps, the ``zero_grad`` calls and
where each backward's gradients went. The real batches require grad, so a path from a loss
to the real data shows. Unless a test says otherwise the losses are the Wasserstein critic's,
so this part is graded independently of parts 1 and 2. The batches of the update compared with
an independent computation here are drawn per submission (``submission.seed``).
"""
import math
import random

import pytest
import torch

from autograder import kit
from genlab.checks import lab05_bugs as bugs

NAME = "training_step"


def _batches(seed, n, batch_size=8):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch_size, 2, generator=g) * 0.4 + torch.tensor([0.5, 1.0]) for _ in range(n)]


def _run(submission, n=3, d_steps=1, seed=30, **kwargs):
    batches = _batches(seed, n)
    step = submission.function(NAME)
    record = kit.call(submission.probe, "call_order", fn="genlab.models.gan:short_run", args=[step, batches],
                      kwargs=dict(d_steps=d_steps, **kwargs), watch_args=True,
                      context=f"training a small GAN with your {NAME}")
    kit.fail_if(bugs.step_error_bug(record), NAME)
    return record, batches


@pytest.mark.points(2)
def test_trains_and_returns_the_two_losses(submission):
    """Three steps run and each returns (d_loss, g_loss), finite scalars."""
    record, _ = _run(submission)
    result = record["result"]
    for key in ("d_losses", "g_losses"):
        values = result[key]
        if len(values) != 3:
            raise AssertionError(f"{NAME} should return (d_loss, g_loss), two scalar tensors, in every step.")
        if not all(math.isfinite(v) for v in values):
            raise AssertionError(f"{NAME} returned a loss that is inf or NaN.")


@pytest.mark.points(4)
def test_discriminator_is_updated_first(submission):
    """In every step: D's optimizer steps, then G's (G learns against the updated D)."""
    record, _ = _run(submission, n=4)
    kit.fail_if(bugs.step_order_bug(record, 4, 1), "the order of the updates")


@pytest.mark.points(2)
def test_d_steps_discriminator_updates_per_step(submission):
    """With gan.d_steps = 3: D, D, D, then G, in every step."""
    record, _ = _run(submission, n=2, d_steps=3, seed=31)
    kit.fail_if(bugs.step_order_bug(record, 2, 3), "with d_steps = 3")


@pytest.mark.points(3)
def test_fakes_are_detached_for_the_discriminator(submission):
    """D's backward reaches D's parameters only: G's parameter gradients are untouched by it."""
    record, _ = _run(submission, seed=32)
    kit.fail_if(bugs.detach_bug(record), "D's update")
    kit.fail_if(bugs.detach_bug(_run(submission, n=2, d_steps=2, seed=33)[0]), "D's updates with d_steps = 2")


@pytest.mark.points(3)
def test_generator_never_sees_real_data(submission):
    """G's loss has no autograd path to the real batch (which requires grad here); D's loss does."""
    record, _ = _run(submission, seed=34)
    kit.fail_if(bugs.real_batch_bug(record), "the real batch")


@pytest.mark.points(3)
def test_gradients_are_cleared_before_every_update(submission):
    """Each update uses the gradients of its own loss only (zero_grad before each backward)."""
    record, _ = _run(submission, n=3, seed=35)
    kit.fail_if(bugs.zero_grad_bug(record), "the gradients of each update")
    kit.fail_if(bugs.zero_grad_bug(_run(submission, n=2, d_steps=2, seed=36)[0]), "with d_steps = 2")


@pytest.mark.points(2)
def test_backward_through_manual_backward(submission):
    """Every backward goes through gan.manual_backward, and the step runs under float16 loss scaling."""
    record, _ = _run(submission, seed=37)
    kit.fail_if(bugs.manual_backward_bug(record), "the backward calls")
    record, _ = _run(submission, seed=38, precision="16-mixed")
    result = record["result"]
    if result.get("loss_scale") is None:
        raise AssertionError("under precision='16-mixed' the loss scaler was not used; back-propagate with "
                             "gan.manual_backward(loss).")


@pytest.mark.points(3)
def test_matches_the_reference_update(submission):
    """The parameters after three steps equal D-first-then-G updates computed independently."""
    for n, d_steps, k in ((3, 1, 39), (2, 2, 40)):
        seed = random.Random(submission.seed * 1000 + k).randrange(2**31)
        record, batches = _run(submission, n=n, d_steps=d_steps, seed=seed)
        result = record["result"]
        kit.fail_if(bugs.name_update_bug(result["final"], result["initial"], batches, d_steps), f"d_steps = {d_steps}")


@pytest.mark.gpu
@pytest.mark.points(3)
def test_16_mixed_on_a_gpu(submission):
    """20 steps with your losses and step under Lightning's precision="16-mixed" on a GPU: finite, loss scale active."""
    from genlab.data import RingDataModule

    real = RingDataModule(seed=0).sample(20 * 64, torch.Generator().manual_seed(0))[0]
    batches = list(real.split(64))
    record = kit.call(submission.probe, "call_order", fn="genlab.models.gan:short_run",
                      args=[submission.function(NAME), batches],
                      kwargs=dict(discriminator_loss=submission.function("discriminator_loss"),
                                  generator_loss=submission.function("generator_loss"),
                                  precision="16-mixed", accelerator="gpu", hidden=64), max_events=2000,
                      context="training with your parts under precision='16-mixed' on a GPU")
    kit.fail_if(bugs.step_error_bug(record), "under 16-mixed on a GPU")
    kit.fail_if(bugs.manual_backward_bug(record), "under 16-mixed on a GPU")
    result = record["result"]
    losses = result["d_losses"] + result["g_losses"]
    if len(losses) != 40 or not all(math.isfinite(x) for x in losses):
        raise AssertionError("under 16-mixed a loss became inf/NaN (or a step returned none): compute the losses in "
                             "float32 from logits (F.binary_cross_entropy_with_logits on logits.float()).")
    if result.get("loss_scale") is None:
        raise AssertionError("under 16-mixed no loss scaler was active: back-propagate with gan.manual_backward(loss).")
    if not all(bool(torch.isfinite(v).all()) for v in result["final"].values()):
        raise AssertionError("under 16-mixed some parameters became inf/NaN after 20 steps.")
