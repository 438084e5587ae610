"""genlab.optim: adam_step and Adam against torch.optim.Adam / AdamW (the oracle), over many steps."""
from __future__ import annotations

import copy

import pytest
import torch

from genlab.optim import Adam, AdamW, adam_step

HYPER = [
    dict(),
    dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=3e-3, weight_decay=0.2),
    dict(lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1, decoupled=True),
    dict(lr=2e-2, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.5, decoupled=True),
]


def _gradients(seed, shape, steps, dtype):
    g = torch.Generator().manual_seed(seed)
    out = []
    for t in range(steps):
        size = 10.0 ** float(torch.empty(()).uniform_(-6, 0.5, generator=g))
        grad = torch.randn(shape, generator=g, dtype=torch.float64) * size
        if t % 17 == 3:
            grad.zero_()
        out.append(grad.to(dtype))
    return out


def _torch(param0, grads, decoupled=False, **hyper):
    p = torch.nn.Parameter(param0.clone())
    opt = (torch.optim.AdamW if decoupled else torch.optim.Adam)([p], foreach=False, amsgrad=False, **hyper)
    out = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        out.append(p.detach().clone())
    return out, opt.state[p]


@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-6), (torch.float64, 1e-13)])
@pytest.mark.parametrize("hyper", HYPER, ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()) or "defaults")
def test_adam_step_matches_torch_over_100_steps(hyper, dtype, atol):
    param0 = torch.randn(5, 7, generator=torch.Generator().manual_seed(0), dtype=dtype)
    grads = _gradients(1, (5, 7), 100, dtype)
    want, torch_state = _torch(param0, grads, **hyper)
    p, state = param0.clone(), {}
    for t, (g, w) in enumerate(zip(grads, want, strict=False), start=1):
        p, state = adam_step(p, g, state, **hyper)
        assert p.dtype == dtype and p.shape == param0.shape
        torch.testing.assert_close(p, w, atol=atol, rtol=0, msg=f"step {t}")
    assert state["t"] == 100 and isinstance(state["t"], int)
    torch.testing.assert_close(state["m"], torch_state["exp_avg"], atol=atol, rtol=1e-6)
    torch.testing.assert_close(state["v"], torch_state["exp_avg_sq"], atol=atol, rtol=1e-6)


def test_first_step_moves_every_weight_by_lr():
    """Bias correction: at t = 1, m̂ = g and v̂ = g², so the step is lr · g / (|g| + ε) ≈ ±lr."""
    param = torch.zeros(4)
    grad = torch.tensor([1e-4, -3.0, 50.0, -2e-3])
    new, state = adam_step(param, grad, {}, lr=0.1)
    torch.testing.assert_close(new, -0.1 * grad / (grad.abs() + 1e-8))
    assert state["t"] == 1


def test_arguments_are_not_modified():
    param, grad = torch.randn(6), torch.randn(6)
    _, state = adam_step(param, grad, {})
    before = (param.clone(), grad.clone(), {k: (v.clone() if torch.is_tensor(v) else v) for k, v in state.items()})
    adam_step(param, grad, state, weight_decay=0.1)
    assert torch.equal(param, before[0]) and torch.equal(grad, before[1])
    assert state["t"] == before[2]["t"] and torch.equal(state["m"], before[2]["m"])


def test_zero_gradients_leave_weights_alone_unless_decoupled_decay():
    param = torch.linspace(-1, 1, 5)
    p, s = param.clone(), {}
    for _ in range(10):
        p, s = adam_step(p, torch.zeros(5), s)
    assert torch.equal(p, param)
    p, s = param.clone(), {}
    for _ in range(10):
        p, s = adam_step(p, torch.zeros(5), s, lr=0.1, weight_decay=0.5, decoupled=True)
    torch.testing.assert_close(p, param * 0.95 ** 10)


@pytest.mark.parametrize("bad, match", [
    (dict(betas=(1.0, 0.999)), "beta1"), (dict(betas=(0.9, -0.1)), "beta2"), (dict(betas=0.9), "pair"),
    (dict(lr=-1.0), "lr"), (dict(eps=-1e-8), "eps"), (dict(weight_decay=-0.1), "weight_decay"),
])
def test_bad_hyperparameters_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        adam_step(torch.zeros(2), torch.zeros(2), {}, **bad)
    with pytest.raises(ValueError, match=match):
        Adam([torch.nn.Parameter(torch.zeros(2))], **bad)


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match="grad has shape"):
        adam_step(torch.zeros(3), torch.zeros(4), {})


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


@pytest.mark.parametrize("decoupled", [False, True])
def test_optimizer_trains_like_torch_with_param_groups(decoupled):
    """A real loss (gradients depend on the weights), two parameter groups, a frozen layer."""
    ours, theirs = _mlp(), _mlp()
    ours[0].bias.requires_grad_(False)
    theirs[0].bias.requires_grad_(False)

    def groups(model, lr2):
        return [{"params": [model[0].weight, model[0].bias]}, {"params": model[2].parameters(), "lr": lr2}]

    opt = Adam(groups(ours, 3e-3), lr=1e-2, weight_decay=0.1, decoupled_weight_decay=decoupled)
    ref = (torch.optim.AdamW if decoupled else torch.optim.Adam)(groups(theirs, 3e-3), lr=1e-2, weight_decay=0.1,
                                                                foreach=False)
    g = torch.Generator().manual_seed(1)
    for _ in range(50):
        x, y = torch.randn(8, 5, generator=g), torch.randint(0, 3, (8,), generator=g)
        for model, o in ((ours, opt), (theirs, ref)):
            o.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            o.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=False):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_adamw_defaults_match_torch():
    ours, theirs = _mlp(), _mlp()
    opt, ref = AdamW(ours.parameters()), torch.optim.AdamW(theirs.parameters(), foreach=False)
    assert opt.defaults["weight_decay"] == ref.defaults["weight_decay"] == 0.01
    x = torch.randn(4, 5)
    for model, o in ((ours, opt), (theirs, ref)):
        for _ in range(5):
            o.zero_grad()
            model(x).pow(2).mean().backward()
            o.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=False):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


def test_state_dict_round_trip_and_closure():
    model = _mlp()
    opt = Adam(model.parameters(), lr=1e-2)
    x = torch.randn(4, 5)

    def closure():
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        return loss

    for _ in range(3):
        loss = opt.step(closure)
    assert torch.is_tensor(loss)
    twin = copy.deepcopy(model)
    twin_opt = Adam(twin.parameters(), lr=1e-2)
    twin_opt.load_state_dict(opt.state_dict())
    for o, m in ((opt, model), (twin_opt, twin)):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=False):
        assert torch.equal(a, b)
    assert all(s["t"] == 4 for s in opt.state.values())
