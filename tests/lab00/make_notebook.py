"""Build ``solutions/00_precision/precision.ipynb`` (lab 00's nbgrader source) with nbformat.

    .venv/bin/python tests/lab00/make_notebook.py     # writes the solution notebook
    .venv/bin/genlab labs 00_precision                # regenerates the student release

The notebook is written from this script so that its cells, metadata and tags stay in one
readable place; edit here, not in the .ipynb.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "solutions" / "00_precision" / "precision.ipynb"

cells = []


def md(text: str) -> None:
    cells.append(new_markdown_cell(text.strip("\n")))


def code(grade_id: str, source: str, *, solution: bool = False, tags: tuple[str, ...] = ()) -> None:
    cell = new_code_cell(source.strip("\n"))
    cell.metadata["nbgrader"] = {"grade": False, "grade_id": grade_id, "locked": not solution,
                                 "schema_version": 3, "solution": solution, "task": False}
    if tags:
        cell.metadata["tags"] = list(tags)
    cells.append(cell)


def check(grade_id: str, call: str) -> None:
    code(f"check_{grade_id}", call, tags=("check",))


# ======================================================================== introduction
md(r"""
# Lab 00 — Optimisation and precision (최적화와 수치 정밀도)

Every later lab trains its model with **Adam**, and on a course GPU it trains in **mixed
precision**: most arithmetic in 16-bit floats, which halves memory and traffic and runs on
the fast tensor cores. Both are usually hidden inside one line (`torch.optim.AdamW(...)`,
`precision="16-mixed"`). In this lab you open them up, on a CPU, in a few minutes:

* you write Adam from its equations and match `torch.optim.Adam` and `AdamW` to the last digits;
* you work out exactly when a `float16` weight ignores its update, and check your rule
  against real `float16` arithmetic;
* you write the **loss scaler** that mixed-precision training needs, static and dynamic, with
  the rule of `torch.amp.GradScaler`;
* you train one small model in `float32`, `bfloat16` and `float16` side by side, watch
  `float16` stall, and bring it back with your scaler.

| part | you write | graded |
|---|---|---|
| 1 | `adam_step(param, grad, state, lr, betas, eps, weight_decay, decoupled)` | yes |
| 2 | `fp16_update_survives(weight, lr, grad)` | yes |
| 3 | `scaled_backward(loss, scale)` and `unscale_and_check(grads, scale, max_norm)` | yes |
| 4 | `dynamic_scale_update(scale, found_inf, growth_tracker, ...)` | yes |
| 5 | train one model in three precisions, with your Adam and your scaler | no |
| 6 | why masks are filled with the dtype's own minimum | no |
| 7 | on-device AI and lower precision | no (reading) |

### Glossary (용어)

| English | 한국어 | in this lab |
|---|---|---|
| optimizer | 옵티마이저 (최적화 알고리즘) | the rule that turns gradients into weight updates |
| learning rate | 학습률 | α, the size of each step |
| first / second moment | 1차 / 2차 모멘트 | running means of $g$ and $g^2$ |
| bias correction | 편향 보정 | dividing by $1-\beta^t$ |
| weight decay | 가중치 감쇠 | pulling weights toward 0 |
| floating-point number | 부동소수점 수 | sign × mantissa × 2^exponent |
| half / single / double precision | 반정밀도 / 단정밀도 / 배정밀도 | `float16` / `float32` / `float64` |
| sign, exponent, mantissa | 부호, 지수, 가수 | the three bit fields |
| machine epsilon | 기계 엡실론 | the gap after 1.0 (`float16`: 9.77e-4) |
| subnormal number | 비정규 수 (서브노멀) | the evenly spaced numbers just above 0 |
| underflow / overflow | 언더플로 / 오버플로 | too small (becomes 0) / too large (becomes inf) |
| round to nearest, ties to even | 최근접 짝수 반올림 | how every result is stored |
| mixed precision | 혼합 정밀도 | 16-bit arithmetic, 32-bit master weights |
| master weights | 마스터 가중치 | the `float32` copy the optimizer updates |
| loss scaling | 손실 스케일링 | multiplying the loss so gradients stay representable |
| quantization | 양자화 | storing weights in even fewer bits (on-device AI) |

**How this notebook is graded.** Write code only where it says `# YOUR CODE HERE`, and keep
the function names and signatures: hidden tests call your functions by name, in a separate
process, with inputs you have not seen. The read-only cell after each part runs a public check
that prints a ✓ line or a hint; the hidden tests check the same things on other inputs. The
training and plotting cells are not run by the grader.

Do not call `torch.optim.Adam`/`AdamW`, `torch.amp.GradScaler` or the library's reference
versions (`genlab.optim`, `genlab.precision`) in your answers: the grader blocks them.

**Run time.** About two minutes on a laptop CPU. `GENLAB_SMALL=1` (set before starting
Jupyter) shrinks the training runs to a few seconds.
""")

code("setup", r"""
%matplotlib inline
import math

import torch

from genlab.checks import lab00 as checks
from genlab.training import SMALL, pick

torch.manual_seed(0)
print(f"torch {torch.__version__}, small settings: {SMALL}, CUDA: {torch.cuda.is_available()}")
""")

# ======================================================================== part 1: Adam
md(r"""
## 1. Adam from its equations

Plain gradient descent moves every weight by $-\alpha g$. Two things go wrong with it:
gradients are noisy from one batch to the next, and different weights see gradients of very
different sizes, so one learning rate is too large for some and too small for others. Adam
(Kingma and Ba, 2015) keeps two running averages per weight and fixes both:

$$m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t \qquad\text{(first moment: a smoothed gradient)}$$
$$v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \qquad\text{(second moment: the typical size of } g^2\text{)}$$
$$\hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^t} \qquad\text{(bias correction)}$$
$$\theta_t = \theta_{t-1} - \alpha\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}$$

with the usual $\beta_1 = 0.9$, $\beta_2 = 0.999$, $\epsilon = 10^{-8}$, and $m_0 = v_0 = 0$.
Dividing by $\sqrt{\hat v_t}$ makes the step size roughly $\alpha$ for every weight, whatever
the scale of its gradient; $m$ averages away the noise over about $1/(1-\beta_1) = 10$ steps.

**Why bias correction?** Both averages start at 0, so early on they are far too small:
after one step $m_1 = 0.1\,g_1$ and $v_1 = 0.001\,g_1^2$. Since
$m_t = (1-\beta_1)\sum_{s\le t} \beta_1^{t-s} g_s$, a constant gradient $g$ gives
$m_t = (1-\beta_1^t)\, g$: dividing by $1-\beta_1^t$ removes exactly that factor (the same for
$v$ with $\beta_2$). With both corrections the very first step is $\hat m_1 = g_1$,
$\hat v_1 = g_1^2$, so every weight moves by almost exactly $\alpha$. The correction matters
most in the first few hundred steps; the figure after the check shows how far off the
uncorrected steps are.

**Weight decay, two ways.** `torch.optim.Adam(weight_decay=λ)` adds $\lambda\theta$ to the
gradient before the moments (*coupled*): the decay is then divided by $\sqrt{\hat v}$ like
everything else, so weights with large gradients are hardly decayed at all. **AdamW**
(Loshchilov and Hutter) *decouples* it: it shrinks the weight directly,
$\theta \leftarrow \theta\,(1 - \alpha\lambda)$, and then takes the plain Adam step. genlab's
models train with AdamW.

Your function handles one tensor and carries the optimizer's memory in a small dict:
`state` is `{}` before the first step and afterwards whatever the previous call returned,
`{"t": step count, "m": m_t, "v": v_t}`. Return the new parameter and the new state; do not
rely on changing the arguments in place.

### Common mistakes

1. **No bias correction**, or correcting only $m$: the first steps are badly sized
   (CS231n's notes warn about exactly this version).
2. **The step counter starting at 0.** The first step is $t = 1$; with $t = 0$ the correction
   $1-\beta^0$ is 0 and the first update is inf/NaN.
3. **$\epsilon$ inside the square root**: $\sqrt{\hat v + \epsilon}$ is a different optimizer
   and visibly changes the steps of weights with small gradients.
4. **AdamW's decay put into the gradient**, or decayed by $\lambda$ instead of $\alpha\lambda$.
5. **Creating $m$ and $v$ as `float32`** for a `float64` parameter: use `torch.zeros_like(param)`.
""")

code("adam_step", r'''
def adam_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    """One Adam (decoupled=False) or AdamW (decoupled=True) step for one tensor.

    Args:
        param: the parameter θ_{t-1}, a float tensor of any shape (float32 or float64).
        grad: its gradient g_t, same shape and dtype.
        state: {} before the first step; afterwards the state returned by the previous call,
            {"t": int, "m": tensor like param, "v": tensor like param}.
        lr, betas, eps: α, (β1, β2), ε.
        weight_decay: λ (0.0: none). Coupled (added to the gradient) when decoupled=False,
            as torch.optim.Adam; decoupled θ ← θ(1 − lr·λ) when decoupled=True, as AdamW.

    Returns:
        (new_param, new_state): θ_t (same shape and dtype as param) and
        {"t": t, "m": m_t, "v": v_t}, with t an int counting steps from 1.
    """
    ### BEGIN SOLUTION
    beta1, beta2 = betas
    t = state.get("t", 0) + 1  # the first step is t = 1
    m = state.get("m", torch.zeros_like(param))
    v = state.get("v", torch.zeros_like(param))
    if weight_decay != 0 and not decoupled:
        grad = grad + weight_decay * param  # coupled (Adam): the decay joins the gradient
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    if weight_decay != 0 and decoupled:
        param = param * (1 - lr * weight_decay)  # decoupled (AdamW): shrink the weight itself
    new_param = param - lr * m_hat / (torch.sqrt(v_hat) + eps)
    return new_param, {"t": t, "m": m, "v": v}
    ### END SOLUTION
''', solution=True)
check("adam_step", "checks.check_adam_step(adam_step)")

code("bias_correction_plot", r"""
from genlab.plots import precision as precision_plots

# How large Adam's step is (in units of lr) on a constant gradient, with and without correction.
precision_plots.bias_correction_figure()
""", tags=("plotting",))

md(r"""
With the default betas, dropping both corrections makes the early steps about six times too
large (because $\sqrt{1-\beta_2^t}$ grows much more slowly than $1-\beta_1^t$), correcting only
$m$ makes them up to thirty times too large, and correcting only $v$ makes them ten times too
small. All of them fade after a few thousand steps, which is why a missing correction is easy
to overlook, and why it hurts most at the start, when a model is most fragile.
""")

# ======================================================================== part 2: float16
md(r"""
## 2. What a floating-point format can hold

A floating-point number is stored as three bit fields: a **sign**, an **exponent** $e$ and a
**mantissa** (the fraction bits $f$). A normal number is
$(-1)^{\text{sign}} \times 1.f \times 2^{e - \text{bias}}$: the leading 1 is implicit, so a
format with $p$ mantissa bits keeps $p + 1$ significant bits. The course's three names:

* **half precision**, `float16`: 1 + 5 + 10 bits;
* **single precision**, `float32`: 1 + 8 + 23 bits, PyTorch's default;
* **double precision**, `float64`: 1 + 11 + 52 bits, NumPy's default;

plus Google's **`bfloat16`**: 1 + 8 + 7 bits, the exponent of `float32` with a tiny mantissa.
The exponent decides the **range** (how large and how small), the mantissa the
**resolution** (how many digits). The table below comes straight from `torch.finfo`.
""")

code("formats_table", r"""
from genlab import precision

print(f"{'format':18s} {'bits':>4s} {'exp':>4s} {'mant':>4s} {'eps (gap after 1)':>18s} {'max':>10s} "
      f"{'smallest normal':>16s} {'smallest subnormal':>19s}")
for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
    f = precision.float_format(dtype)
    print(f"{f.name:18s} {f.bits:4d} {f.exponent_bits:4d} {f.mantissa_bits:4d} {f.eps:18.3g} {f.max:10.3g} "
          f"{f.smallest_normal:16.3g} {f.smallest_subnormal:19.3g}")
precision_plots.bit_layout([1.0, 0.1, 65504.0, 1e-8])
""", tags=("plotting",))

md(r"""
Read the picture: `0.1` cannot be stored exactly in any binary format (it is a repeating
fraction in base 2), `65504` is the largest `float16` (all mantissa bits set, the largest
exponent), and `1e-8` becomes exactly **0** in `float16` but survives in `bfloat16`, whose
exponent reaches as far as `float32`'s.

### The gaps between numbers

Between $2^k$ and $2^{k+1}$ a format with $p$ mantissa bits has $2^p$ evenly spaced numbers,
so the **gap** there is $2^{k-p}$, and it doubles at every power of two. At 1.0 the gap is the
**machine epsilon**: $2^{-10} \approx 9.77\times10^{-4}$ for `float16`, $2^{-7} = 0.0078$ for
`bfloat16`, $2^{-23} \approx 1.2\times10^{-7}$ for `float32`. Every result is **rounded to the
nearest** representable number; an exact tie goes to the neighbour whose last mantissa bit is 0
(**ties to even**), so ties do not drift in one direction.

Below the smallest normal number ($2^{-14} \approx 6.1\times10^{-5}$ in `float16`) the exponent
cannot go lower; instead the implicit leading 1 becomes a 0 and the numbers become
**subnormal**: evenly spaced $2^{-24} \approx 5.96\times10^{-8}$ apart, down to that smallest
subnormal itself. Anything smaller than half of it, $2.98\times10^{-8}$, rounds to 0: that
is **underflow**.
""")

code("number_line_plot", r"""
precision_plots.number_line(0.985, 1.025)
""", tags=("plotting",))

md(r"""
### Two ways a float16 update disappears

Training changes a weight by the update $u = \text{lr}\times g$. In pure `float16` training
the weight, the gradient and the update are all `float16`, and the update can vanish in two
different places:

1. **The update underflows.** A learning rate of $10^{-3}$ times a gradient of $10^{-5}$ is
   $10^{-8}$, below $2.98\times10^{-8}$: the update itself rounds to 0 before it ever reaches
   the weight. The weight silently stops learning.
2. **The update is swamped.** An update of $10^{-4}$ on a weight of 1.0 is representable on
   its own, but $1.0 - 10^{-4} = 0.9999$ lies between $1 - 2^{-11}$ and 1.0, much nearer to 1.0,
   so the result rounds back to 1.0. To count at all, an update must exceed half the gap to
   the neighbour it moves toward: $2^{-12} \approx 2.4\times10^{-4}$ going down from 1.0 (the
   gap below 1.0 is $2^{-11}$) and $\varepsilon/2 \approx 4.9\times10^{-4}$ going up.

The lecture's rule of thumb, *"with lr $10^{-3}$, keep gradients around $10^{-3}$ so that the
update, about $10^{-6}$, is alive"*, is about the first failure: $10^{-6}$ is a `float16`
subnormal, not 0. It is not enough for the second: $10^{-6}$ still vanishes on a weight of
1.0, and only moves weights below about $2\times10^{-3}$. That is why mixed precision keeps a
**`float32` master copy** of the weights for the update (part 5), and uses `float16` only for
the forward and backward passes.
""")

code("explain_updates", r"""
for weight, update in ((1.0, 1e-3 * 1e-5), (1.0, 1e-4), (1.0, 1e-3 * 1e-3), (1e-3, 1e-3 * 1e-3), (1.0, 1e-3)):
    print(precision.explain_update(weight, update, torch.float16))
print(precision.explain_update(1.0, 1e-4, torch.bfloat16))
print(precision.explain_update(1.0, 1e-4, torch.float32))
precision_plots.spacing_figure()
""", tags=("plotting",))

md(r"""
### Part 2: predict whether an update survives

Write `fp16_update_survives(weight, lr, grad)`: given `float16` tensors `weight` and `grad`
and a learning rate, return a bool tensor that is True exactly where $w - u$, computed in
`float16`, differs from $w$. Work it out from the format rather than by trial:

1. the update $u$ = `lr * grad` on the `float16` gradient (this rounds it to `float16`, where
   it may underflow to 0);
2. the weight moves by $-u$; find its neighbouring `float16` number in that direction:
   `torch.nextafter(w, target)` with `target` $= -\infty$ when $u > 0$ and $+\infty$ otherwise;
3. the weight changes when $|u|$ is more than half the gap to that neighbour; at exactly half
   the gap (a tie) it changes only if the neighbour is the even one (its last mantissa bit,
   `neighbour.view(torch.int16) & 1`, is 0).

Do the comparisons in `float64` (half of the smallest gap, $2^{-25}$, is not a `float16`).

### Common mistakes

* Computing `weight - lr * grad` in `float32` or `float64`: there nearly every update counts.
* Using $\varepsilon\cdot|w|$ as the gap: the gap is constant between powers of two and jumps at
  each of them.
* Forgetting that the gap *below* a power of two is half the gap above it.
* Treating ties as survivors (or as always lost) instead of rounding half to even.
* Forgetting the sign: for a negative weight, a positive update makes it more negative.
""")

code("fp16_update_survives", r'''
def fp16_update_survives(weight, lr, grad):
    """Whether the float16 weight changes when float16 training applies weight - lr * grad.

    Args:
        weight: float16 tensor, any shape (finite; the result stays finite).
        lr: learning rate, a Python float.
        grad: float16 tensor, the same shape as weight.

    Returns:
        bool tensor shaped like weight: True where the stored float16 weight changes.
    """
    ### BEGIN SOLUTION
    w = weight.to(torch.float16)
    u = (lr * grad.to(torch.float16)).to(torch.float16)  # the update in float16: may round to 0
    # the neighbouring float16 number in the direction of the move (the weight moves by -u)
    target = torch.where(u > 0, -torch.inf, torch.inf).to(torch.float16)
    neighbour = torch.nextafter(w, target)
    gap = (neighbour.double() - w.double()).abs()
    size = u.double().abs()
    neighbour_is_even = (neighbour.view(torch.int16) & 1) == 0  # ties go to the even neighbour
    return (size > gap / 2) | ((size == gap / 2) & neighbour_is_even & (size > 0))
    ### END SOLUTION
''', solution=True)
check("fp16_update_survives", "checks.check_fp16_update_survives(fp16_update_survives)")

code("survival_plot", r"""
# Where your rule says a float16 weight changes (lr = 1: the y axis is the update itself).
precision_plots.survival_map(fp16_update_survives, title="your fp16_update_survives: green = the weight changes")
""", tags=("plotting",))

# ======================================================================== part 3: loss scaling
md(r"""
## 3. Mixed precision and loss scaling

Mixed-precision training (Micikevicius et al., 2018) runs the forward and backward passes in
16 bits but keeps what must be exact in 32 bits:

1. the optimizer updates **`float32` master weights**, so small updates are not swamped;
2. each step casts them to `float16` for the forward and backward passes;
3. the loss is computed in `float32` (genlab casts logits before the cross-entropy);
4. the gradients come back in `float16`, are converted to `float32`, and update the master copy.

That solves swamping but not underflow: the backward pass itself runs in `float16`, and the
gradients of activations in a deep network are often smaller than $6\times10^{-8}$. They
become 0 and the weights behind them stop learning. **Loss scaling** shifts them up into the
representable range: multiply the loss by a scale $S$ before `backward()`; by the chain rule
every gradient is multiplied by $S$ as well. Then, in `float32`, divide by $S$ again before the
update:

$$\nabla_\theta (S\cdot L) = S\cdot \nabla_\theta L, \qquad g = \frac{\text{fp32}(S\nabla_\theta L)}{S}.$$

With $S$ a power of two both multiplications are exact: only the exponent changes. If $S$ is
too large some gradient **overflows** to inf (or becomes NaN); then that step is useless and
must be **skipped**: check every gradient for inf/NaN before the optimizer runs.

Gradient clipping belongs *after* unscaling: the norm of the scaled gradients is $S$ times too
large, so clipping them to `max_norm` before unscaling clips almost nothing (that is why
`GradScaler.unscale_` exists as a separate call).

Write two functions:

* `scaled_backward(loss, scale)`: backpropagate `loss * scale`.
* `unscale_and_check(grads, scale, max_norm=None)`: divide each gradient by `scale` in
  `float32` (convert first: in `float16` small results would underflow again) and report
  `found_inf`, a Python `bool`, True when any gradient holds inf or NaN. Entries that are
  `None` (parameters without a gradient) stay `None`. When `max_norm` is given and nothing
  was found, clip the unscaled gradients together to a total L2 norm of at most `max_norm`,
  as `torch.nn.utils.clip_grad_norm_` does: multiply all of them by
  $\min(1, \text{max\_norm} / (\lVert g \rVert + 10^{-6}))$, where $\lVert g\rVert$ is the norm of all
  gradients together.

### Common mistakes

* Scaling after `backward()` (too late: the gradients already underflowed), or dividing the
  loss by the scale.
* `torch.isinf` alone: it misses NaN. `torch.isfinite` catches both.
* Looking at only the first gradient, or returning a tensor instead of a `bool`.
* Unscaling in `float16`; clipping before unscaling; clipping each gradient on its own.
""")

code("loss_scaling", r'''
def scaled_backward(loss, scale):
    """Backpropagate loss * scale, so that every gradient comes out scale times larger.

    Args:
        loss: 0-d float32 tensor connected to the parameters.
        scale: the loss scale, a Python float (a power of two such as 2.0 ** 16).
    """
    ### BEGIN SOLUTION
    (loss * scale).backward()
    ### END SOLUTION


def unscale_and_check(grads, scale, max_norm=None):
    """Unscale gradients in float32, detect inf/NaN, and optionally clip the total norm.

    Args:
        grads: list of gradient tensors (float16 or float32, any shapes) or None entries.
        scale: the scale the loss was multiplied by.
        max_norm: None, or the largest total L2 norm allowed after unscaling.

    Returns:
        (unscaled, found_inf): a list with one float32 tensor (or None) per entry of grads,
        each g / scale (clipped when max_norm is given and nothing was found), and a Python
        bool that is True when any gradient holds inf or NaN.
    """
    ### BEGIN SOLUTION
    unscaled = [None if g is None else g.float() / scale for g in grads]
    found_inf = any(not torch.isfinite(g).all() for g in unscaled if g is not None)
    if max_norm is not None and not found_inf:
        total = torch.sqrt(sum(((g * g).sum() for g in unscaled if g is not None), torch.tensor(0.0)))
        coef = min(1.0, max_norm / (float(total) + 1e-6))
        unscaled = [None if g is None else g * coef for g in unscaled]
    return unscaled, bool(found_inf)
    ### END SOLUTION
''', solution=True)
check("loss_scaling", "checks.check_loss_scaling(scaled_backward, unscale_and_check)")

# ======================================================================== part 4: dynamic scale
md(r"""
## 4. Dynamic loss scaling

Which scale? Too small and gradients still underflow; too large and they overflow. The right
value changes during training, so `torch.amp.GradScaler` adjusts it as it goes:

* start high, $S = 2^{16} = 65536$;
* after a step with inf/NaN (that step is skipped): halve the scale, $S \leftarrow 0.5\,S$
  (`backoff_factor`), and reset the count of clean steps to 0;
* after a clean step: add one to the count; once it reaches 2000 (`growth_interval`)
  clean steps **in a row**, double the scale, $S \leftarrow 2S$ (`growth_factor`), and reset the
  count to 0.

So the scale spends most of its time just below the overflow threshold, and probes upward now
and then. The cost is one skipped step per probe that fails, a few per thousand. GradScaler
keeps the scale as a `float32` number and never grows it past the largest `float32`
($\approx 3.4\times10^{38}$): then it keeps the scale and only resets the count.

Write `dynamic_scale_update(scale, found_inf, growth_tracker, ...)`, which returns the scale
and the count (`growth_tracker`) for the next step. Return a Python `float` and `int`.

### Common mistakes

* Never reducing the scale: every following step overflows and is skipped.
* Not resetting the count after an overflow or after a growth.
* Growing one step early or late: count the current clean step first, then compare with
  `growth_interval`.
""")

code("dynamic_scale_update", r'''
def dynamic_scale_update(scale, found_inf, growth_tracker, growth_factor=2.0, backoff_factor=0.5,
                         growth_interval=2000):
    """The loss scale for the next step, by torch.amp.GradScaler's rule.

    Args:
        scale: the current scale (float).
        found_inf: bool, whether this step's gradients held inf/NaN (the step was skipped).
        growth_tracker: int, the number of clean steps in a row before this one.
        growth_factor, backoff_factor, growth_interval: GradScaler's settings.

    Returns:
        (new_scale, new_growth_tracker) as a Python float and int.
    """
    ### BEGIN SOLUTION
    if found_inf:
        return scale * backoff_factor, 0  # the step was skipped: back off, count again from 0
    growth_tracker += 1  # one more clean step
    if growth_tracker == growth_interval:
        new_scale = scale * growth_factor
        if new_scale > torch.finfo(torch.float32).max:  # GradScaler's scale is a float32
            new_scale = scale
        return float(new_scale), 0
    return float(scale), growth_tracker
    ### END SOLUTION
''', solution=True)
check("dynamic_scale_update", "checks.check_dynamic_scale_update(dynamic_scale_update)")

# ======================================================================== part 5: training
md(r"""
## 5. One model, three precisions

Now everything together. `precision.mixed_precision_run` trains a small classifier of the 8×8
digits (64 → 128 → 10) with `float32` master weights, **your `adam_step`**, and the forward and
backward passes in the dtype you choose. With `loss_scaling=True` it calls **your** three
scaling functions at every step, skipping steps with inf/NaN.

One twist makes the effect visible on a model this small. A large model's gradients are tiny
deep inside the network (and when a loss is averaged over millions of tokens); ours are not.
So the loss is multiplied by $10^{-5}$: the gradient of each logit becomes about $10^{-8}$, the
course's example of an update `float16` cannot hold. Adam does not care about the overall
size of the loss, since it divides by $\sqrt{\hat v}$, so `float32` and `bfloat16` train
exactly as they would without the factor. Only `float16` notices.

The scaler starts deliberately far too high ($2^{40}$) and may grow every 50 clean steps
(GradScaler: $2^{16}$ and 2000), so that a short run shows both the back-off and the growth.
""")

code("precision_train", r"""
torch.set_num_threads(1)  # tiny matrices: one thread is fastest (and fair on a shared machine)
steps = pick(300, 40)
runs = []
for dtype, scaling in ((torch.float32, False), (torch.bfloat16, False), (torch.float16, False), (torch.float16, True)):
    run = precision.mixed_precision_run(
        dtype, steps, loss_scaling=scaling, adam_step=adam_step,  # <- your Adam
        scaled_backward=scaled_backward, unscale_and_check=unscale_and_check,  # <- your scaler
        dynamic_scale_update=dynamic_scale_update, init_scale=2.0 ** 40, growth_interval=50)
    runs.append(run)
    print(f"{run.label:32s} final loss {sum(run.losses[-10:]) / 10:.3f}, validation accuracy {run.val_accuracy:.1%}, "
          f"zero gradients {run.zero_grads[-1]:.0%}, skipped steps {len(run.skipped)}")
""", tags=("training",))

code("precision_plot", r"""
precision_plots.precision_runs(runs)
""", tags=("plotting",))

md(r"""
What to look for:

* `float32` and `bfloat16` give almost the same curve: `bfloat16` has `float32`'s exponent, so
  gradients of $10^{-8}$ are no problem for it, and the master weights are `float32`.
* `float16` without scaling: at first about nine gradient entries in ten are exactly 0 (right
  panel). Adam learns only from the few that are left, so the loss falls far more slowly and
  erratically, and the validation accuracy stays far below the others. This is the stall.
* `float16` with your scaler: the first steps overflow and are skipped while the scale backs
  off from $2^{40}$; then it settles just below the overflow threshold, probes upward every 50
  clean steps, and the loss follows the `float32` curve.

### The same thing in Lightning

`precision="16-mixed"` in a Lightning `Trainer` does exactly this with `torch.amp.GradScaler`:
scale the loss, unscale before clipping, skip steps with inf/NaN, update the scale.
`genlab.callbacks.LossScaleMonitor` logs the scale and counts the skipped steps. On a GPU
`16-mixed` is Lightning's normal mode; a CPU would quietly switch it to `bf16-mixed` (no scaler
needed), so below we build the `float16` plugin by hand with a CPU `GradScaler`. The model is
Lab 03's character-level GPT.
""")

code("lightning_fp16", r"""
import lightning as L
from lightning.pytorch.plugins.precision import MixedPrecision

from genlab import training
from genlab.callbacks import LossScaleMonitor
from genlab.data import CharTextDataModule
from genlab.models.gpt import GPT

training.quiet_lightning()
L.seed_everything(0, verbose=False)
data = CharTextDataModule(block_size=32, batch_size=8, seed=0)
gpt = GPT(vocab_size=data.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=48, lr=3e-3)
device = "cuda" if torch.cuda.is_available() else "cpu"
plugin = MixedPrecision("16-mixed", device, scaler=torch.amp.GradScaler(device, growth_interval=20))
monitor = LossScaleMonitor()
trainer = L.Trainer(max_steps=pick(60, 8), accelerator=device, devices=1, plugins=[plugin], callbacks=[monitor],
                    logger=False, enable_checkpointing=False, enable_model_summary=False, limit_val_batches=0,
                    num_sanity_val_steps=0, enable_progress_bar=False)
trainer.fit(gpt, datamodule=data)
print(f"loss scale at each step: {[int(math.log2(s)) for s in monitor.scales]} (log2); "
      f"skipped steps: {monitor.skipped_steps}; last training loss {float(trainer.callback_metrics['train_loss']):.3f}")
""", tags=("training",))

# ======================================================================== part 6: masks
md(r"""
## 6. Why masks are filled with the dtype's own minimum

Labs 02 and 03 hide positions from attention by setting their scores to a very negative
number before the softmax. Many tutorials write `scores.masked_fill(~mask, -1e9)`. That works
in `float32`, whose range reaches $3.4\times10^{38}$, but `float16`'s largest magnitude is 65504:
under mixed precision the scores are `float16` and the line fails with *value cannot be
converted to type c10::Half without overflow*. Filling with $-\infty$ avoids the error but
gives NaN when every key of a row is masked ($e^{-\infty}/\sum e^{-\infty} = 0/0$).

genlab fills with **`torch.finfo(scores.dtype).min`**, the most negative finite number of
whatever dtype the scores have (`precision.mask_fill_value(dtype)`): it always fits, and
$e^{\text{min} - \text{max}}$ is exactly 0 in every format.
""")

code("mask_fill_demo", r"""
scores = torch.tensor([[2.0, 1.0, -1.0]], dtype=torch.float16)
mask = torch.tensor([[True, True, False]])
try:
    scores.masked_fill(~mask, -1e9)
except RuntimeError as err:
    print("masked_fill with -1e9 in float16:", err)
fill = precision.mask_fill_value(scores.dtype)
print(f"mask_fill_value(float16) = {fill}; softmax = {torch.softmax(scores.masked_fill(~mask, fill), -1).tolist()}")
nothing = torch.zeros_like(mask)
print("all masked, -inf: ", torch.softmax(scores.masked_fill(~nothing, float('-inf')), -1).tolist())
print("all masked, finfo.min:", torch.softmax(scores.masked_fill(~nothing, fill), -1).tolist(),
      "(finite; labs 02 and 03 then zero such rows)")
""", tags=("plotting",))

# ======================================================================== part 7: on-device
md(r"""
## 7. On-device AI: even fewer bits

Running a model on a phone, a car or a sensor rather than in a data centre (on-device AI)
pushes the same trade-off further. Memory, bandwidth and energy scale with the number of bits
moved, so deployed models are **quantized**: weights stored as 8-bit or 4-bit integers (or
tiny float formats such as FP8) with a scale per tensor, per channel or per small group, and
activations often in 8 bits. Not every layer tolerates that equally: embeddings, the first
and last layers, normalisation and attention scores are usually kept in higher precision,
while the bulk of the matrix multiplications runs in the lowest one, so precision is chosen
**per layer** (mixed-precision quantization). The hardware struggles to keep up: each new
format needs its own arithmetic units, and a chip takes years to design, so new formats reach
models long before they reach the hardware in people's pockets. The questions of this lab (what range, what resolution, where do
updates and gradients vanish) are the ones those engineers answer.

## Summary

* Adam = momentum ($m$) + per-weight step size ($\sqrt v$) + **bias correction** for the
  zero start; AdamW decouples the weight decay.
* A format's exponent sets its range, its mantissa its resolution. `float16`: eps $9.77\times
  10^{-4}$, max 65504, smallest subnormal $5.96\times10^{-8}$; `bfloat16`: `float32`'s range
  with only 8 significant bits.
* An update vanishes when it underflows ($10^{-3}\times10^{-5} = 10^{-8}$) or is below half
  the gap next to the weight ($10^{-4}$ on 1.0): hence `float32` master weights.
* Loss scaling multiplies the loss (and so every gradient) by $S$, unscales in `float32`,
  skips steps with inf/NaN, and adapts $S$: halve on overflow, double after 2000 clean steps.
* Masks are filled with `torch.finfo(dtype).min`, never `-1e9`.

Before you submit: restart the kernel and run all cells, and check every ✓.
""")

nb = new_notebook(cells=cells, metadata={
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
})

if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(OUT))
    print(f"wrote {OUT.relative_to(REPO)} ({len(cells)} cells)")
