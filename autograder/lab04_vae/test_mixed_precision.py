"""Mixed precision: the loss parts must survive float16 (CPU emulation here, a real GPU run when present).

Under 16-mixed training the encoder hands float16 ``mu``/``logvar`` and the decoder float16
logits to the loss. ``exp(logvar)`` overflows float16 (largest value 65504) once logvar > 11,
so the losses are computed in float32. The float16 inputs are drawn per submission
(``submission.seed``).
"""
import math

import pytest
import torch

from autograder import kit
from genlab.checks import lab04_bugs as bugs

#: The shared ``lightning_fit`` probe's arguments for 16-mixed on a GPU: genlab's VAE (beta 1, no
#: warm-up) with the student's three loss parts on the digits.
GPU_FIT = {"model": "genlab.models.vae:VAE", "data": "genlab.data:DigitsDataModule",
           "parts": {"reparameterize": "reparameterize", "kl_divergence": "kl_divergence",
                     "elbo_loss": "elbo_loss"},
           "from_data": {"image_shape": "image_shape"}, "model_kwargs": {"lr": 1e-3},
           "data_kwargs": {"batch_size": 64, "seed": 0}, "steps": 20, "seed": 0}


def _half(seed, B=4, L=3, image_shape=(1, 8, 8), logvar=12.0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(B, *image_shape, generator=g) > 0.5).float()
    x_logits = torch.randn(B, *image_shape, generator=g) * 3
    mu = torch.randn(B, L, generator=g)
    lv = logvar + torch.rand(B, L, generator=g) * 2  # 12..14: exp overflows float16
    return x.half(), x_logits.half(), mu.half(), lv.half()


@pytest.mark.points(2)
def test_kl_of_float16_inputs_with_a_large_logvar(submission):
    """float16 mu and logvar in [12, 14]: a finite float32 KL."""
    fn = submission.function("kl_divergence")
    _, _, mu, logvar = _half(kit.input_seed(submission, 500))
    kl = kit.call(fn, mu, logvar, context="kl_divergence on float16 inputs")
    kit.fail_if(bugs.name_kl_bug(kl, mu, logvar, rtol=2e-3), "float16 inputs with logvar between 12 and 14")


@pytest.mark.points(2)
def test_elbo_of_float16_inputs_with_a_large_logvar(submission):
    """float16 x, logits, mu and logvar: a finite float32 loss."""
    fn = submission.function("elbo_loss")
    x, x_logits, mu, logvar = _half(kit.input_seed(submission, 501))
    try:
        loss = kit.call(fn, x, x_logits, mu, logvar, context="elbo_loss on float16 inputs")
    except AssertionError as exc:
        if "between 0 and 1" in str(exc):
            raise AssertionError(f"{exc} {bugs.PROBABILITY_HINT}.") from None
        raise
    kit.fail_if(bugs.name_elbo_bug(loss, x, x_logits, mu, logvar, rtol=2e-3), "float16 inputs with a large logvar")


@pytest.mark.points(1)
def test_reparameterize_float16_inputs(submission):
    """float16 mu, logvar (up to 12) and eps: finite z of the right size."""
    fn = submission.function("reparameterize")
    _, _, mu, logvar = _half(kit.input_seed(submission, 502), logvar=10.0)
    logvar = logvar.clamp(max=12.0)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(kit.input_seed(submission, 503))).half()
    z = kit.call(fn, mu, logvar, eps, context="reparameterize on float16 inputs")
    kit.expect_tensor(z, "z for float16 inputs", shape=tuple(mu.shape))
    kit.expect_finite(z, "z for float16 inputs with logvar up to 12",
                      hint="sigma = exp(0.5 * logvar) fits in float16 (exp(6) = 403); exp(logvar) does not.")
    kit.fail_if(bugs.name_reparameterize_bug(z.float(), mu.float(), logvar.float(), eps.float(), atol=0.5),
                "float16 inputs")


@pytest.mark.points(2)
def test_elbo_under_float16_autocast_on_cpu(submission):
    """Inside torch.autocast("cpu", dtype=torch.float16) with float16 activations, as in 16-mixed training."""
    x, x_logits, mu, logvar = _half(kit.input_seed(submission, 504))
    data = kit.call(submission.probe, "autocast", fn="elbo_loss", args=(x, x_logits, mu, logvar), dtype="float16",
                    context="elbo_loss under float16 autocast")
    outputs = data["outputs"]
    if len(outputs) != 1:
        raise AssertionError(f"elbo_loss under autocast should return one 0-d tensor, got {len(outputs)} tensors.")
    names = [op[0] for op in data["ops"]]
    if "binary_cross_entropy" in names:
        raise AssertionError("elbo_loss calls F.binary_cross_entropy on probabilities, which CUDA autocast refuses "
                             "(\"unsafe to autocast\") and which loses precision in float16: use "
                             "F.binary_cross_entropy_with_logits on the logits.")
    if data["output_dtypes"][0] != "float32":
        raise AssertionError(f"under autocast elbo_loss returned {data['output_dtypes'][0]}; losses are computed in "
                             "float32: cast the logits and the KL's inputs with .float().")
    kit.expect_finite(outputs[0], "the loss under float16 autocast", hint=bugs.FLOAT32_HINT + ".")


@pytest.mark.gpu
@pytest.mark.points(3)
def test_vae_trains_with_16_mixed_on_gpu(submission):
    """20 Lightning steps of genlab's VAE with your three loss parts, precision="16-mixed", on a GPU."""
    data = submission.probe("lightning_fit", **GPU_FIT)
    if data.get("error"):
        raise AssertionError(f"training the VAE with your loss parts under precision='16-mixed' raised {data['error']}")
    losses = data.get("losses", [])
    if len(losses) < 20 or not all(isinstance(v, float) and math.isfinite(v) for v in losses):
        bad = next((i for i, v in enumerate(losses) if not (isinstance(v, float) and math.isfinite(v))), None)
        raise AssertionError(f"under 16-mixed the training loss became inf/NaN at step {bad} (of {len(losses)}); "
                             f"{bugs.FLOAT32_HINT}.")
    if not data.get("params_finite"):
        raise AssertionError("under 16-mixed some parameters became inf/NaN after 20 steps.")
    if data.get("loss_dtype") != "torch.float32":
        raise AssertionError(f"the loss should be float32 under 16-mixed, got {data.get('loss_dtype')}.")
