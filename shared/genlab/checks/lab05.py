"""Public checks for lab 05 (the GAN). Each prints one ✓ line or raises AssertionError with a hint.

The losses are compared with float64 formulas on small fixed logits, extreme logits (±30,
±100) and float16 logits. The training step is watched while a small GAN trains with it
(``genlab.models.gan.short_run``): the order of the optimizer steps, where each backward's
gradients go, and the parameters it ends with. The hidden tests check the same things on
other inputs.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import torch
from torch import Tensor

from genlab.checks import kit
from genlab.checks import lab05_bugs as bugs

__all__ = ["check_discriminator_loss", "check_generator_loss", "check_training_step", "record_calls"]


def _logits(seed: int, n: int, scale: float = 2.0, shape=None) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g) * scale
    return x.view(shape) if shape is not None else x


def _loss_grads(fn: Callable, what: str, *logits: Tensor, **kwargs):
    inputs = [x.detach().clone().requires_grad_(True) for x in logits]
    loss = kit.call(what, fn, *inputs, **kwargs)
    grads = [None] * len(inputs)
    if isinstance(loss, Tensor) and loss.dim() == 0 and loss.requires_grad:
        grads = list(torch.autograd.grad(loss, inputs, allow_unused=True))
    return loss, grads


# ---------------------------------------------------------------- 1. discriminator_loss

def check_discriminator_loss(fn: Callable) -> None:
    """Values (with and without label smoothing), shapes, extreme and float16 logits, gradients."""
    what = "discriminator_loss"
    real, fake = _logits(1, 6), _logits(2, 4)
    # first: logits changed in place would spoil the value checks below
    kit.check_contract(fn, (real, fake), what, ("real_logits", "fake_logits"))
    kit.fail_if(bugs.name_discriminator_loss_bug(kit.call(what, fn, real, fake), real, fake), f"{what} (6 real, 4 fake)")
    r2, f2 = _logits(3, 5, shape=(5, 1)), _logits(4, 5, shape=(5, 1))
    kit.fail_if(bugs.name_discriminator_loss_bug(kit.call(what, fn, r2, f2), r2, f2), f"{what} on (B, 1) logits")
    for s in (0.1, 0.25):
        try:
            got = fn(real, fake, label_smoothing=s)
        except TypeError as exc:
            if "label_smoothing" in str(exc):
                raise AssertionError(f"{what} must accept label_smoothing=... (keep the signature "
                                     "discriminator_loss(real_logits, fake_logits, label_smoothing=0.0)).") from None
            got = kit.call(what, fn, real, fake, label_smoothing=s)
        except Exception:  # noqa: BLE001 - kit.call turns it into the student's message
            got = kit.call(what, fn, real, fake, label_smoothing=s)
        kit.fail_if(bugs.name_discriminator_loss_bug(got, real, fake, s), f"{what} with label_smoothing={s}")
    extreme_r = torch.tensor([100.0, -100.0, 30.0, -30.0, 0.5])
    extreme_f = torch.tensor([-100.0, 100.0, -30.0, 30.0, -0.5])
    loss, grads = _loss_grads(fn, what, extreme_r, extreme_f)
    kit.fail_if(bugs.name_discriminator_loss_bug(loss, extreme_r, extreme_f), f"{what} on logits ±30 and ±100")
    if any(g is None for g in grads):
        raise AssertionError(f"{what}: no gradient reached the real or the fake logits; compute the loss from them with "
                             "torch operations (no .item(), .detach() or torch.no_grad()).")
    if not all(bool(torch.isfinite(g).all()) for g in grads):
        raise AssertionError(f"{what}: the gradient is inf/NaN for logits ±100. {bugs.LOGITS_HINT}")
    r16, f16 = (_logits(5, 8, 4.0).half(), _logits(6, 8, 4.0).half())
    kit.fail_if(bugs.name_discriminator_loss_bug(kit.call(f"{what} on float16 logits", fn, r16, f16), r16, f16),
                f"{what} on float16 logits")
    e16 = extreme_r.half(), extreme_f.half()
    kit.fail_if(bugs.name_discriminator_loss_bug(kit.call(f"{what} on float16 logits", fn, *e16), *e16),
                f"{what} on float16 logits ±100")
    kit.ok(f"{what}: BCE(real, 1 - s) + BCE(fake, 0) from logits, one-sided smoothing, finite for ±100 and float16; "
           "the logits are left as they were and reached by the gradient")


# ---------------------------------------------------------------- 2. generator_loss

def check_generator_loss(fn: Callable) -> None:
    """Value, gradient (non-saturating), extreme and float16 logits."""
    what = "generator_loss"
    fake = _logits(7, 6)
    kit.check_contract(fn, (fake,), what, ("fake_logits",))   # first: logits changed in place would spoil the rest
    kit.fail_if(bugs.name_generator_loss_bug(kit.call(what, fn, fake), fake), f"{what} (6 fakes)")
    f2 = _logits(8, 4, shape=(4, 1))
    kit.fail_if(bugs.name_generator_loss_bug(kit.call(what, fn, f2), f2), f"{what} on (B, 1) logits")
    confident = torch.tensor([-100.0, -30.0, -8.0, -2.0, 0.0, 3.0, 30.0, 100.0])
    loss, (grad,) = _loss_grads(fn, what, confident)
    kit.fail_if(bugs.name_generator_loss_bug(loss, confident), f"{what} on logits from -100 to 100")
    kit.fail_if(bugs.name_generator_gradient_bug(grad, confident), f"{what}'s gradient")
    f16 = _logits(9, 8, 4.0).half()
    kit.fail_if(bugs.name_generator_loss_bug(kit.call(f"{what} on float16 logits", fn, f16), f16),
                f"{what} on float16 logits")
    e16 = confident.half()
    kit.fail_if(bugs.name_generator_loss_bug(kit.call(f"{what} on float16 logits", fn, e16), e16),
                f"{what} on float16 logits ±100")
    kit.ok(f"{what}: non-saturating -log D(G(z)) from logits; gradient -(1 - D(G(z)))/N, strong when D rejects the "
           "fakes; finite for ±100 and float16; the logits are left as they were")


# ---------------------------------------------------------------- 3. training_step

class _Recorder:
    """Records optimizer steps, zero_grad and backward calls (the ``call_order`` probe's data, in process)."""

    def __init__(self):
        self.events, self.optimizers, self.infos = [], [], []
        self.groups: dict[str, list[Tensor]] = {}
        self.contrib: dict[str, list[int]] = {}
        self.local = threading.local()

    def add_optimizer(self, opt) -> None:
        if any(o is opt for o in self.optimizers):
            return
        i = len(self.optimizers)
        self.optimizers.append(opt)
        names = [g.get("name") for g in opt.param_groups if isinstance(g.get("name"), str)]
        params = [p for g in opt.param_groups for p in g["params"]]
        self.infos.append({"index": i, "class": type(opt).__name__, "names": names, "n_params": len(params)})
        self.groups[f"opt:{i}"] = params
        self.contrib[f"opt:{i}"] = []
        step = opt.step
        recorder = self

        def wrapped_step(_self, *a, **k):
            recorder.on_step(i)
            return step(*a, **k)

        opt.step = wrapped_step.__get__(opt)

    def index_of(self, opt) -> int | None:
        target = opt.__dict__.get("_optimizer", opt)
        return next((i for i, o in enumerate(self.optimizers) if o is target or o is opt), None)

    def _refresh(self) -> None:
        for key, tensors in self.groups.items():
            if key.startswith("opt:") and all(t.grad is None or not bool(t.grad.ne(0).any()) for t in tensors):
                self.contrib[key] = []

    def on_zero_grad(self, i: int) -> None:
        self._refresh()
        self.events.append({"kind": "zero_grad", "optimizer": i})

    def on_step(self, i: int) -> None:
        self._refresh()
        params = self.groups[f"opt:{i}"]
        self.events.append({"kind": "step", "optimizer": i, "grads_from": list(self.contrib[f"opt:{i}"]),
                            "grad_finite": all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in params)})

    def backward(self, original, via, tensor, *a, **k):
        if getattr(self.local, "depth", 0):
            return original(tensor, *a, **k)
        self._refresh()
        before = {key: [None if t.grad is None else t.grad.detach().clone() for t in ts] for key, ts in self.groups.items()}
        self.local.depth = 1
        try:
            out = original(tensor, *a, **k)
        finally:
            self.local.depth = 0
        hit = []
        for key, tensors in self.groups.items():
            for t, old in zip(tensors, before[key], strict=True):
                new = t.grad
                if new is not None and (bool(new.ne(0).any()) if old is None else bool(new.ne(old).any())):
                    hit.append(key)
                    break
        dtype = getattr(tensor, "dtype", None)
        self.events.append({
            "kind": "backward",
            "via": "manual_backward" if getattr(self.local, "manual", 0) else via,
            "optimizers": [int(key[4:]) for key in hit if key.startswith("opt:")],
            "watched": [],
            "inputs": [key[6:] for key in hit if key.startswith("input:")],
            "loss_dtype": str(dtype).replace("torch.", "") if dtype is not None else None,
        })
        for key in hit:
            if key.startswith("opt:"):
                self.contrib[key].append(len(self.events) - 1)
        return out


def record_calls(fn: Callable, *args, **kwargs) -> dict:
    """Run ``fn(*args, **kwargs)`` and record its optimizer steps and backward calls.

    The floating-point tensors among ``args`` (lists of them too) are made to require grad and
    named by their path (``"args[1][0]"``). Returns the plain data of the ``call_order`` probe:
    ``{"optimizers", "events", "truncated", "result", "error"}``.
    """
    rec = _Recorder()

    def mark(value, path):
        if isinstance(value, Tensor) and value.is_floating_point():
            value = value.detach().clone().requires_grad_(True)
            rec.groups[f"input:{path}"] = [value]
            return value
        if isinstance(value, (list, tuple)):
            return type(value)(mark(v, f"{path}[{i}]") for i, v in enumerate(value))
        return value

    args = [mark(a, f"args[{i}]") for i, a in enumerate(args)]
    saved = (torch.optim.Optimizer.__init__, torch.optim.Optimizer.zero_grad, torch.Tensor.backward,
             torch.autograd.backward)
    init0, zero0, tensor0, autograd0 = saved

    def init(self, *a, **k):
        init0(self, *a, **k)
        rec.add_optimizer(self)

    def zero_grad(self, *a, **k):
        out = zero0(self, *a, **k)
        i = rec.index_of(self)
        if i is not None:
            rec.on_zero_grad(i)
        return out

    module_class = sys.modules["lightning.pytorch"].LightningModule if "lightning.pytorch" in sys.modules else None
    manual0 = module_class.manual_backward if module_class is not None else None

    def manual_backward(self, loss, *a, **k):
        rec.local.manual = getattr(rec.local, "manual", 0) + 1
        try:
            return manual0(self, loss, *a, **k)
        finally:
            rec.local.manual -= 1

    torch.optim.Optimizer.__init__, torch.optim.Optimizer.zero_grad = init, zero_grad
    torch.Tensor.backward = lambda self, *a, **k: rec.backward(tensor0, "tensor.backward", self, *a, **k)
    torch.autograd.backward = lambda t, *a, **k: rec.backward(autograd0, "autograd.backward", t, *a, **k)
    if module_class is not None:
        module_class.manual_backward = manual_backward
    result, error = None, None
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - reported to the check as data
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        error = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    finally:
        (torch.optim.Optimizer.__init__, torch.optim.Optimizer.zero_grad, torch.Tensor.backward,
         torch.autograd.backward) = saved
        if module_class is not None:
            module_class.manual_backward = manual0
    return {"optimizers": rec.infos, "events": rec.events, "truncated": False, "result": result, "error": error}


def _batches(seed: int, n: int, batch_size: int = 8) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch_size, 2, generator=g) * 0.3 + torch.tensor([1.0, -0.5]) for _ in range(n)]


def check_training_step(fn: Callable) -> None:
    """Watch a small GAN train with ``fn`` for a few steps (d_steps = 1 and 2, then float16 with a loss
    scaler) and name what goes wrong."""
    from genlab.models.gan import short_run

    what = "training_step"
    for d_steps, n in ((1, 3), (2, 2)):
        batches = _batches(10 + d_steps, n)
        record = record_calls(short_run, fn, batches, d_steps=d_steps)
        kit.fail_if(bugs.name_step_bug(record, n, d_steps), f"{what} (d_steps={d_steps}, {n} steps)")
        result = record["result"]
        kit.fail_if(bugs.name_update_bug(result["final"], result["initial"], batches, d_steps),
                    f"{what} (d_steps={d_steps})")
        if len(result["d_losses"]) != n or len(result["g_losses"]) != n:
            raise AssertionError(f"{what} should return (d_loss, g_loss), two scalar tensors, in every step.")
    record = record_calls(short_run, fn, _batches(20, 3), precision="16-mixed")
    kit.fail_if(bugs.step_error_bug(record), f"{what} under float16 autocast with a loss scaler (precision='16-mixed')")
    kit.ok(f"{what}: D first on real + detached fakes, then G through D only; zero_grad, manual_backward and the "
           "update match the reference (d_steps = 1 and 2); runs under 16-mixed loss scaling")
