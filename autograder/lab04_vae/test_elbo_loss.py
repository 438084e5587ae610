"""Part 3: elbo_loss(x, x_logits, mu, logvar, beta=1.0) -> mean_b[ sum_pixels BCE_with_logits + beta * KL ].

Random inputs are drawn per submission (``submission.seed``): every answer here is computed from them.
"""
import pytest
import torch

from autograder import kit
from genlab.checks import lab04_bugs as bugs

NAME = "elbo_loss"




def _call(fn, *args, context, **kwargs):
    """``kit.call`` that explains torch's error when logits reach ``F.binary_cross_entropy``."""
    try:
        return kit.call(fn, *args, context=context, **kwargs)
    except AssertionError as exc:
        if "between 0 and 1" in str(exc):
            raise AssertionError(f"{exc} {bugs.PROBABILITY_HINT}.") from None
        raise


def _inputs(seed, B, image_shape, L=2, logit_scale=3.0, binary=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(B, *image_shape, generator=g)
    if binary:
        x = (x > 0.5).float()
    x_logits = torch.randn(B, *image_shape, generator=g) * logit_scale
    mu, logvar = torch.randn(B, L, generator=g), torch.randn(B, L, generator=g)
    return x, x_logits, mu, logvar


@pytest.mark.points(4)
def test_matches_the_negative_elbo(submission):
    """Binary and grey pixels, several image shapes (MNIST's among them), beta = 1."""
    fn = submission.function(NAME)
    cases = [(300, 5, (1, 8, 8), True), (301, 2, (1, 28, 28), True), (302, 3, (3, 4, 4), False)]
    for seed, B, shape, binary in cases:
        x, x_logits, mu, logvar = _inputs(kit.input_seed(submission, seed), B, shape, binary=binary)
        loss = _call(fn, x, x_logits, mu, logvar, context=f"{NAME} with B={B}, images {shape}")
        kit.fail_if(bugs.name_elbo_bug(loss, x, x_logits, mu, logvar), f"B={B}, images {shape}")


@pytest.mark.points(3)
def test_sum_over_pixels_mean_over_batch(submission):
    """Reductions, on inputs where the orders differ: the batch repeated twice gives the same loss;
    B != number of pixels, so a per-pixel mean or a batch sum shows."""
    fn = submission.function(NAME)
    x, x_logits, mu, logvar = _inputs(kit.input_seed(submission, 303), 4, (1, 6, 5), L=3)
    loss = _call(fn, x, x_logits, mu, logvar, context=f"{NAME} with B=4, 30 pixels")
    kit.fail_if(bugs.name_elbo_bug(loss, x, x_logits, mu, logvar), "B=4, 30 pixels per image")
    twice = _call(fn, *(torch.cat([t, t]) for t in (x, x_logits, mu, logvar)),
                     context=f"{NAME} on the same batch repeated twice")
    kit.expect_tensor(twice, "the loss on the repeated batch", shape=())
    if not torch.allclose(twice.double(), loss.double(), rtol=1e-5, atol=1e-4):
        raise AssertionError("repeating the batch twice changed the loss: it must be a mean over the batch (the same "
                             "reduction for the reconstruction and the KL), not a sum.")


@pytest.mark.points(2)
def test_uses_logits_stably(submission):
    """Confident logits (|logit| up to 40): BCE with logits stays exact where sigmoid + BCE saturates."""
    fn = submission.function(NAME)
    x, x_logits, mu, logvar = _inputs(kit.input_seed(submission, 304), 3, (1, 8, 8), logit_scale=15.0)
    x_logits = x_logits.clamp(-40, 40)
    x_logits[0, 0, 0, :2] = torch.tensor([40.0, -40.0])
    loss = _call(fn, x, x_logits, mu, logvar, context=f"{NAME} with confident logits")
    kit.fail_if(bugs.name_elbo_bug(loss, x, x_logits, mu, logvar), "logits of size up to 40")


@pytest.mark.points(2)
def test_beta_weights_only_the_kl(submission):
    """beta = 0 leaves the reconstruction alone; beta = 4 and 0.1 scale the KL and nothing else."""
    fn = submission.function(NAME)
    x, x_logits, mu, logvar = _inputs(kit.input_seed(submission, 305), 4, (1, 8, 8))
    for beta in (0.0, 4.0, 0.1):
        loss = _call(fn, x, x_logits, mu, logvar, beta=beta, context=f"{NAME} with beta={beta}")
        kit.fail_if(bugs.name_elbo_bug(loss, x, x_logits, mu, logvar, beta), f"beta={beta}")


@pytest.mark.points(2)
def test_gradients_of_the_mean_loss(submission):
    """d loss / d x_logits = (sigmoid - x) / B, d / d mu = beta mu / B, d / d logvar = beta (exp(logvar) - 1) / (2B)."""
    x, x_logits, mu, logvar = _inputs(kit.input_seed(submission, 306), 3, (1, 4, 4))
    beta = 2.0
    data = kit.call(submission.probe, "gradients", fn=NAME, args=(x, x_logits, mu, logvar), kwargs={"beta": beta},
                    wrt=[1, 2, 3], context="computing gradients through elbo_loss")
    kit.fail_if(bugs.name_elbo_bug(data["output"], x, x_logits, mu, logvar, beta), "beta=2")
    B = x.shape[0]
    wants = {
        "x_logits": (torch.sigmoid(x_logits.double()) - x.double()) / B,
        "mu": beta * mu.double() / B,
        "logvar": beta * 0.5 * (torch.exp(logvar.double()) - 1.0) / B,
    }
    for (name, want), got in zip(wants.items(), data["grads"], strict=True):
        if got is None:
            raise AssertionError(f"no gradient reached `{name}` through elbo_loss: do not detach, do not use "
                                 ".item(), numpy or torch.no_grad() inside it.")
        kit.expect_close(got, want, f"the gradient with respect to {name}", atol=1e-5,
                         hint="the loss is the batch MEAN of (sum over pixels of BCE + beta * KL).")


@pytest.mark.points(1)
def test_inputs_state_and_autograd(submission):
    """x, x_logits, mu and logvar come back unchanged, no state is kept between calls, autograd is
    left on. (The gradients are checked above, with their values: to x_logits, mu and logvar.)"""
    x, x_logits, mu, logvar = _inputs(307, 3, (1, 8, 8))
    kit.expect_contract(submission, NAME, (x, x_logits, mu, logvar), NAME, names=("x", "x_logits", "mu", "logvar"),
                        check_grads=False)
