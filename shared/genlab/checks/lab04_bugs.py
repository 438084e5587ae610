"""Recognise the usual bugs of lab 04's graded parts (the VAE) from their outputs.

Each ``name_*_bug`` function compares a result with the right answer and with what the
common mistakes would have produced, and returns a hint naming the likely bug (``None``
when the result is right). The notebook's public checks and the hidden tests both use
them, so a student reads the same words in both places. Everything works on plain
tensors and numbers, in float64; nothing here calls student code, and no message prints
an input or an expected value. The ``@oracle`` functions compute the right answers and the
bugs' outputs (in the student build they answer from the recording, see
``genlab.checks.recorded``); the namers compare with them through ``close`` and ``same`` only.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.checks.kit import close, describe, same
from genlab.checks.recorded import oracle

__all__ = [
    "reparameterize_formula",
    "reparameterize_grad_formula",
    "name_reparameterize_bug",
    "kl_formula",
    "name_kl_bug",
    "bernoulli_nll_formula",
    "elbo_formula",
    "name_elbo_bug",
    "grid_quantiles",
    "linear_decoder_logits",
    "grid_formula",
    "grid_points_formula",
    "name_grid_points_bug",
    "name_grid_bug",
    "FLOAT32_HINT",
    "PROBABILITY_HINT",
]

FLOAT32_HINT = ("losses are computed in float32, so cast first (mu, logvar = mu.float(), logvar.float()): exp(logvar) "
                "overflows float16 (largest value 65504) once logvar > 11")
PROBABILITY_HINT = ("F.binary_cross_entropy expects probabilities in [0, 1], but the decoder gives logits: use "
                    "F.binary_cross_entropy_with_logits(x_logits, x, reduction='none'), which applies the sigmoid "
                    "itself, stably")
PART2_NOTE = "(This part uses your kl_divergence: if part 2's check fails, fix that first.)"


def _d(t: Tensor) -> Tensor:
    return t.detach().double()


# ---------------------------------------------------------------- 1. reparameterisation

@oracle
def reparameterize_formula(mu: Tensor, logvar: Tensor, eps: Tensor, variant: str = "right") -> Tensor:
    """``mu + sigma * eps`` in float64, or one of the usual bugs.

    variant: "right" (sigma = exp(logvar / 2)), "exp_logvar" (sigma = exp(logvar), the
    variance), "logvar_as_std" (sigma = logvar), "inverse_std" (exp(-logvar / 2)),
    "no_mu" (sigma * eps), "no_eps" (mu + sigma).
    """
    mu, lv, e = _d(mu), _d(logvar), _d(eps)
    sigma = {"exp_logvar": lv.exp(), "logvar_as_std": lv, "inverse_std": (-0.5 * lv).exp()}.get(variant, (0.5 * lv).exp())
    if variant == "no_mu":
        return sigma * e
    if variant == "no_eps":
        return mu + sigma
    return mu + sigma * e


@oracle
def reparameterize_grad_formula(mu: Tensor, logvar: Tensor, eps: Tensor) -> tuple[Tensor, Tensor]:
    """The gradients of ``z.sum()`` for ``z = mu + exp(logvar / 2) * eps``: ``(dz/dmu, dz/dlogvar)``,
    both of ``mu``'s shape ``(B, L)``, in float64."""
    lv, e = _d(logvar), _d(eps)
    return torch.ones_like(_d(mu)), 0.5 * (0.5 * lv).exp() * e


def name_reparameterize_bug(got, mu: Tensor, logvar: Tensor, eps: Tensor, atol: float = 1e-5) -> str | None:
    """None if ``got`` is ``mu + exp(0.5 * logvar) * eps`` (shape and dtype of ``mu``); else a hint."""
    want = reparameterize_formula(mu, logvar, eps)
    if not isinstance(got, Tensor):
        return f"reparameterize should return a tensor z of shape {tuple(mu.shape)}, got {describe(got)}."
    if got.shape != mu.shape:
        return (f"z should have the shape of mu, {tuple(mu.shape)} (B, L), got {tuple(got.shape)}; the formula is "
                "element-wise, so do not sum or reshape.")
    if mu.dtype == torch.float32 and got.dtype != torch.float32:
        return f"for float32 inputs z should be float32, got {got.dtype}; do not convert to another dtype."
    if torch.isnan(got).any():
        return ("z contains NaN. logvar is a log-variance and can be negative, so sqrt(logvar) or log(logvar) give NaN; "
                "the standard deviation is sigma = exp(0.5 * logvar).")
    if close(got, want, atol):
        return None
    known = [
        ("exp_logvar", "you used exp(logvar), the variance, as the standard deviation: sigma = exp(0.5 * logvar) "
                       "(the square root of the variance)."),
        ("logvar_as_std", "you multiplied eps by logvar itself: logvar is log(sigma^2), so sigma = exp(0.5 * logvar)."),
        ("inverse_std", "the sign of the exponent is wrong: sigma = exp(+0.5 * logvar), not exp(-0.5 * logvar)."),
        ("no_mu", "z = sigma * eps is missing the mean: z = mu + exp(0.5 * logvar) * eps."),
        ("no_eps", "z = mu + sigma is missing the noise: multiply sigma by the eps you are given."),
    ]
    for variant, hint in known:
        if close(got, reparameterize_formula(mu, logvar, eps, variant), atol):
            return hint
    err = (_d(got) - want).abs().max().item()
    return (f"z differs from mu + exp(0.5 * logvar) * eps (largest error {err:.3g}). Use the eps you are given "
            "(drawing new noise inside makes the result irreproducible), and sigma = exp(0.5 * logvar).")


# ---------------------------------------------------------------- 2. KL divergence

@oracle
def kl_formula(mu: Tensor, logvar: Tensor, variant: str = "right") -> Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` per example, ``(B, L) -> (B,)`` in float64, or a usual bug.

    variant: "right", "sign" (the sign flipped), "no_one" (the ``1 +`` missing), "no_half"
    (the 1/2 missing), "sigma_not_var" (exp(logvar / 2) where exp(logvar) belongs),
    "mu_not_squared" (mu instead of mu**2), "mean_latent" (mean over the latent axis),
    "batch_sum" (one number for the whole batch), "batch_mean" (the batch mean).
    """
    return _kl_per_example(mu, logvar, variant)


def _kl_per_example(mu: Tensor, logvar: Tensor, variant: str) -> Tensor:
    mu, lv = _d(mu), _d(logvar)
    var = (0.5 * lv).exp() if variant == "sigma_not_var" else lv.exp()
    m2 = mu if variant == "mu_not_squared" else mu.pow(2)
    one = 0.0 if variant == "no_one" else 1.0
    terms = one + lv - m2 - var
    scale = {"sign": 0.5, "no_half": -1.0}.get(variant, -0.5)
    if variant == "mean_latent":
        return scale * terms.mean(-1)
    per_example = scale * terms.sum(-1)
    if variant == "batch_sum":
        return per_example.sum()
    if variant == "batch_mean":
        return per_example.mean()
    return per_example


def name_kl_bug(got, mu: Tensor, logvar: Tensor, atol: float = 1e-4, rtol: float = 1e-4) -> str | None:
    """None if ``got`` is the per-example KL ``(B,)`` in float32; otherwise the likely bug."""
    shape = tuple(mu.shape[:-1])   # (B,): one KL per example
    if not isinstance(got, Tensor):
        return f"kl_divergence should return a float32 tensor of shape {shape} (one KL per example), got {describe(got)}."
    if tuple(got.shape) != shape:
        if got.dim() == 0 and len(shape) > 0:
            return (f"kl_divergence returned one number for the whole batch; it should give one KL per example, shape "
                    f"{shape}: sum over the latent axis only (dim=-1) and leave the batch mean to elbo_loss.")
        if tuple(got.shape) == tuple(mu.shape):
            return (f"kl_divergence returned shape {tuple(got.shape)}, one value per latent dimension: sum them over "
                    f"the latent axis (dim=-1) to get shape {shape}.")
        if mu.dim() == 2 and tuple(got.shape) == (mu.shape[1],):
            return (f"kl_divergence summed over the batch axis (dim=0), giving shape {tuple(got.shape)}; sum over the "
                    f"latent axis (dim=-1 or dim=1) to get one KL per example, shape {shape}.")
        return f"kl_divergence should return shape {shape} (one KL per example), got {tuple(got.shape)}."
    if got.dtype != torch.float32:
        return f"kl_divergence should return float32 for {mu.dtype} inputs, got {got.dtype}; {FLOAT32_HINT}."
    if not torch.isfinite(got).all():
        return f"kl_divergence gave inf/NaN; {FLOAT32_HINT}."
    want = kl_formula(mu, logvar)
    if close(got, want, atol, rtol):
        return None
    known = [
        ("sign", "the sign is flipped: KL = -1/2 * sum(1 + logvar - mu^2 - exp(logvar)) is never negative "
                 "(note the minus in front)."),
        ("no_one", "the '1 +' inside the sum is missing: KL = -1/2 * sum(1 + logvar - mu^2 - exp(logvar)); without "
                   "it the KL of N(0, I) to itself is L/2 instead of 0."),
        ("no_half", "the factor 1/2 is missing: KL = -0.5 * sum(1 + logvar - mu^2 - exp(logvar))."),
        ("sigma_not_var", "you used exp(0.5 * logvar) (the standard deviation) where the variance exp(logvar) belongs."),
        ("mu_not_squared", "the mean enters as mu^2 (mu.pow(2)); with mu alone the KL is not symmetric in the mean."),
        ("mean_latent", "you averaged over the latent dimensions; the KL of independent dimensions is their sum "
                        "(.sum(dim=-1))."),
    ]
    for variant, hint in known:
        if close(got, kl_formula(mu, logvar, variant), atol, rtol):
            return hint
    err = (_d(got) - want).abs().max().item()
    return (f"the KL differs from -1/2 * sum_j(1 + logvar_j - mu_j^2 - exp(logvar_j)) (largest error {err:.3g}); "
            "the sum runs over the latent axis (dim=-1).")


# ---------------------------------------------------------------- 3. ELBO

@oracle
def bernoulli_nll_formula(x: Tensor, x_logits: Tensor) -> Tensor:
    """Per-pixel ``BCE_with_logits`` in float64, computed stably: ``max(l, 0) - l*x + log(1 + exp(-|l|))``."""
    return _stable_bernoulli_nll(x, x_logits)


def _stable_bernoulli_nll(x: Tensor, x_logits: Tensor) -> Tensor:
    x, lg = _d(x), _d(x_logits)
    return lg.clamp(min=0) - lg * x + torch.log1p(torch.exp(-lg.abs()))


def _reduce_per_image(t: Tensor, reduce: str) -> Tensor:
    """``(B, ...) -> (B,)``: the mean or the sum over every axis but the batch."""
    flat = t.reshape(t.shape[0], -1)
    return flat.mean(1) if reduce == "mean" else flat.sum(1)


@oracle
def elbo_formula(x: Tensor, x_logits: Tensor, mu: Tensor, logvar: Tensor, beta: float = 1.0,
                 variant: str = "right", kl_variant: str = "right") -> Tensor:
    """The β-weighted negative ELBO, a float64 scalar, or one of the usual bugs.

    variant: "right" (mean over the batch of [sum over pixels of BCE + β KL]),
    "pixel_mean" (BCE averaged over pixels), "batch_sum" (summed over the batch),
    "kl_batch_sum" (recon averaged over the batch, KL summed), "recon_batch_sum" (recon
    summed over the batch, KL averaged), "sigmoid_logits" (sigmoid applied, then BCE with
    logits), "sigmoid_bce" (sigmoid, then F.binary_cross_entropy in float32, as torch
    computes it), "kl_subtracted", "not_negated" (the ELBO itself), "beta_on_recon",
    "beta_on_both", "no_beta", "no_kl", "swapped" (BCE(input=x, target=logits)).
    ``kl_variant`` (one of ``kl_formula``'s) puts a wrong KL into the right loss.
    """
    if variant == "sigmoid_bce":
        p = torch.sigmoid(x_logits.detach().float())
        bce = F.binary_cross_entropy(p, x.detach().float().clamp(0, 1), reduction="none").double()
    elif variant == "sigmoid_logits":
        bce = _stable_bernoulli_nll(x, torch.sigmoid(_d(x_logits)))
    elif variant == "swapped":
        bce = _stable_bernoulli_nll(x_logits, x)
    else:
        bce = _stable_bernoulli_nll(x, x_logits)
    recon = _reduce_per_image(bce, "mean" if variant == "pixel_mean" else "sum")
    kl = _kl_per_example(mu, logvar, kl_variant)
    b = 1.0 if variant == "no_beta" else float(beta)
    if variant == "batch_sum":
        return (recon + b * kl).sum()
    if variant == "kl_batch_sum":
        return recon.mean() + b * kl.sum()
    if variant == "recon_batch_sum":
        return recon.sum() + b * kl.mean()
    if variant == "kl_subtracted":
        return (recon - b * kl).mean()
    if variant == "not_negated":
        return (-recon - b * kl).mean()
    if variant == "beta_on_recon":
        return (b * recon + kl).mean()
    if variant == "beta_on_both":
        return b * (recon + kl).mean()
    if variant == "no_kl":
        return recon.mean()
    if kl_variant == "right":
        return (recon + b * kl).mean()
    return recon.mean() + b * kl.mean()


def name_elbo_bug(got, x: Tensor, x_logits: Tensor, mu: Tensor, logvar: Tensor, beta: float = 1.0,
                  atol: float = 1e-3, rtol: float = 1e-4) -> str | None:
    """None if ``got`` is the 0-d float32 β-weighted negative ELBO; otherwise the likely bug."""
    if not isinstance(got, Tensor):
        return f"elbo_loss should return a 0-d float32 tensor (the batch mean), got {describe(got)}."
    if got.dim() != 0:
        if got.numel() == 1:
            return f"elbo_loss should return a 0-d tensor (shape ()), got shape {tuple(got.shape)}: use .mean() last."
        if tuple(got.shape) == (x.shape[0],):
            return (f"elbo_loss returned one value per example, shape {tuple(got.shape)}; return their mean over the "
                    "batch, a 0-d tensor (a loss for backward() must be a scalar).")
        return f"elbo_loss should return a 0-d tensor (the batch mean), got shape {tuple(got.shape)}."
    if got.dtype != torch.float32:
        return (f"elbo_loss should return float32 for {x_logits.dtype} logits, got {got.dtype}: cast x_logits and x "
                f"with .float() before the BCE; {FLOAT32_HINT}.")
    if not torch.isfinite(got).all():
        return (f"elbo_loss gave inf/NaN. Use F.binary_cross_entropy_with_logits on the logits (never log(sigmoid(..))); "
                f"{FLOAT32_HINT}.")
    if close(got, elbo_formula(x, x_logits, mu, logvar, beta), atol, rtol):
        return None
    B = x.shape[0]
    known = [
        ("pixel_mean", "the reconstruction term is averaged over the pixels (F.binary_cross_entropy_with_logits' "
                       "default reduction='mean'): -log p(x|z) of an image is the SUM over its pixels, so use "
                       "reduction='none' and sum over every axis but the batch, then add the KL and average over the batch."),
        ("batch_sum", f"the loss is summed over the batch ({B} examples) instead of averaged: take the mean over the "
                      "batch, so the loss (and the learning rate it needs) does not depend on the batch size."),
        ("kl_batch_sum", "the reconstruction is averaged over the batch but the KL is summed over it: the two terms must "
                         "get the same reduction (both averaged over the batch), or the KL is weighted B times too much."),
        ("recon_batch_sum", "the reconstruction is summed over the batch but the KL averaged: use the same reduction for "
                            "both, the mean over the batch."),
        ("sigmoid_logits", "the decoder already gives logits: binary_cross_entropy_with_logits applies the sigmoid itself, "
                           "so passing torch.sigmoid(x_logits) applies it twice."),
        ("sigmoid_bce", "sigmoid followed by F.binary_cross_entropy loses precision: sigmoid saturates to exactly 1.0 "
                        "for logits above about 17 (float32) and log(0) is clamped, and CUDA autocast refuses "
                        "F.binary_cross_entropy. Use F.binary_cross_entropy_with_logits(x_logits, x, reduction='none')."),
        ("kl_subtracted", "the KL is subtracted: the loss to minimise is the NEGATIVE ELBO, reconstruction + KL."),
        ("not_negated", "this is the ELBO itself (a log-likelihood bound, negative); minimise its negative: "
                        "reconstruction loss + KL."),
        ("beta_on_recon", "beta multiplies the reconstruction term; it weights the KL only: recon + beta * KL."),
        ("beta_on_both", "beta multiplies the whole loss; it weights the KL only: recon + beta * KL."),
        ("no_beta", "beta is ignored: the loss is recon + beta * KL (beta=1 is the plain ELBO)."),
        ("no_kl", "the KL term is missing: the negative ELBO is reconstruction + KL."),
        ("swapped", "the arguments of the BCE are swapped: binary_cross_entropy_with_logits(input=x_logits, target=x)."),
    ]
    for variant, hint in known:
        if variant == "no_beta" and float(beta) == 1.0:
            continue
        if close(got, elbo_formula(x, x_logits, mu, logvar, beta, variant), atol, rtol):
            return hint
    for kl_variant in ("sign", "no_one", "no_half", "sigma_not_var", "mu_not_squared", "mean_latent"):
        if close(got, elbo_formula(x, x_logits, mu, logvar, beta, kl_variant=kl_variant), atol, rtol):
            return "the reconstruction term is right but the KL is not. " + PART2_NOTE
    # no size of the difference: for one number it would give the expected value away
    return ("the loss differs from mean_b[ sum_pixels BCE_with_logits(x_logits, x) + beta * KL ] by more than "
            "rounding. " + PART2_NOTE)


# ---------------------------------------------------------------- 4. latent grid

@oracle
def grid_quantiles(n: int, quantile_range: tuple[float, float] = (0.05, 0.95), spacing: str = "ndtri") -> Tensor:
    """The ``n`` coordinates of each axis in float64: ``ndtri(linspace(lo, hi, n))``, or a usual bug.

    spacing: "ndtri" (right), "linear" (evenly spaced in z between ndtri(lo) and ndtri(hi)),
    "percentiles" (the percentiles themselves, not transformed).
    """
    return _axis_quantiles(n, quantile_range, spacing)


def _axis_quantiles(n: int, quantile_range, spacing: str) -> Tensor:
    lo, hi = (float(q) for q in quantile_range)
    p = torch.linspace(lo, hi, n, dtype=torch.float64)
    if spacing == "percentiles":
        return p
    if spacing == "linear":
        a, b = torch.special.ndtri(torch.tensor([lo, hi], dtype=torch.float64)).tolist()
        return torch.linspace(a, b, n, dtype=torch.float64)
    return torch.special.ndtri(p)


@oracle
def linear_decoder_logits(z: Tensor, weight: Tensor, bias: Tensor, image_shape: tuple[int, ...]) -> Tensor:
    """The hidden/public tests' decoder in float64: ``z (M, 2) -> (z @ weight.T + bias)`` as ``(M, *image_shape)``."""
    return _decode_linear64(z, weight, bias, image_shape)


def _decode_linear64(z: Tensor, weight: Tensor, bias: Tensor, image_shape: tuple[int, ...]) -> Tensor:
    return (_d(z) @ _d(weight).T + _d(bias)).reshape(z.shape[0], *image_shape)


@oracle
def grid_formula(n: int, quantile_range, weight: Tensor, bias: Tensor, image_shape: tuple[int, ...],
                 variant: str = "right") -> Tensor:
    """The expected ``(n, n, *image_shape)`` grid of probabilities for the linear decoder, or a usual bug.

    variant: "right" (cell [i, j] decodes z = (q[j], q[i])), "transposed" (z = (q[i], q[j])),
    "rows_flipped" (row 0 = the largest z_2), "logits" (no sigmoid), "linear" (evenly
    spaced z), "percentiles" (no ndtri).
    """
    spacing = variant if variant in ("linear", "percentiles") else "ndtri"
    q = _axis_quantiles(n, quantile_range, spacing)
    rows, cols = torch.meshgrid(q, q, indexing="ij")
    z = torch.stack([rows, cols] if variant == "transposed" else [cols, rows], dim=-1).reshape(n * n, 2)
    logits = _decode_linear64(z, weight, bias, image_shape).reshape(n, n, *image_shape)
    if variant == "rows_flipped":
        logits = logits.flip(0)
    return logits if variant == "logits" else torch.sigmoid(logits)


@oracle
def grid_points_formula(n: int, quantile_range) -> Tensor:
    """Every grid point ``(z_1, z_2)`` once, as ``round(z * 1e4)``: a long ``(n*n, 2)`` tensor, rows sorted."""
    q = _axis_quantiles(n, quantile_range, "ndtri")
    return _point_keys(torch.cartesian_prod(q, q))


def _point_keys(z: Tensor) -> Tensor:
    """``z (M, 2)`` rounded to 1e-4, as a long ``(M, 2)`` tensor with its rows in sorted order."""
    return torch.tensor(sorted(map(tuple, torch.round(_d(z) * 1e4).long().tolist())), dtype=torch.long).reshape(-1, 2)


def name_grid_points_bug(z_seen, n: int, quantile_range) -> str | None:
    """Check the latent points the decoder was called on (``(M, 2)``, in any order)."""
    if not isinstance(z_seen, Tensor) or z_seen.dim() != 2 or z_seen.shape[-1] != 2:
        return (f"the decoder should be called on latents of shape (number of points, 2), got {describe(z_seen)}; "
                "stack the grid's z values into one (n*n, 2) tensor.")
    if z_seen.shape[0] != n * n:
        return (f"the decoder was given {z_seen.shape[0]} latent points in total for n={n}; an n x n grid has "
                f"n*n = {n * n}, one per cell.")
    if not torch.isfinite(z_seen).all():
        return ("some latent points are infinite: ndtri(0) = -inf and ndtri(1) = +inf, so the percentiles must stay "
                "inside quantile_range, not run from 0 to 1.")
    z = _d(z_seen)
    want = grid_quantiles(n, quantile_range)
    axis_values = [torch.unique(z[:, k].float()).double().sort().values for k in (0, 1)]
    for spacing, hint in (("linear", "the grid is evenly spaced in z (a linear grid). Space the PERCENTILES evenly, "
                                     "p = linspace(lo, hi, n), then map them through the inverse normal CDF, "
                                     "z = torch.special.ndtri(p), so every cell holds the same prior mass."),
                          ("percentiles", "the decoder got the percentiles themselves (values in (0, 1)); map them "
                                          "through the inverse normal CDF, torch.special.ndtri(p).")):
        other = grid_quantiles(n, quantile_range, spacing)
        if all(close(v, other, 1e-4, 1e-5) for v in axis_values) and not close(other, want, 1e-4, 1e-5):
            return hint
    for k, name in ((0, "z_1"), (1, "z_2")):
        v = axis_values[k]
        if not close(v, want, 1e-4, 1e-4):
            steps = v.diff()
            if n > 2 and tuple(v.shape) == (n,) and \
                    (steps - steps.mean()).abs().max() < 1e-4 * max(1.0, float(steps.abs().mean())):
                return (f"the {name} values are evenly spaced in z (a linear grid, as in many tutorials). Space the "
                        "PERCENTILES evenly, p = linspace(lo, hi, n), and map them through the inverse normal CDF, "
                        "z = torch.special.ndtri(p): then every cell holds the same prior mass.")
            if tuple(quantile_range) != (0.05, 0.95) and close(v, grid_quantiles(n, (0.05, 0.95)), 1e-4, 1e-5):
                return "the grid ignores the quantile_range argument (it always uses the default (0.05, 0.95))."
            return (f"the {name} values of the grid should be ndtri(linspace(lo, hi, n)), n distinct values at equally "
                    "spaced prior percentiles; yours are not.")
    if not same(_point_keys(z), grid_points_formula(n, quantile_range)):
        return "the decoder should see every pair (z_1, z_2) of grid values exactly once (n*n points)."
    return None


def name_grid_bug(got, n: int, quantile_range, weight: Tensor, bias: Tensor,
                  image_shape: tuple[int, ...], atol: float = 1e-4) -> str | None:
    """None if ``got`` is the ``(n, n, C, H, W)`` float32 grid of probabilities for the linear decoder."""
    shape = (n, n, *image_shape)
    if not isinstance(got, Tensor):
        return f"latent_grid should return a float32 tensor of shape {shape} (n, n, C, H, W), got {describe(got)}."
    if tuple(got.shape) != shape:
        if tuple(got.shape) == (n * n, *image_shape):
            return f"latent_grid returned the {n * n} images in one batch; reshape them to (n, n, C, H, W) = {shape}."
        if got.dim() == 2 and tuple(got.shape) == (n * image_shape[-2], n * image_shape[-1]):
            return (f"latent_grid returned one tiled picture {tuple(got.shape)}; return the stack of images, shape "
                    f"(n, n, C, H, W) = {shape} (genlab.plots.vae.latent_grid_figure tiles it for display).")
        return f"latent_grid should return shape (n, n, C, H, W) = {shape}, got {tuple(got.shape)}."
    if got.dtype != torch.float32:
        return f"latent_grid should return float32 probabilities, got {got.dtype}."
    want = grid_formula(n, quantile_range, weight, bias, image_shape)
    if close(got, want, atol):
        return None
    known = [
        ("logits", "these are the decoder's logits: the decoder returns logits, so apply torch.sigmoid to get pixel "
                   "probabilities in [0, 1]."),
        ("transposed", "rows and columns are swapped: cell [i, j] must decode z = (q[j], q[i]), so the column index "
                       "gives z_1 and the row index z_2."),
        ("rows_flipped", "the rows are in reverse order: row i must decode z_2 = q[i] with q ascending (flip it only "
                         "when you draw it)."),
        ("linear", "the grid is evenly spaced in z (a linear grid): space the percentiles evenly and map them through "
                   "torch.special.ndtri."),
        ("percentiles", "the decoder got the percentiles themselves; map them through torch.special.ndtri."),
    ]
    for variant, hint in known:
        if close(got, grid_formula(n, quantile_range, weight, bias, image_shape, variant), atol):
            return hint
    if got.min() < 0 or got.max() > 1:
        return "the grid should hold pixel probabilities in [0, 1]: apply torch.sigmoid to the decoder's logits."
    err = (_d(got) - want).abs().max().item()
    return (f"the decoded grid differs from sigmoid(decoder(z)) with z = (q[j], q[i]) in cell [i, j] (largest error "
            f"{err:.3g}).")

