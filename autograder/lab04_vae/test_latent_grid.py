"""Part 4: latent_grid(decoder, n, quantile_range=(0.05, 0.95)) -> (n, n, C, H, W) pixel probabilities.

The probe ``lab04_grid`` gives the student's function a linear decoder that records every
latent point it is called on; the verdict is reached here. The decoder's weights are drawn per
submission (``submission.seed``).
"""
import pytest
import torch

from autograder import kit
from genlab.checks import lab04_bugs as bugs

NAME = "latent_grid"




def _decoder(seed, image_shape):
    g = torch.Generator().manual_seed(seed)
    d = 1
    for s in image_shape:
        d *= s
    return torch.randn(d, 2, generator=g), torch.randn(d, generator=g) * 0.5


def _run(submission, seed, n, image_shape, quantile_range=None):
    weight, bias = _decoder(kit.input_seed(submission, seed), image_shape)
    context = f"{NAME}(decoder, {n}{'' if quantile_range is None else f', {quantile_range}'})"
    data = kit.call(submission.probe, "lab04_grid", n=n, weight=weight, bias=bias, image_shape=list(image_shape),
                    quantile_range=None if quantile_range is None else list(quantile_range), context=context)
    if data["error"]:
        raise AssertionError(f"{context} raised {data['error']}")
    if data["grid"] is None:
        raise AssertionError(f"{context} should return a tensor of shape (n, n, C, H, W), got a {data['grid_type']}.")
    return data, weight, bias, context


@pytest.mark.points(2)
def test_shape_dtype_and_range(submission):
    """(n, n, C, H, W) float32 probabilities in [0, 1], for non-square images and several n."""
    for seed, n, shape in ((400, 5, (1, 3, 2)), (401, 3, (1, 4, 4)), (402, 6, (1, 2, 3))):
        data, weight, bias, context = _run(submission, seed, n, shape, (0.1, 0.9))
        grid = data["grid"]
        kit.expect_tensor(grid, f"the grid of {context}", shape=(n, n, *shape), dtype=torch.float32,
                          hint="stack the decoded images as (n, n, C, H, W) probabilities.")
        if grid.min() < 0 or grid.max() > 1:
            raise AssertionError(f"{context}: the grid should hold pixel probabilities in [0, 1]; the decoder returns "
                                 "logits, so apply torch.sigmoid.")


@pytest.mark.points(3)
def test_decoder_sees_the_equal_mass_grid(submission):
    """The decoder is called on exactly the n*n points (q[j], q[i]), q = ndtri(linspace(lo, hi, n))."""
    for seed, n, qr in ((403, 7, (0.1, 0.9)), (404, 4, (0.02, 0.98)), (405, 5, (0.3, 0.6))):
        data, _, _, context = _run(submission, seed, n, (1, 2, 2), qr)
        calls = data["calls"]
        if not calls:
            raise AssertionError(f"{context} never called the decoder; decode the grid's latent points with it.")
        kit.fail_if(bugs.name_grid_points_bug(torch.cat(calls), n, qr), context)


@pytest.mark.points(1)
def test_equal_prior_mass_between_neighbours(submission):
    """Neighbouring grid values enclose the same standard-normal probability (Phi(q[k+1]) - Phi(q[k]) constant)."""
    data, _, _, context = _run(submission, 406, 9, (1, 2, 2), (0.05, 0.95))
    z = torch.cat(data["calls"]) if data["calls"] else torch.zeros(0, 2)
    if z.dim() != 2 or z.shape[-1] != 2 or z.shape[0] == 0:
        raise AssertionError(f"{context}: the decoder should get (n*n, 2) latents, got {kit.describe(z)}.")
    values = torch.unique(z[:, 0]).double().sort().values
    if values.numel() != 9:
        raise AssertionError(f"{context}: z_1 should take 9 distinct values, it takes {values.numel()}.")
    mass = torch.special.ndtr(values).diff()
    if (mass - mass.mean()).abs().max() > 1e-4:
        hint = bugs.name_grid_points_bug(z, 9, (0.05, 0.95))
        raise AssertionError(f"{context}: neighbouring grid values do not enclose equal prior mass. "
                             + (hint or "Use q = ndtri(linspace(lo, hi, n))."))


@pytest.mark.points(3)
def test_cell_layout_and_probabilities(submission):
    """grid[i, j] = sigmoid(decoder(z)) at z = (q[j], q[i]): the column gives z_1, the row z_2."""
    for seed, n, shape, qr in ((407, 5, (1, 3, 2), (0.1, 0.9)), (408, 4, (1, 2, 2), (0.05, 0.95))):
        data, weight, bias, context = _run(submission, seed, n, shape, qr)
        kit.fail_if(bugs.name_grid_bug(data["grid"], n, qr, weight, bias, shape), context)


@pytest.mark.points(1)
def test_default_quantile_range(submission):
    """Without quantile_range the grid spans the prior's 5th to 95th percentiles."""
    data, weight, bias, context = _run(submission, 409, 4, (1, 2, 2), None)
    kit.fail_if(bugs.name_grid_points_bug(torch.cat(data["calls"]) if data["calls"] else torch.zeros(0, 2), 4,
                                          (0.05, 0.95)), f"{context} with the default quantile_range")
    kit.fail_if(bugs.name_grid_bug(data["grid"], 4, (0.05, 0.95), weight, bias, (1, 2, 2)), context)


@pytest.mark.points(1)
def test_no_state_and_autograd_left_on(submission):
    """The same decoder and n give the same grid on a later call, and gradients are switched back on
    for the caller (use `with torch.no_grad():`, not torch.set_grad_enabled(False))."""
    weight, bias = _decoder(410, (1, 2, 2))
    decoder = {"__build__": "genlab.checks.lab04:RecordingDecoder",
               "kwargs": {"weight": weight, "bias": bias, "image_shape": [1, 2, 2]}}
    kit.expect_contract(submission, NAME, (decoder, 4, (0.1, 0.9)), NAME, names=("decoder", "n", "quantile_range"),
                        check_grads=False)
