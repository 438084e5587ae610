"""Hidden tests for `add` (fixture lab). HIDDEN-CANARY-add: never shown to students."""
import pytest
import torch


@pytest.mark.points(1)
def test_add_numbers(submission):
    add = submission.function("add")
    assert add(20, 22) == 42, "add(20, 22) should return 42"


@pytest.mark.points(1)
def test_add_tensors(submission):
    add = submission.function("add")
    a = torch.arange(3.0) + 31337.25  # HIDDEN-CANARY-input
    b = torch.ones(3)
    out = add(a, b)
    assert isinstance(out, torch.Tensor), "add of two tensors should return a tensor"
    assert torch.allclose(out, a + b)
