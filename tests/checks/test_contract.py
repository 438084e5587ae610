"""genlab.checks.contract: each promise, broken by the bug students write, is named; honest code passes."""
import torch
from torch import nn

from autograder.probes import contract as probe
from genlab.checks import contract
from genlab.checks.contract import contract_problem


def _inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)


def honest(a, b):
    return (a * b).softmax(-1), a + b


def test_honest_function_and_module_keep_every_promise():
    assert contract_problem(honest, _inputs(), "f", names=("a", "b")) is None
    layer = nn.Linear(4, 2)
    assert contract_problem(layer, _inputs()[:1], "layer") is None


def test_an_input_changed_in_place_is_named():
    def scales_in_place(a, b):
        a /= 2.0
        return a * b

    problem = contract_problem(scales_in_place, _inputs(), "f", names=("a", "b"))
    assert problem.startswith("f changed its input `a` in place")


def test_an_in_place_write_that_keeps_the_values_is_named_too():
    """clamp_ within range changes no value, but it writes into the caller's tensor (and autograd
    refuses it on a leaf): torch's version counter shows it."""
    def clamps_in_place(a, b):
        a.clamp_(-100.0, 100.0)
        return a * b

    problem = contract_problem(clamps_in_place, _inputs(), "f", names=("a", "b"))
    assert problem.startswith("f changed its input `a` in place")


def test_state_kept_between_calls_is_found():
    calls = []

    def counts(a, b):
        calls.append(1)
        return a * b * len(calls)

    def accumulates(a, b, seen=[]):   # noqa: B006 (the bug under test)
        seen.append(a)
        return sum(seen) * b

    for fn in (counts, accumulates):
        assert "keeps state between calls" in contract_problem(fn, _inputs(), "f")


def test_detached_input_and_missing_parameter_gradient_are_named():
    def detaches(a, b):
        return a.detach() * b

    assert contract_problem(detaches, _inputs(), "f", names=("a", "b")).startswith("no gradient reaches `a`")

    def no_grad(a, b):
        with torch.no_grad():
            return a * b

    assert "not connected to its inputs" in contract_problem(no_grad, _inputs(), "f")

    class FrozenBias(nn.Linear):
        def forward(self, x):
            return x @ self.weight.T + self.bias.detach()

    problem = contract_problem(FrozenBias(4, 2), _inputs()[:1], "layer", names=("x",))
    assert problem.startswith("no gradient reaches the parameter `bias`")


def test_grad_mode_left_off_is_found_and_switched_back_on():
    def leaves_grad_off(a, b):
        torch.set_grad_enabled(False)
        return a * b

    try:
        assert "left gradients switched off" in contract_problem(leaves_grad_off, _inputs(), "f")
        assert torch.is_grad_enabled()   # the check itself leaves autograd as it found it
    finally:
        torch.set_grad_enabled(True)


def test_non_differentiable_results_skip_the_gradient_promise():
    def argmax(a, b):
        return (a + b).argmax(-1)

    assert contract_problem(argmax, _inputs(), "f") is None
    assert contract_problem(honest, _inputs(), "f", check_grads=False) is None


def test_the_probe_ignores_a_notebook_that_patched_the_library(monkeypatch):
    """The worker's probe loads ``observe`` from the library's file, not from the module the
    submission could have changed, and the verdict is judged from its record."""
    monkeypatch.setattr(contract, "observe", lambda *a, **k: {"grad_enabled": True, "first": [], "again": []})

    def detaches(a, b):
        return a.detach() * b

    args = _inputs()
    seen = probe.run({"f": detaches}, "f", args=args)
    assert contract.judge(seen, list(args), "f", ("a", "b")).startswith("no gradient reaches `a`")
