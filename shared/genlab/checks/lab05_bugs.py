"""Recognise the usual bugs of lab 05's graded parts (the GAN) from their results.

Each ``name_*_bug`` function compares a result with the right answer and with what the
common mistakes would have produced, and returns a hint naming the likely bug (``None`` when
the result is right). The notebook's public checks and the hidden tests both use them, so a
student reads the same words in both places. Everything works on plain tensors, numbers and
the plain-data record of the ``call_order`` probe; nothing here calls student code. The
``@oracle`` functions compute the right answers and the bugs' results (in the student build
they answer from the recording, see ``genlab.checks.recorded``); the namers compare with them
through ``close`` and ``same`` only.

The parts: 1. ``discriminator_loss``, 2. ``generator_loss``, 3. ``training_step``.
"""
from __future__ import annotations

import torch
from torch import Tensor

from genlab.checks.kit import close, describe, same
from genlab.checks.recorded import is_oracle_answer, oracle

__all__ = [
    "bce_formula",
    "discriminator_loss_formula",
    "generator_loss_formula",
    "saturating_loss_formula",
    "generator_gradient_formula",
    "step_order_formula",
    "name_loss_value_bug",
    "name_discriminator_loss_bug",
    "name_generator_loss_bug",
    "name_generator_gradient_bug",
    "name_step_error",
    "step_error_bug",
    "step_order_bug",
    "manual_backward_bug",
    "zero_grad_bug",
    "detach_bug",
    "real_batch_bug",
    "name_step_bug",
    "oracle_short_run",
    "name_update_bug",
    "FLOAT32_HINT",
    "SCALAR_HINT",
]

FLOAT32_HINT = ("losses are computed in float32 even when the logits are float16 (under autocast): cast first, "
                "e.g. `logits = logits.float()`, then apply the loss.")
SCALAR_HINT = "return one number as a 0-dim tensor: average over every element with .mean() (no dim=...)."
LOGITS_HINT = ("the inputs are logits (any real number), not probabilities: use "
               "F.binary_cross_entropy_with_logits, or write the loss with F.softplus / F.logsigmoid.")
SIGMOID_BCE_HINT = ("this is sigmoid followed by binary_cross_entropy: for confident logits sigmoid rounds to exactly "
                    "0 or 1, the log is clamped and the loss and its gradient are wrong (and CUDA autocast refuses "
                    "F.binary_cross_entropy). Pass the logits to F.binary_cross_entropy_with_logits instead.")


# ------------------------------------------------------------------ float64 oracles

def _gan_bce64(logits: Tensor, target: float) -> Tensor:
    x = logits.detach().double()
    return torch.nn.functional.softplus(x) - target * x


def _gan_sigmoid_bce(logits: Tensor, target: float) -> Tensor:
    """What ``F.binary_cross_entropy(torch.sigmoid(x), t)`` gives in float32 (clamped logs), elementwise."""
    p = torch.sigmoid(logits.detach().float())
    return -(target * p.log().clamp(min=-100) + (1 - target) * (1 - p).log().clamp(min=-100)).double()


@oracle
def bce_formula(logits: Tensor, target: float) -> Tensor:
    """Elementwise ``-[t log σ(x) + (1 - t) log(1 - σ(x))]`` in float64, stable for any logit."""
    return _gan_bce64(logits, target)


def _d_targets(variant: str, s: float) -> tuple[float, float]:
    """(real target, fake target) of a discriminator-loss variant, for label smoothing ``s``."""
    return {"swapped": (0.0, 1.0 - s), "swapped_hard": (0.0, 1.0), "two_sided": (1.0 - s, s),
            "smoothing_as_target": (s, 0.0)}.get(variant, (1.0 - s, 0.0))


@oracle
def discriminator_loss_formula(real_logits: Tensor, fake_logits: Tensor, label_smoothing: float = 0.0,
                               variant: str = "right") -> Tensor:
    """``mean BCE(real, 1 - s) + mean BCE(fake, 0)``, a float64 scalar, or one of the usual bugs.

    variant: "right", "swapped" (targets 0 for real, 1 - s for fakes), "swapped_hard" (0 and 1),
    "two_sided" (the fakes' target s too), "smoothing_as_target" (real target s), "sign"
    (the value function, not negated), "averaged" (the two terms averaged), "pooled" (one
    mean over real and fake together), "summed" (sums over the batches), "sigmoid_bce"
    (sigmoid, then F.binary_cross_entropy in float32, as torch computes it).
    """
    real_target, fake_target = _d_targets(variant, float(label_smoothing))
    bce = _gan_sigmoid_bce if variant == "sigmoid_bce" else _gan_bce64
    r, f = bce(real_logits, real_target), bce(fake_logits, fake_target)
    if variant == "summed":
        return r.sum() + f.sum()
    if variant == "pooled":
        return torch.cat([r.flatten(), f.flatten()]).mean()
    loss = r.mean() + f.mean()
    return {"sign": -loss, "averaged": 0.5 * loss}.get(variant, loss)


def _g_loss64(fake_logits: Tensor, variant: str) -> Tensor:
    if variant == "saturating":
        return -torch.nn.functional.softplus(fake_logits.detach().double()).mean()
    if variant == "sigmoid_bce":
        return _gan_sigmoid_bce(fake_logits, 1.0).mean()
    bce = _gan_bce64(fake_logits, 0.0 if variant.startswith("target_zero") else 1.0)
    if variant == "summed":
        return bce.sum()
    return -bce.mean() if variant in ("sign", "target_zero_negated") else bce.mean()


@oracle
def generator_loss_formula(fake_logits: Tensor, variant: str = "right") -> Tensor:
    """Non-saturating ``mean -log σ(x)``, a float64 scalar, or one of the usual bugs.

    variant: "right", "saturating" (``mean log(1 - σ(x))``), "sign" (``mean log σ(x)``),
    "target_zero" (``BCE(x, 0)``), "target_zero_negated" (``-BCE(x, 0)``), "summed" (a sum
    over the batch), "sigmoid_bce" (sigmoid, then F.binary_cross_entropy in float32).
    """
    return _g_loss64(fake_logits, variant)


@oracle
def saturating_loss_formula(fake_logits: Tensor) -> Tensor:
    """Saturating ``mean log(1 - σ(x))`` in float64 (what the minimax generator minimises)."""
    return _g_loss64(fake_logits, "saturating")


@oracle
def generator_gradient_formula(fake_logits: Tensor, variant: str = "right") -> Tensor:
    """d(generator loss)/d(fake_logits), of the logits' shape, in float64: ``-(1 - σ(x)) / N`` for the
    non-saturating loss ("right"), ``-σ(x) / N`` for the saturating one ("saturating")."""
    x = fake_logits.detach().double()
    p = torch.sigmoid(x)
    return (-p if variant == "saturating" else -(1 - p)) / x.numel()


# ---------------------------------------------------------------- 1 + 2. the losses

def name_loss_value_bug(got, what: str, half_inputs: bool = False) -> str | None:
    """A hint when ``got`` is not a finite float32 0-dim tensor (the contract of both losses), else None."""
    if not isinstance(got, Tensor):
        return f"{what} should return a tensor (a 0-dim float32 loss), got {describe(got)}."
    if got.dim() != 0:
        return f"{what} returned shape {tuple(got.shape)}; {SCALAR_HINT}"
    if not got.is_floating_point():
        return f"{what} returned a {got.dtype} tensor; a loss is a float32 number."
    if torch.isnan(got).any():
        return (f"{what} returned NaN. Taking the log of a negative number gives NaN: {LOGITS_HINT}")
    if torch.isinf(got).any():
        return (f"{what} returned inf: log(sigmoid(x)) or log(1 - sigmoid(x)) overflows for confident logits "
                f"(sigmoid rounds to 0 or 1). {LOGITS_HINT}")
    if got.dtype != torch.float32:
        where = " for float16 logits" if half_inputs else ""
        return f"{what} returned {got.dtype}{where}; {FLOAT32_HINT}"
    return None


def name_discriminator_loss_bug(got, real_logits: Tensor, fake_logits: Tensor, label_smoothing: float = 0.0,
                                atol: float = 1e-4) -> str | None:
    """None if ``got`` equals ``mean BCE(real, 1 - s) + mean BCE(fake, 0)``; otherwise the likely bug."""
    half = real_logits.dtype == torch.float16
    hint = name_loss_value_bug(got, "discriminator_loss", half_inputs=half)
    if hint is not None:
        return hint
    s = float(label_smoothing)
    want = discriminator_loss_formula(real_logits, fake_logits, s)
    tol = max(atol, 2e-3 * float(want.abs())) if half else atol
    if close(got, want, tol):
        return None

    def like(variant: str, smoothing: float = s) -> bool:
        return close(got, discriminator_loss_formula(real_logits, fake_logits, smoothing, variant), tol)

    if like("swapped") or like("swapped_hard"):
        return ("the labels are swapped: real samples must get target 1 (or 1 - label_smoothing) and fakes target 0. "
                "D learns to call real samples real.")
    if like("sign"):
        return ("the sign is flipped: you returned the value function V = E[log D(x)] + E[log(1 - D(G(z)))], which D "
                "maximises. An optimizer minimises, so return -V: the sum of the two BCE losses.")
    if like("averaged"):
        return ("the result is half the expected loss: add the real and the fake terms, BCE(real, 1) + BCE(fake, 0), "
                "each a mean over its own batch; do not average the two.")
    if like("pooled"):
        return ("you took one mean over the real and fake logits together; take the mean of each term over its own "
                "batch and add the two means.")
    if like("summed"):
        return "the loss is summed over the batch; average each term with .mean() so the loss does not grow with B."
    if s > 0:
        if like("right", 0.0):
            return (f"label_smoothing={s} was ignored: with one-sided smoothing the real targets are 1 - label_smoothing "
                    f"= {1 - s:g} (the fakes keep target 0).")
        if like("two_sided"):
            return (f"the smoothing is two-sided: only the real targets change (1 - s = {1 - s:g}); the fakes keep target "
                    "0, or D would push the generator toward fakes D rates as partly real for no reason.")
        if like("smoothing_as_target"):
            return f"the real target should be 1 - label_smoothing = {1 - s:g}, not label_smoothing = {s:g}."
    if like("sigmoid_bce"):
        return SIGMOID_BCE_HINT
    err = abs(float(got.detach().double()) - float(want))
    return (f"discriminator_loss differs from BCE(real_logits, 1 - s) + BCE(fake_logits, 0) (error {err:.3g}). "
            "Both terms take logits; each is a mean over its batch.")


def name_generator_loss_bug(got, fake_logits: Tensor, atol: float = 1e-4) -> str | None:
    """None if ``got`` equals the non-saturating ``mean -log σ(fake_logits)``; otherwise the likely bug."""
    half = fake_logits.dtype == torch.float16
    hint = name_loss_value_bug(got, "generator_loss", half_inputs=half)
    if hint is not None:
        return hint
    want = generator_loss_formula(fake_logits)
    tol = max(atol, 2e-3 * float(want.abs())) if half else atol
    if close(got, want, tol):
        return None

    def like(variant: str) -> bool:
        return close(got, generator_loss_formula(fake_logits, variant), tol)

    if like("saturating"):
        return ("this is the saturating loss log(1 - D(G(z))): when D confidently rejects the fakes (early in "
                "training) its gradient vanishes. Use the non-saturating -log D(G(z)) = BCE(fake_logits, 1).")
    if like("sign"):
        return ("the sign is flipped: G minimises -log D(G(z)), which is BCE(fake_logits, target 1); you return "
                "+log D(G(z)), which would teach G to look fake.")
    if like("target_zero") or like("target_zero_negated"):
        return ("the generator's target is 0 (fake): G wants D to call its samples REAL, so use target 1: "
                "BCE(fake_logits, 1) = -log D(G(z)).")
    if like("summed"):
        return "the loss is summed over the batch; average it with .mean()."
    if like("sigmoid_bce"):
        return SIGMOID_BCE_HINT
    err = abs(float(got.detach().double()) - float(want))
    return (f"generator_loss differs from the non-saturating -mean log D(G(z)) = BCE(fake_logits, 1) "
            f"(error {err:.3g}).")


def name_generator_gradient_bug(grad, fake_logits: Tensor, atol: float = 1e-6) -> str | None:
    """None if ``grad`` (of the loss w.r.t. the logits) is ``-(1 - σ(x)) / N``; otherwise the likely bug.

    ``grad`` is None when the loss was not connected to the logits.
    """
    if grad is None:
        return ("no gradient reached fake_logits: the loss must be computed from them with torch operations "
                "(no .item(), no .detach(), no torch.no_grad()).")
    n = fake_logits.numel()
    if close(grad, generator_gradient_formula(fake_logits), atol, rtol=1e-3):
        return None
    if close(grad, generator_gradient_formula(fake_logits, "saturating"), atol, rtol=1e-3):
        return ("the gradient is -D(G(z)) / N, the saturating loss's: it is almost 0 exactly when D rejects the fakes. "
                "The non-saturating -log D(G(z)) gives -(1 - D(G(z))) / N, close to -1/N there.")
    confident = fake_logits.detach() < -20
    if confident.any() and bool((grad.double()[confident].abs() < 0.5 / n).any()):
        return ("the gradient vanishes for some confidently rejected fakes (logits below -20), where -log D(G(z)) "
                f"should give about -1/N. {SIGMOID_BCE_HINT}")
    return "the gradient of generator_loss with respect to the logits should be -(1 - sigmoid(logits)) / N."


# ------------------------------------------------------------------ 3. the training step

GRAPH_TWICE = "backward through the graph a second time"
INPLACE = "modified by an inplace operation"
SCALE_NONE = "_scale is None"


def name_step_error(error: str) -> str:
    """A hint for an error raised while the GAN trained with the student's step."""
    if GRAPH_TWICE in error:
        return ("D's backward went through the generator and freed its graph, so G's backward found it gone. D must "
                "judge detached fakes: gan.discriminator(fake.detach()) in D's loss, and the fakes themselves "
                "(not detached) in G's loss.")
    if INPLACE in error:
        return ("a backward used D's outputs computed before opt_d.step() changed D's weights in place. After D's "
                "update, compute D's verdict on the fakes again: g_loss = gan.generator_loss(gan.discriminator(fake)).")
    if SCALE_NONE in error:
        return ("under mixed precision the loss was not scaled before the backward: use gan.manual_backward(loss), "
                "never loss.backward().")
    if "must return (d_loss, g_loss)" in error:
        return "return the two losses of the step: `return d_loss, g_loss`."
    return "read the error above; the step must run for any batch of real samples."


def _labels(record: dict) -> tuple[int | None, int | None]:
    d = g = None
    for info in record.get("optimizers", []):
        names = info.get("names", [])
        if "discriminator" in names:
            d = info["index"]
        if "generator" in names:
            g = info["index"]
    return d, g


def _pattern(seq: list[str], per: int) -> str:
    chunks = [" ".join(seq[i:i + per]) for i in range(0, min(len(seq), 3 * per), per)]
    return " | ".join(chunks) + (" | ..." if len(seq) > 3 * per else "")


def _steps(record: dict) -> list[tuple[str, dict, dict | None]]:
    """(who, step event, the backward its gradients came from, or None) for every optimizer step."""
    d, _ = _labels(record)
    events = record.get("events", [])
    out = []
    for e in events:
        if e["kind"] == "step":
            sources = e.get("grads_from", [])
            out.append(("D" if e["optimizer"] == d else "G", e, events[sources[-1]] if sources else None))
    return out


def step_error_bug(record: dict) -> str | None:
    """A hint when training with the step raised, or the GAN's optimizers were not used; else None."""
    error = record.get("error")
    if error:
        if error.startswith("NotImplementedError"):
            return ("training_step is not written yet: replace `raise NotImplementedError()` in its cell with your "
                    "code.")
        return f"training with your step raised {error}. {name_step_error(error)}"
    d, g = _labels(record)
    if d is None or g is None:
        return "the GAN's two optimizers were not found; get them with `opt_d, opt_g = gan.optimizers()`."
    if not any(e["kind"] == "step" for e in record.get("events", [])):
        return "no optimizer stepped: update D with opt_d.step(), then G with opt_g.step()."
    return None


@oracle
def step_order_formula(n_batches: int, d_steps: int = 1) -> list[str]:
    """The optimizer steps of ``n_batches`` GAN training steps, in order: ``"D"`` or ``"G"`` each."""
    return (["D"] * d_steps + ["G"]) * n_batches


def step_order_bug(record: dict, n_batches: int, d_steps: int = 1) -> str | None:
    """None if, in each of ``n_batches`` steps, D's optimizer stepped ``d_steps`` times and then G's once."""
    seq = [who for who, _, _ in _steps(record)]
    per = d_steps + 1
    expected = step_order_formula(n_batches, d_steps)
    if same(seq, expected):
        return None
    got, want = _pattern(seq, per) or "none", _pattern(expected, per)
    if seq.count("G") == 0:
        return f"G's optimizer never stepped (optimizer steps: {got}); update G after D: opt_g.step()."
    if seq.count("D") == 0:
        return f"D's optimizer never stepped (optimizer steps: {got}); update D first: opt_d.step()."
    if seq[0] == "G":
        return (f"G was updated before D (optimizer steps: {got}; expected {want}). The discriminator is trained "
                "first in every step, then the generator against the updated D. (gan.optimizers() returns "
                "(opt_d, opt_g) in that order.)")
    if d_steps > 1 and seq.count("D") < d_steps * n_batches:
        return (f"with gan.d_steps = {d_steps}, D must be updated {d_steps} times before each G update "
                f"(optimizer steps: {got}; expected {want}): loop `for _ in range(gan.d_steps):` over D's update.")
    return f"the optimizer steps are {got}; expected {want} (D {d_steps}x, then G once, in every step)."


def manual_backward_bug(record: dict) -> str | None:
    """None if every backward went through ``manual_backward``."""
    backwards = [e for e in record.get("events", []) if e["kind"] == "backward"]
    if not backwards:
        return "no backward was made: call gan.manual_backward(d_loss) and gan.manual_backward(g_loss)."
    if any(e["via"] != "manual_backward" for e in backwards):
        return ("a backward was made with loss.backward(): in a LightningModule with manual optimisation use "
                "gan.manual_backward(loss), which scales the loss under precision='16-mixed' (loss.backward() fails "
                "there with 'Attempted unscale_ but _scale is None').")
    return None


def zero_grad_bug(record: dict) -> str | None:
    """None if every update's gradients came from exactly one backward (its own loss's)."""
    for n, (who, step, _source) in enumerate(_steps(record)):
        count = len(step.get("grads_from", []))
        if count == 0:
            if who == "G":
                return ("G's update got no gradient: G's loss must come from D's verdict on fakes that still carry "
                        "their graph back to G (detach the fakes only in D's loss, and do not make G's fakes under "
                        "torch.no_grad()), then gan.manual_backward(g_loss) before opt_g.step().")
            return "D's update got no gradient: call gan.manual_backward(d_loss) before opt_d.step()."
        if count > 1:
            opt, loss = ("opt_d", "d_loss") if who == "D" else ("opt_g", "g_loss")
            return (f"gradients pile up: optimizer step {n + 1} ({who}) used the gradients of {count} backward calls, "
                    f"not only of its own loss (.grad adds up until it is cleared). Call {opt}.zero_grad() before "
                    f"gan.manual_backward({loss}) in every update.")
    return None


def detach_bug(record: dict) -> str | None:
    """None if no backward feeding D's updates reached G's parameters (the fakes were detached)."""
    error = record.get("error") or ""
    if GRAPH_TWICE in error:
        return name_step_error(error)
    _, g = _labels(record)
    for who, _, source in _steps(record):
        if who == "D" and source is not None and g in source["optimizers"]:
            return ("D's backward reached G's parameters: the fakes in D's loss were not detached. Use "
                    "gan.discriminator(fake.detach()) in D's loss, so D's update neither computes nor leaves "
                    "gradients in G.")
    return None


def real_batch_bug(record: dict, real_prefix: str = "args[1]") -> str | None:
    """None if D's losses used the real batch and G's never did (no autograd path from G's loss to it)."""
    for who, _, source in _steps(record):
        if source is None:
            continue
        reached = any(p.startswith(real_prefix) for p in source.get("inputs", []))
        if who == "G" and reached:
            return ("G's loss reached the real batch: the generator never sees a real sample, it learns only from "
                    "D's verdict on its fakes. Use g_loss = gan.generator_loss(gan.discriminator(fake)), with no "
                    "real term.")
        if who == "D" and not reached:
            return "D's loss did not use the real batch: D learns from real samples (target 1) and fakes (target 0)."
    return None


def name_step_bug(record: dict, n_batches: int, d_steps: int = 1, real_prefix: str = "args[1]") -> str | None:
    """None if the ``call_order`` record of ``short_run(step, batches)`` shows a correct GAN step.

    Correct, in every one of the ``n_batches`` steps: D's optimizer steps ``d_steps`` times, then
    G's once; each update's gradients come from exactly one backward, made through
    ``manual_backward``; D's backward reaches D's parameters and the real batch but not G's
    parameters (the fakes were detached); G's backward reaches G's parameters and never the
    real batch.
    """
    return (step_error_bug(record) or manual_backward_bug(record) or step_order_bug(record, n_batches, d_steps)
            or detach_bug(record) or real_batch_bug(record, real_prefix) or zero_grad_bug(record))


# ------------------------------------------------------------------ 3. the reference update

@oracle
def oracle_short_run(initial: dict, batches, d_steps: int = 1, seed: int = 0, reuse_fakes: bool = True,
                     swap_d_args: bool = False, lr: float = 1e-2, betas: tuple[float, float] = (0.5, 0.999),
                     latent_dim: int = 2) -> dict:
    """The parameters ``genlab.models.gan.short_run`` should end with, computed in plain torch.

    Starts from ``initial`` (short_run's ``"initial"`` state dict), seeds the global RNG with
    ``seed`` and, per batch, updates D ``d_steps`` times on fresh detached fakes, then G once
    through D (on the last fakes, or fresh ones with ``reuse_fakes=False``), with the
    Wasserstein critic's losses and Adam. ``swap_d_args`` passes the fakes as D's real logits
    (a known bug). Returns ``{name: tensor}`` like short_run's ``"final"``.
    """
    from genlab.nn.gan import MLPDiscriminator, MLPGenerator, linear_discriminator_loss, linear_generator_loss

    batches = [b.detach().float() for b in batches]
    hidden = initial["generator.net.0.weight"].shape[0]
    G = MLPGenerator(latent_dim, batches[0].shape[1], hidden, 2)
    D = MLPDiscriminator(batches[0].shape[1], hidden, 2)
    for prefix, net in (("generator.", G), ("discriminator.", D)):
        net.load_state_dict({k[len(prefix):]: v.detach().clone() for k, v in initial.items() if k.startswith(prefix)})
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for real in batches:
            for _ in range(d_steps):
                fake = G(torch.randn(real.shape[0], latent_dim))
                r, f = D(real), D(fake.detach())
                d_loss = linear_discriminator_loss(f, r) if swap_d_args else linear_discriminator_loss(r, f)
                opt_d.zero_grad()
                d_loss.backward()
                opt_d.step()
            if not reuse_fakes:
                fake = G(torch.randn(real.shape[0], latent_dim))
            g_loss = linear_generator_loss(D(fake))
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
    finally:
        torch.random.set_rng_state(state)
    final = {f"generator.{k}": v.detach().clone() for k, v in G.state_dict().items()}
    final.update({f"discriminator.{k}": v.detach().clone() for k, v in D.state_dict().items()})
    return final


def _same_state(got: dict, want: dict, atol: float) -> bool:
    """True if the state dicts hold the same names and close tensors; False against an answer not recorded
    (or, while the recorder explores, against any oracle's answer, as ``close`` is)."""
    if is_oracle_answer(want) or not isinstance(want, dict):
        return False
    return isinstance(got, dict) and set(got) == set(want) and all(
        isinstance(got[k], Tensor) and close(got[k], want[k], atol) for k in want)


def name_update_bug(final, initial: dict, batches, d_steps: int = 1, seed: int = 0, atol: float = 1e-5) -> str | None:
    """None if ``final`` (short_run's parameters after the student's steps) matches the reference
    update (fakes reused for G or fresh); otherwise the likely bug."""
    if not isinstance(final, dict):
        return "the training run returned no parameters to compare."
    for reuse in (True, False):
        if _same_state(final, oracle_short_run(initial, batches, d_steps, seed, reuse_fakes=reuse), atol):
            return None
    for reuse in (True, False):
        if _same_state(final, oracle_short_run(initial, batches, d_steps, seed, reuse, swap_d_args=True), atol):
            return ("the arguments of gan.discriminator_loss are swapped: it takes (real_logits, fake_logits), D's "
                    "logits on the real batch first.")
    return ("the parameters after your steps differ from the reference update (D on real and detached fakes, then "
            "G through D). Generate as many fakes as real samples with gan.generator(gan.sample_noise(B)), use "
            "gan.discriminator_loss(D(real), D(fake.detach())) and gan.generator_loss(D(fake)), and draw no other "
            "random numbers in the step.")
