"""Part 4: sinusoidal_positions(T, d) -> (T, d) float32."""
import pytest
import torch

from autograder import kit
from genlab.checks import lab03_bugs as bugs

NAME = "sinusoidal_positions"
SIZES = ((16, 8), (100, 64), (7, 512), (50, 6), (1, 2))  # tests/lab03 checks each bug is named at its first size


def _call(fn, /, *args, hint="", **kwargs):
    return bugs.explained_call(kit.call, fn, *args, hint=hint, **kwargs)


@pytest.mark.points(2)
def test_shape_and_dtype(submission):
    """(T, d) float32 for several sizes."""
    fn = submission.function(NAME)
    for T, d in ((3, 4), (20, 16)):
        got = _call(fn, T, d)
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != (T, d):
            raise AssertionError(f"sinusoidal_positions({T}, {d}) should return shape ({T}, {d}) (positions x features), "
                                 f"got {kit.describe(got)}.")
        if got.dtype != torch.float32:
            raise AssertionError(bugs.name_sinusoid_bug(got, T, d))


@pytest.mark.points(1)
def test_position_zero(submission):
    """Row 0 is [sin 0, cos 0, ...] = [0, 1, 0, 1, ...]."""
    got = _call(submission.function(NAME), 4, 10)
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != (4, 10):
        raise AssertionError(f"sinusoidal_positions(4, 10) should have shape (4, 10), got {kit.describe(got)}.")
    want = torch.tensor([0.0, 1.0] * 5)
    if not torch.allclose(got[0].double(), want.double(), atol=1e-6):
        if torch.allclose(got[0].double(), torch.tensor([1.0, 0.0] * 5).double(), atol=1e-6):
            raise AssertionError("position 0 should be [0, 1, 0, 1, ...] (sin 0 = 0 in even columns, cos 0 = 1 in odd "
                                 "columns); yours is [1, 0, 1, 0, ...]: sin and cos are swapped.")
        raise AssertionError("position 0 should be [0, 1, 0, 1, ...]: sin(0) = 0 in even columns, cos(0) = 1 in odd ones.")


@pytest.mark.points(7)
def test_values_match_formula(submission):
    """PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(...), against float64."""
    fn = submission.function(NAME)
    for T, d in SIZES:
        hint = bugs.name_sinusoid_bug(_call(fn, T, d), T, d)
        if hint is not None:
            raise AssertionError(f"sinusoidal_positions(T={T}, d={d}): {hint}")
