"""Writes solutions/04_vae/vae.ipynb from the cells below (run it, then `genlab labs 04_vae`).

    .venv/bin/python tests/lab04/build_notebook.py

Not a test (pytest does not collect it): the notebook's source of truth is the .ipynb; this
script is how it was made and the easiest way to change it. Cell ids are derived from the
grade_ids, so regenerating an unchanged notebook gives identical bytes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat

OUT = Path(__file__).resolve().parents[2] / "solutions" / "04_vae" / "vae.ipynb"


def _id(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:8]


def md(key: str, text: str):
    cell = nbformat.v4.new_markdown_cell(text.strip("\n"))
    cell.id = _id("md-" + key)
    return cell


def code(grade_id: str, source: str, solution: bool = False, tags: tuple[str, ...] = ()):
    cell = nbformat.v4.new_code_cell(source.strip("\n"))
    cell.id = _id(grade_id)
    cell.metadata["nbgrader"] = {"grade": False, "grade_id": grade_id, "locked": not solution,
                                 "schema_version": 3, "solution": solution, "task": False}
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


CELLS = []
add = CELLS.append

add(md("title", r"""
# Lab 04 — The variational autoencoder (변분 오토인코더, VAE)

An **encoder** squeezes an input into a few numbers, a point in a **latent space** that is always
much smaller than the data; a **decoder** turns such a point back into an input. You met the
encode-then-decode pattern in Lab 02 (seq2seq) and Lab 03 (the Transformer). A *variational*
autoencoder makes the latent space a probability space: the encoder outputs a whole
distribution, a mean and a standard deviation per latent dimension, and the decoder can
generate new inputs from any point of it.

Here the latent space has only **two** dimensions, so you can look at all of it at once. Decoding
a grid of latent points draws the model's *manifold* of handwritten digits, where a 9 slowly
turns into an 8 as you walk across it, and where almost nothing is decoded far away from the data.
The same idea reaches far beyond digits: VAEs produce plausible new samples of scientific and
engineering data that nobody has measured.

| part | you write | graded |
|---|---|---|
| 1 | `reparameterize(mu, logvar, eps)`: the reparameterisation trick | yes |
| 2 | `kl_divergence(mu, logvar)`: the KL term in closed form | yes |
| 3 | `elbo_loss(x, x_logits, mu, logvar, beta=1.0)`: the negative ELBO with the right reductions | yes |
| 4 | `latent_grid(decoder, n, quantile_range=(0.05, 0.95))`: the decoded latent grid | yes |
| 5 | train the VAE with your parts and look inside its latent space | no |
| 6 | what β does (β = 0.1, 1, 4) and the warning sign of posterior collapse | no |

**How this notebook is graded.** Write your code only where it says `# YOUR CODE HERE` and keep
the function names and signatures: hidden tests call them by name, in a separate process, with
inputs you have not seen (other shapes, `float16`, large log-variances). The read-only cell
after each part runs a public check and prints a ✓ line, or a hint naming what is wrong. The
check warns about everything the hidden tests require, but passing it is a good sign, not a
proof. Training and plotting cells are not run by the grader; they never cost you points.

Do not call `torch.distributions.kl_divergence` or the library's own versions (`genlab.nn.vae`)
in your answers: the grader blocks them.

**Run time.** The three training runs of parts 5 and 6 take about one minute on a laptop CPU
(4,000 steps each).
With the environment variable `GENLAB_SMALL=1` set before starting Jupyter every run is cut to a
few steps (the figures then show an untrained model).

### Glossary (용어)

| English | 한국어 |
|---|---|
| autoencoder / variational autoencoder (VAE) | 오토인코더 / 변분 오토인코더 |
| encoder / decoder | 인코더(부호화기) / 디코더(복호화기) |
| latent space, latent variable $z$ | 잠재 공간, 잠재 변수 $z$ |
| prior $p(z)$ | 사전 분포 |
| (approximate) posterior $q(z \mid x)$ | (근사) 사후 분포 |
| likelihood $p(x \mid z)$ | 우도(가능도) |
| mean / standard deviation / variance / log-variance | 평균 / 표준편차 / 분산 / 로그 분산 |
| standard normal distribution $\mathcal{N}(0, I)$ | 표준 정규분포 |
| reparameterisation trick | 재매개변수화 기법 |
| Kullback–Leibler (KL) divergence | 쿨백–라이블러(KL) 발산 |
| evidence lower bound (ELBO) | 증거 하한 |
| reconstruction (loss) | 재구성 (손실) |
| binary cross-entropy (BCE), logit | 이진 교차 엔트로피, 로짓 |
| inverse CDF (quantile function), percentile | 역누적분포함수(분위수 함수), 백분위수 |
| manifold / interpolation | 다양체(매니폴드) / 보간 |
| posterior collapse | 사후 붕괴 |
| bits per dimension | 차원당 비트 |
| mixed precision (half = float16, single = float32) | 혼합 정밀도 (반정밀도, 단정밀도) |
"""))

add(code("setup", r"""
%matplotlib inline
import math

import torch
import torch.nn.functional as F

from genlab import training
from genlab.checks import lab04 as checks
from genlab.training import SMALL, pick  # SMALL is True under GENLAB_SMALL=1: tiny training runs

torch.set_num_threads(1)  # the VAE's matrices are tiny: one thread is fastest, and never waits on a busy core
torch.manual_seed(0)
print(f"torch {torch.__version__}, small settings: {SMALL}, CUDA: {torch.cuda.is_available()}")
"""))

add(md("data", r"""
### The data

scikit-learn ships 1,797 handwritten digits of 8×8 pixels (grey levels 0..16, scaled to [0, 1]);
`DigitsDataModule` splits them into 1,437 training, 180 validation and 180 test images. The VAE
models every pixel as a coin flip (a **Bernoulli** variable: ink or no ink), so the pixels are
thresholded at 0.5 before training. That makes $-\log p(x)$ a real number of nats, comparable
across models. (Keras's well-known 2-D VAE reports 146.95 on MNIST; that is a *training* loss on
grey pixels, where the "Bernoulli" likelihood is not a likelihood at all.)
"""))

add(code("data_peek", r"""
from matplotlib.figure import Figure
from genlab.data import DigitsDataModule
from genlab.plots import vae as vae_plots

digits = DigitsDataModule(batch_size=64, seed=0)
digits.setup()
train_set = digits.dataset("train")
print({split: len(digits.dataset(split)) for split in ("train", "val", "test")}, "images of shape", digits.image_shape)
grey = torch.stack([train_set[i][0] for i in range(12)])
fig = Figure(figsize=(9, 1.8), layout="constrained")
ax = fig.add_subplot()
ax.imshow(vae_plots.tile(torch.stack([grey, (grey > 0.5).float()]), gap=1), cmap="gray_r", vmin=0, vmax=1)
ax.set_xticks([])
ax.set_yticks([3.5, 12.5], ["grey", "binary"])
ax.set_title("training digits: grey levels (top) and thresholded at 0.5 (bottom) / 학습용 숫자")
fig
""", tags=("plotting",)))

add(md("part1", r"""
## 1. The reparameterisation trick

### From an autoencoder to a VAE

A plain autoencoder maps each image $x$ to one point $z = f(x)$. Nothing forces the points of
different images to fill the latent space, so between them lie holes, and a point picked in a
hole decodes to garbage. A VAE maps $x$ to a **distribution** instead, a diagonal Gaussian

$$q(z \mid x) = \mathcal{N}\big(\mu(x),\ \operatorname{diag}\sigma^2(x)\big),$$

and trains the decoder on *samples* $z \sim q(z \mid x)$. The decoder must therefore cope with
every $z$ near $\mu(x)$, not just one point. With a 2-D latent, the encoder outputs just two means
and two standard deviations per image.

The encoder actually outputs $\log \sigma^2$, the **log-variance** `logvar`: a linear layer can
produce any real number, while $\sigma$ must be positive. Then

$$\sigma = \exp\!\left(\tfrac12 \log\sigma^2\right) = \texttt{exp(0.5 * logvar)} .$$

### Why a trick is needed

Training needs $\partial\,\text{loss} / \partial \mu$ and $\partial\,\text{loss} / \partial \sigma$. But
"draw $z$ from $\mathcal{N}(\mu, \sigma^2)$" is a random step with no gradient. The trick moves
the randomness into an input that needs none:

$$\varepsilon \sim \mathcal{N}(0, I), \qquad z = \mu + \sigma \odot \varepsilon .$$

$z$ has exactly the distribution $\mathcal{N}(\mu, \sigma^2)$, and it is now an ordinary
differentiable function of $\mu$ and $\sigma$: $\partial z / \partial \mu = 1$ and
$\partial z / \partial \log\sigma^2 = \tfrac12 \sigma \varepsilon$. The caller draws $\varepsilon$
(with its own `torch.Generator`, so runs are reproducible) and hands it to you.

### Common mistakes

1. **`exp(logvar)` as the standard deviation.** That is the *variance*; the standard deviation is
   its square root, `exp(0.5 * logvar)`. The model still trains, with the wrong noise level.
2. **Drawing your own noise** (`torch.randn_like(mu)`) instead of using `eps`: the result is no
   longer reproducible and the caller's generator is ignored.
3. **`sqrt(logvar)`**: a log-variance is often negative, and the square root of a negative number is NaN.
4. **Cutting the gradient** with `.detach()`, `torch.no_grad()` or `.item()`: the encoder then learns nothing.
"""))

add(code("reparameterize", r"""
def reparameterize(mu, logvar, eps):
    '''A sample z ~ N(mu, diag(sigma^2)), written so that gradients reach mu and logvar.

    Args:
        mu: float tensor (B, L), the means of q(z | x).
        logvar: float tensor (B, L), the log-variances log(sigma^2).
        eps: float tensor (B, L), standard-normal noise. Use it; draw no noise yourself.

    Returns:
        z: tensor (B, L), mu + sigma * eps with sigma = exp(0.5 * logvar).
    '''
    ### BEGIN SOLUTION
    sigma = torch.exp(0.5 * logvar)
    return mu + sigma * eps
    ### END SOLUTION
""", solution=True))

add(code("check_reparameterize", "checks.check_reparameterize(reparameterize)", tags=("check",)))

add(code("reparameterize_demo", r"""
# 20,000 draws for one latent dimension: the samples follow N(mu, sigma^2), and the gradient
# with respect to mu is exactly 1 per sample.
g = torch.Generator().manual_seed(0)
mu = torch.full((20000, 1), 1.5, requires_grad=True)
logvar = torch.full((20000, 1), math.log(0.25), requires_grad=True)  # sigma = 0.5
z = reparameterize(mu, logvar, torch.randn(20000, 1, generator=g))
z.sum().backward()
print(f"sample mean {z.mean():.3f} (mu = 1.5), sample std {z.std():.3f} (sigma = 0.5), "
      f"dz/dmu = {mu.grad.mean():.1f}, mean dz/dlogvar = {logvar.grad.mean():+.4f} (E[0.5 sigma eps] = 0)")
fig = Figure(figsize=(5, 3), layout="constrained")
ax = fig.add_subplot()
ax.hist(z.detach().numpy().ravel(), bins=60, density=True, alpha=0.6, label="z = mu + sigma * eps")
grid = torch.linspace(-0.5, 3.5, 200)
ax.plot(grid, torch.exp(-0.5 * ((grid - 1.5) / 0.5) ** 2) / (0.5 * math.sqrt(2 * math.pi)), label="N(1.5, 0.5²)")
ax.set_xlabel("z")
ax.set_ylabel("density")
ax.set_title("reparameterised samples / 재매개변수화 표본")
ax.legend()
fig
""", tags=("plotting",)))

add(md("part2", r"""
## 2. The KL divergence in closed form

The decoder will generate from the **prior** $p(z) = \mathcal{N}(0, I)$, so every posterior
$q(z \mid x)$ is pulled towards it by the Kullback–Leibler divergence
$\mathrm{KL}(q \,\|\, p) = \mathbb{E}_q[\log q(z) - \log p(z)] \ge 0$, which is 0 only when $q = p$.
For one dimension with $q = \mathcal{N}(\mu, \sigma^2)$ the integral can be done by hand:

$$\mathbb{E}_q[\log q] = -\tfrac12 \log(2\pi\sigma^2) - \tfrac12, \qquad
\mathbb{E}_q[\log p] = -\tfrac12 \log(2\pi) - \tfrac12(\mu^2 + \sigma^2),$$

$$\mathrm{KL} = \tfrac12\left(\mu^2 + \sigma^2 - 1 - \log\sigma^2\right)
= -\tfrac12\left(1 + \log\sigma^2 - \mu^2 - \sigma^2\right).$$

The latent dimensions are independent, so their KLs **add up**:
$\mathrm{KL} = -\tfrac12 \sum_j \left(1 + \texttt{logvar}_j - \mu_j^2 - e^{\texttt{logvar}_j}\right)$,
one number per example. Check it at the prior itself: $\mu = 0$, $\log\sigma^2 = 0$ gives
$1 + 0 - 0 - 1 = 0$.

**Why this makes the latent space continuous.** The KL term charges every image for moving its
posterior away from $\mathcal{N}(0, I)$: means are pulled towards 0 and standard deviations
towards 1, so the posteriors of different images overlap and cover the region around the origin
without holes. The sampling noise of part 1 makes the decoder map every point of that overlapping
cloud to a sensible image, and nearby points to similar images. Together the two give a latent
space where every point decodes to something plausible and walking from one digit to another
changes the image gradually.

### Common mistakes

1. **The sign.** The minus in front matters: a KL divergence is never negative.
2. **Dropping the `1 +`**: the KL of $\mathcal{N}(0, I)$ to itself becomes $L/2$ instead of 0.
3. **Averaging over the latent dimensions** instead of summing, or **reducing over the batch**
   here. Return shape `(B,)`; `elbo_loss` takes the batch mean.
4. **float16 overflow.** Under mixed precision `logvar` arrives in float16, whose largest value is
   65504: $e^{12} \approx 162755$ becomes `inf`. Cast to float32 first (`mu.float()`,
   `logvar.float()`); losses are always computed in float32.
"""))

add(code("kl_divergence", r"""
def kl_divergence(mu, logvar):
    '''KL( N(mu, diag(exp(logvar))) || N(0, I) ) in closed form, one value per example.

    Args:
        mu, logvar: float tensors (B, L), possibly float16.

    Returns:
        float32 tensor (B,): -1/2 * sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j)).
    '''
    ### BEGIN SOLUTION
    mu, logvar = mu.float(), logvar.float()  # exp(logvar) overflows float16 once logvar > 11
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)
    ### END SOLUTION
""", solution=True))

add(code("check_kl_divergence", "checks.check_kl_divergence(kl_divergence)", tags=("check",)))

add(code("kl_demo", r"""
# The KL of one latent dimension: 0 only at the prior (mu = 0, sigma = 1), growing with |mu| and
# with sigma moving away from 1 in either direction.
mus = torch.linspace(-3, 3, 121)
sigmas = torch.linspace(0.05, 3, 120)
M, S = torch.meshgrid(mus, sigmas, indexing="xy")
kl_map = kl_divergence(M.reshape(-1, 1), torch.log(S.reshape(-1, 1) ** 2)).reshape(S.shape)
fig = Figure(figsize=(5.4, 4), layout="constrained")
ax = fig.add_subplot()
image = ax.contourf(M, S, kl_map.clamp(max=6), levels=24, cmap="viridis")
ax.plot([0], [1], "w*", markersize=12)
fig.colorbar(image, label="KL (nats), clipped at 6")
ax.set_xlabel("mean μ")
ax.set_ylabel("standard deviation σ")
ax.set_title("KL(N(μ, σ²) ‖ N(0, 1)); ★ = the prior / 사전 분포")
fig
""", tags=("plotting",)))

add(md("part3", r"""
## 3. The ELBO and its reductions

We want the model to give the data a high likelihood $\log p(x) = \log \int p(x \mid z)\,p(z)\,dz$,
but the integral over $z$ is intractable. For any $q(z \mid x)$, Jensen's inequality gives a lower
bound, the **evidence lower bound**:

$$\log p(x) \;\ge\; \underbrace{\mathbb{E}_{q(z \mid x)}\big[\log p(x \mid z)\big]}_{\text{reconstruction}}
\;-\; \underbrace{\mathrm{KL}\big(q(z \mid x) \,\|\, p(z)\big)}_{\text{part 2}} \;=\; \mathrm{ELBO}(x).$$

The gap is exactly $\mathrm{KL}(q(z \mid x) \,\|\, p(z \mid x))$, so raising the ELBO both fits the
data and makes $q$ a better posterior. We **minimise the negative ELBO**, estimated with one
reparameterised sample $z$ per image:

$$\mathcal{L} = \frac{1}{B} \sum_{b=1}^{B} \Big[\ \sum_{\text{pixels } k} \mathrm{BCE}\big(\ell_{bk},\, x_{bk}\big) \;+\; \beta\, \mathrm{KL}_b \Big],
\qquad \mathrm{BCE}(\ell, x) = -x \log\sigma(\ell) - (1 - x)\log\big(1 - \sigma(\ell)\big).$$

* **Bernoulli likelihood.** The decoder outputs one **logit** $\ell$ per pixel; the probability
  of ink is $\sigma(\ell)$, and $-\log p(x \mid z)$ is the binary cross-entropy.
* **Sum over pixels.** The pixels of an image are independent given $z$, so the log-likelihood
  of the image is the **sum** of the pixels' log-likelihoods. Averaging over pixels (the default
  `reduction="mean"`) shrinks the reconstruction term 64 times (784 times on MNIST) against the
  KL, and the model gives up on reconstruction.
* **Mean over the batch.** Averaging over the batch keeps the size of the loss, and the
  learning rate it needs, independent of the batch size. Both terms must get the **same** batch
  reduction; averaging one and summing the other weights the KL wrongly by a factor $B$.
* **Logits, never probabilities.** `F.binary_cross_entropy_with_logits` computes
  $\log\sigma(\ell)$ stably in one step. `torch.sigmoid` followed by `F.binary_cross_entropy`
  rounds $\sigma(\ell)$ to exactly 1.0 once $\ell \gtrsim 17$ in float32 (about 8 in float16), and
  $\log(1 - 1) = -\infty$. This is why **CUDA autocast refuses `F.binary_cross_entropy`** ("unsafe
  to autocast"): under mixed precision the sigmoid would run in float16 and its saturated
  outputs would make the loss meaningless. The logits version is on autocast's float32 list.
* **β.** Part 6 weighs the KL with $\beta$; $\beta = 1$ is the true negative ELBO.
* **Units.** With $\beta = 1$ the value is in **nats per image**; divided by $D \ln 2$
  ($D = 64$ pixels) it is **bits per dimension**, the number of bits an ideal compressor using
  this model would spend per pixel.

### Common mistakes

1. `F.binary_cross_entropy_with_logits(x_logits, x)` with its default `reduction="mean"`: the mean over pixels.
2. `reduction="sum"` for the reconstruction (a sum over the batch) but `kl.mean()` for the KL, or the reverse.
3. `torch.sigmoid` and then a BCE: either twice the sigmoid, or the saturation above.
4. Returning one loss per example, shape `(B,)`: `backward()` needs a scalar.
5. Leaving float16 logits in float16: cast with `.float()` so the loss is float32.
"""))

add(code("elbo_loss", r"""
def elbo_loss(x, x_logits, mu, logvar, beta=1.0):
    '''The (beta-weighted) negative ELBO, averaged over the batch.

    Args:
        x: targets in [0, 1], (B, C, H, W).
        x_logits: the decoder's logits, (B, C, H, W), possibly float16.
        mu, logvar: (B, L), the encoder's outputs.
        beta: the weight of the KL term (1 gives the negative ELBO itself).

    Returns:
        float32 0-d tensor: the mean over the batch of
        [ sum over pixels of BCE_with_logits(x_logits, x) + beta * KL ].
    '''
    ### BEGIN SOLUTION
    bce = F.binary_cross_entropy_with_logits(x_logits.float(), x.float(), reduction="none")
    recon = bce.flatten(start_dim=1).sum(dim=1)  # (B,): -log p(x | z), summed over the pixels
    kl = kl_divergence(mu, logvar)  # (B,): your part 2
    return (recon + beta * kl).mean()
    ### END SOLUTION
""", solution=True))

add(code("check_elbo_loss", "checks.check_elbo_loss(elbo_loss)", tags=("check",)))

add(code("sigmoid_demo", r"""
# Why logits: the probability of the observed pixel value, computed two ways, as the logit grows.
for logit in (5.0, 10.0, 17.0, 20.0, 40.0):
    l = torch.tensor([logit])
    exact = F.binary_cross_entropy_with_logits(l, torch.zeros(1)).item()
    via_probability = F.binary_cross_entropy(torch.sigmoid(l), torch.zeros(1)).item()
    via_half = F.binary_cross_entropy(torch.sigmoid(l.half()).float(), torch.zeros(1)).item()
    print(f"logit {logit:4.0f}, pixel = 0: BCE with logits {exact:8.4f} | sigmoid then BCE {via_probability:8.4f} "
          f"| in float16 {via_half:8.4f}")
""", tags=("plotting",)))

add(md("part4", r"""
## 4. The decoded latent grid

With a 2-D latent we can decode a whole grid of points $z = (z_1, z_2)$ and lay the images out
where they sit. How should the grid be spaced? The decoder was trained on $z$ near the prior
$\mathcal{N}(0, I)$: a **linear** grid from −3 to 3 spends most of its cells far out, where the
prior has almost no mass and the decoder has seen almost nothing, so they decode to smeared
copies of the border digits. Kingma and Welling instead space the grid by **percentiles of the
prior**: take $n$ equally spaced probabilities $p_k$ in `quantile_range` and map each through the
inverse normal CDF,

$$q_k = \Phi^{-1}(p_k), \qquad p_k = \mathrm{lo} + k\,\frac{\mathrm{hi} - \mathrm{lo}}{n - 1}, \quad k = 0, \dots, n-1 .$$

Between two neighbours lies the same prior probability $\Phi(q_{k+1}) - \Phi(q_k)$, so every cell
holds an equal share of the prior's mass: dense near the origin, where most of the data is, and
sparse in the tails. $\Phi^{-1}$ is `torch.special.ndtri` (or $\sqrt2\,\operatorname{erf}^{-1}(2p - 1)$
with `torch.erfinv`). The percentiles 0 and 1 would map to $\mp\infty$, hence a range such as
(0.05, 0.95).

**Layout.** Cell `[i, j]` decodes $z = (q_j, q_i)$: the **column** index gives $z_1$ (the x-axis),
the **row** index $z_2$ (the y-axis; the plot puts row 0 at the bottom). Decode all $n^2$ points in
one batch of shape `(n*n, 2)` (float32), turn the logits into probabilities with `torch.sigmoid`,
and return them as `(n, n, C, H, W)`.

### Common mistakes

1. A linear grid (`torch.linspace(-2, 2, n)` in $z$): unequal prior mass per cell.
2. Percentiles from 0 to 1: `ndtri(0) = -inf`.
3. Rows and columns swapped, or the rows reversed.
4. Returning the decoder's logits instead of probabilities.
5. A float64 grid (`dtype=torch.float64`) fed to a float32 decoder.
"""))

add(code("latent_grid", r"""
def latent_grid(decoder, n, quantile_range=(0.05, 0.95)):
    '''Decode an n x n grid of the 2-D latent space, spaced by percentiles of the prior.

    Args:
        decoder: maps latents (M, 2) float32 to pixel logits (M, C, H, W).
        n: cells per side.
        quantile_range: (lo, hi), the first and the last percentile, 0 < lo < hi < 1.

    Returns:
        float32 tensor (n, n, C, H, W) of pixel probabilities. Cell [i, j] decodes
        z = (q[j], q[i]) with q = ndtri(linspace(lo, hi, n)): the column gives z_1, the row z_2.
    '''
    ### BEGIN SOLUTION
    lo, hi = quantile_range
    q = torch.special.ndtri(torch.linspace(lo, hi, n))  # equally spaced prior percentiles -> z values
    z2, z1 = torch.meshgrid(q, q, indexing="ij")  # z2[i, j] = q[i] (row), z1[i, j] = q[j] (column)
    z = torch.stack([z1, z2], dim=-1).reshape(n * n, 2)
    with torch.no_grad():
        logits = decoder(z)
    return torch.sigmoid(logits.float()).reshape(n, n, *logits.shape[1:])
    ### END SOLUTION
""", solution=True))

add(code("check_latent_grid", "checks.check_latent_grid(latent_grid)", tags=("check",)))

add(code("grid_spacing_demo", r"""
# Where the grid points go: a linear grid over the same z range versus equal prior mass per cell.
from torch.special import ndtri

q_mass = ndtri(torch.linspace(0.05, 0.95, 15))
q_linear = torch.linspace(float(q_mass[0]), float(q_mass[-1]), 15)
fig = Figure(figsize=(7, 2.4), layout="constrained")
ax = fig.add_subplot()
zs = torch.linspace(-2.5, 2.5, 300)
ax.plot(zs, torch.exp(-zs ** 2 / 2) / math.sqrt(2 * math.pi), color="0.5", label="prior density N(0, 1)")
ax.plot(q_linear, torch.full_like(q_linear, 0.03), "|", markersize=14, label="linear grid")
ax.plot(q_mass, torch.full_like(q_mass, 0.08), "|", markersize=14, label="percentile grid (equal mass)")
ax.set_xlabel("z")
ax.set_ylabel("density")
ax.set_title("15 grid values per axis / 격자 간격")
ax.legend(fontsize=8)
fig
""", tags=("plotting",)))

add(md("part5", r"""
## 5. Train the VAE with your parts, then look inside

`genlab.models.vae.VAE` is a LightningModule: an MLP encoder (64 → 256 → 128 → 2 means and 2
log-variances) and a mirrored decoder (2 → 128 → 256 → 64 logits). Its loss parts are constructor
arguments, and here they are **yours**: every training step calls your `reparameterize` on the
encoder's output, and your `elbo_loss` (with your `kl_divergence` inside) on the decoder's logits.
The settings are the library's defaults, the same ones `genlab fit vae` uses. Lightning logs
`train_loss` (what is minimised) and, on the held-out validation split, `val_nelbo` (the negative
ELBO in nats per image), `val_kl` and `val_bpd` (bits per pixel).
"""))

add(code("train_vae", r"""
import lightning as L
from genlab.data import DigitsDataModule
from genlab.models.vae import VAE

# The tuned defaults of `genlab fit vae` (genlab/configs/vae.yaml), shrunk under GENLAB_SMALL=1.
model_args, data_args, trainer_args = training.settings("vae", small_steps=30)
print("model:", model_args, "\ndata:", data_args, "\ntrainer:", trainer_args)


def train_vae(beta=1.0, seed=0):
    '''Train a VAE with your three loss parts; returns (model on the CPU, in eval mode, trainer).'''
    L.seed_everything(seed, verbose=False)
    data = DigitsDataModule(**data_args)
    model = VAE(image_shape=data.image_shape, **{**model_args, "beta": beta},
                reparameterize=reparameterize, kl_divergence=kl_divergence, elbo_loss=elbo_loss)  # <- yours
    trainer = training.make_trainer("vae", **trainer_args)  # 16-mixed on a GPU, 32-true on a CPU
    trainer.fit(model, datamodule=data)
    return model.cpu().eval(), trainer


vae, trainer = train_vae(beta=1.0)
digits = DigitsDataModule(**data_args)
test = vae.evaluate(digits.test_dataloader())
# A baseline without any latent: every pixel is an independent coin with the training set's ink rate.
ink = torch.stack([vae.prepare(x) for x, _ in digits.dataset("train")]).mean(0).clamp(1e-3, 1 - 1e-3)
x_test = torch.stack([vae.prepare(x) for x, _ in digits.dataset("test")])
no_latent = F.binary_cross_entropy_with_logits(torch.logit(ink).expand_as(x_test), x_test,
                                               reduction="none").flatten(1).sum(1).mean()
print(f"held-out test images: negative ELBO {test['nelbo']:.2f} nats per image = {test['bpd']:.3f} bits per pixel "
      f"(reconstruction {test['recon']:.2f} + KL {test['kl']:.2f})")
print(f"for comparison, independent pixels with the training set's ink rates (no latent at all): {no_latent:.2f} nats")
""", tags=("training",)))

add(code("loss_curves", r"""
training.loss_figure(trainer, keys=["train_loss", "val_loss", "val_kl"],
                     title="VAE on 8x8 digits: negative ELBO and KL (nats per image) / 학습 곡선")
""", tags=("plotting",)))

add(md("manifold", r"""
### The manifold of digits

Your `latent_grid` decodes a 15×15 grid at the prior's 5th to 95th percentiles. Neighbouring
cells differ only a little, and whole families of digits flow into each other. Find where a 9
turns into an 8 (and where 7s, 4s and 1s meet). Beside it, every held-out test image sits at its
posterior mean, coloured by its true label, which the VAE never saw; the dashed square is the
region the grid decodes.
"""))

add(code("grid_and_scatter", r"""
grid = latent_grid(vae.decoder, 15)
fig = Figure(figsize=(13, 6), layout="constrained")
left, right = fig.subplots(1, 2)
vae_plots.latent_grid_figure(grid, title="your latent_grid, 15x15 at prior percentiles 5%..95% / 잠재 공간 격자", ax=left)
test_mu, test_labels = vae_plots.encode_split(vae, digits.dataset("test"))
vae_plots.latent_scatter(test_mu, test_labels, quantile_range=(0.05, 0.95), ax=right,
                         title="held-out digits at their posterior means / 테스트 숫자의 잠재 위치")
fig
""", tags=("plotting",)))

add(md("morph", r"""
### From a 9 to an 8

Take the most typical 9 and the most typical 8 of the test split (the ones whose posterior means
lie nearest the middle of their class), and decode ten points on the straight line between their
means. Because the space is continuous (part 2), every step is a plausible digit. The straight
line may cross the region of another class on the way (with this model often a 5): the path
shows what lies *between* the two digits in the latent space. In the grid above, look for the
row where a 9 turns into an 8 cell by cell.
"""))

add(code("interpolation", r"""
nine, eight = (digits.dataset("test")[vae_plots.typical_index(test_mu, test_labels, d)][0] for d in (9, 8))
vae_plots.interpolation_figure(vae.interpolate(nine, eight, steps=10),
                               title="decoded along the line from a 9 to an 8 / 9에서 8로")
""", tags=("plotting",)))

add(code("reconstructions", r"""
x = torch.stack([digits.dataset("test")[i][0] for i in range(12)])
vae_plots.reconstructions_figure(vae.prepare(x), vae.reconstruct(x))
""", tags=("plotting",)))

add(md("far_away", r"""
### Far from the data

Decode a *linear* grid that reaches $|z| = 4$, far beyond where the posteriors live (the
prior puts less than 0.01% of its mass outside $|z_1| < 4$). The centre shows the same manifold;
towards the borders the cells only repeat the outermost digits over and over. Nothing new is
decoded out there, because the decoder never had to produce anything for such $z$: it merely
extrapolates. Most cells of a linear grid are spent on this empty region, which is why the
percentile grid and samples from $\mathcal{N}(0, I)$ (right) are the right ways to look at a VAE.
"""))

add(code("far_grid_and_samples", r"""
n = 13
lin = torch.linspace(-4, 4, n)
z2, z1 = torch.meshgrid(lin, lin, indexing="ij")
with torch.no_grad():
    far = torch.sigmoid(vae.decoder(torch.stack([z1, z2], -1).reshape(-1, 2))).reshape(n, n, *vae.image_shape)
fig = Figure(figsize=(12, 5.6), layout="constrained")
left, right = fig.subplots(1, 2)
left.imshow(vae_plots.tile(far.flip(0), gap=1), cmap="gray_r", vmin=0, vmax=1)
ticks = [k * (vae.image_shape[-1] + 1) + 3.5 for k in range(0, n, 3)]
left.set_xticks(ticks, [f"{float(lin[k]):.1f}" for k in range(0, n, 3)])
left.set_yticks(ticks, [f"{float(lin[n - 1 - k]):.1f}" for k in range(0, n, 3)])
left.set_xlabel("$z_1$")
left.set_ylabel("$z_2$")
left.set_title("a linear grid out to |z| = 4 / 선형 격자")
samples = vae.sample(36, generator=torch.Generator().manual_seed(0)).reshape(6, 6, *vae.image_shape)
right.imshow(vae_plots.tile(samples, gap=1), cmap="gray_r", vmin=0, vmax=1)
right.set_xticks([])
right.set_yticks([])
right.set_title("36 new digits decoded from z ~ N(0, I) / 새로 생성한 숫자")
fig
""", tags=("plotting",)))

add(md("part6", r"""
## 6. What β does, and the warning sign of posterior collapse

The β-VAE (Higgins et al., 2017) weighs the KL: $\mathcal{L} = \text{reconstruction} + \beta\,\mathrm{KL}$.

* **β < 1** cares more about reconstruction than about matching the prior. Posteriors grow
  narrow and spread out, reconstructions get sharper, but the latent space gets gaps and the
  region the prior covers no longer matches where the data went.
* **β = 1** is the true ELBO: the best bound on $-\log p(x)$ on held-out data.
* **β > 1** pushes every posterior harder towards $\mathcal{N}(0, I)$: a smoother, more regular
  space, blurrier images. Push too hard and the encoder gives up: $q(z \mid x) = p(z)$ for every
  image, the **KL drops to 0**, $z$ carries no information about $x$, and the decoder learns to
  ignore it and draw one average digit. This is **posterior collapse**, and a KL near 0 (in total
  or for one latent dimension) is its warning sign. The reconstruction term then equals that of
  a model with no latent at all (the "independent pixels" number of part 5).

Remedies when it happens: a smaller β, a **KL warm-up** that starts with β = 0 and raises it
over the first steps (`VAE(kl_warmup_steps=...)`), or a weaker decoder that cannot model the data
on its own. Below, the same VAE trains with β = 0.1 and β = 4 (β = 1 is the model of part 5).
"""))

add(code("train_betas", r"""
runs = {1.0: vae}
for beta in (0.1, 4.0):
    runs[beta], _ = train_vae(beta=beta)
runs = dict(sorted(runs.items()))
print(f"{'beta':>5} | held-out: {'recon':>7} {'KL':>6} {'-ELBO':>7} (nats per image)")
for beta, model in runs.items():
    r = model.evaluate(digits.test_dataloader())
    print(f"{beta:5.1f} |           {r['recon']:7.2f} {r['kl']:6.2f} {r['nelbo']:7.2f}")
""", tags=("training",)))

add(code("beta_figures", r"""
vae_plots.latent_grids_side_by_side({f"β = {beta}": latent_grid(model.decoder, 11) for beta, model in runs.items()},
                                    title="the same VAE trained with three values of β / β에 따른 잠재 공간")
""", tags=("plotting",)))

add(code("beta_scatter", r"""
fig = Figure(figsize=(15, 4.6), layout="constrained")
kl_by_beta = {}
for ax, (beta, model) in zip(fig.subplots(1, 3), runs.items()):
    mu, logvar, labels = vae_plots.encode_split(model, digits.dataset("test"), return_logvar=True)
    vae_plots.latent_scatter(mu, labels, quantile_range=(0.05, 0.95), ax=ax, title=f"β = {beta}")
    # your kl_divergence on one latent dimension at a time: how much information each one carries
    kl_by_beta[f"β = {beta}"] = [kl_divergence(mu[:, [j]], logvar[:, [j]]).mean().item() for j in range(2)]
fig
""", tags=("plotting",)))

add(code("beta_kl_per_dimension", r"""
vae_plots.kl_per_dimension_figure(kl_by_beta, title="held-out KL per latent dimension: near 0 = collapsed / 사후 붕괴")
""", tags=("plotting",)))

add(md("summary", r"""
## 7. Summary

* A VAE's encoder outputs a distribution $q(z \mid x) = \mathcal{N}(\mu, \sigma^2)$; the
  reparameterisation $z = \mu + e^{\frac12 \log\sigma^2} \varepsilon$ makes sampling differentiable.
* The loss is the negative ELBO: the Bernoulli reconstruction term, **summed over pixels**, plus
  the closed-form KL $-\tfrac12\sum_j(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2)$, **averaged over
  the batch**, computed in float32 from logits (CUDA autocast refuses BCE on probabilities).
* The KL term and the sampling noise make the latent space continuous: neighbouring points decode
  to similar images, and a 9 turns into an 8 along a straight line.
* Look at a 2-D latent space on a grid of equal prior mass, $z = \Phi^{-1}(p)$; far from the prior
  the decoder has learned nothing.
* β trades reconstruction against regularity; a KL near 0 is the sign of posterior collapse.
* Nats per image are comparable only on a held-out split and with a real likelihood (binary
  pixels). On MNIST, `genlab fit vae --data.source mnist --data.download true
  --model.architecture conv` trains the convolutional pair and reports `test_nelbo`.

Before you submit: restart the kernel, run all cells, and check every ✓.
"""))


def build() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    nb.cells = CELLS
    return nb


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(build(), OUT)
    print(f"wrote {OUT}")
