"""Lab 04 (the VAE): mutants (realistic bugs), correct variants and cheats of the graded cells.

Each case rewrites one solution cell of ``solutions/04_vae/vae.ipynb`` (found by its nbgrader
``grade_id``); the harness in ``tests/labs`` grades them for real and runs each through the
notebook's public check.
"""
from tests.labs.harness import Cheat, Mutant, Variant

REP, KL, ELBO, GRID = "reparameterize", "kl_divergence", "elbo_loss", "latent_grid"

MUTANTS = [
    # --- 1. reparameterize
    Mutant("reparam_exp_logvar", REP, (("torch.exp(0.5 * logvar)", "torch.exp(logvar)"),),
           parts=("reparameterize",), keywords=("exp(0.5 * logvar)",)),
    Mutant("reparam_logvar_as_std", REP, (("sigma = torch.exp(0.5 * logvar)", "sigma = logvar"),),
           parts=("reparameterize",), keywords=("logvar itself",)),
    Mutant("reparam_sqrt_of_variance", REP, (("sigma = torch.exp(0.5 * logvar)", "sigma = torch.exp(logvar).sqrt()"),),
           parts=("mixed_precision",), keywords=("exp(0.5 * logvar)",)),
    Mutant("reparam_fresh_noise", REP, (("return mu + sigma * eps", "return mu + sigma * torch.randn_like(mu)"),),
           parts=("reparameterize",), keywords=("eps you are given",)),
    Mutant("reparam_detached", REP, (("return mu + sigma * eps", "return (mu + sigma * eps).detach()"),),
           parts=("reparameterize",), keywords=("no gradient",)),
    Mutant("reparam_in_place", REP, (("return mu + sigma * eps", "return eps.mul_(sigma).add_(mu)"),),
           parts=("reparameterize",), keywords=("in place",)),
    Mutant("reparam_adds_to_mu_in_place", REP, (("return mu + sigma * eps", "return mu.add_(sigma * eps)"),),
           parts=("reparameterize",), keywords=("`mu` in place",)),
    Mutant("reparam_logvar_detached", REP,
           (("sigma = torch.exp(0.5 * logvar)", "sigma = torch.exp(0.5 * logvar.detach())"),),
           parts=("reparameterize",), keywords=("no gradient reached `logvar`",)),
    # --- 2. kl_divergence
    Mutant("kl_sign_flipped", KL, (("return -0.5 * torch.sum", "return 0.5 * torch.sum"),),
           parts=("kl_divergence",), keywords=("sign",)),
    Mutant("kl_missing_one", KL, (("torch.sum(1 + logvar", "torch.sum(logvar"),),
           parts=("kl_divergence",), keywords=("'1 +'",)),
    Mutant("kl_mean_over_latent", KL, (("torch.sum(1 + logvar", "torch.mean(1 + logvar"),),
           parts=("kl_divergence",), keywords=("averaged over the latent",)),
    Mutant("kl_one_number_per_batch", KL, (("logvar.exp(), dim=-1)", "logvar.exp())"),),
           parts=("kl_divergence",), keywords=("one KL per example",)),
    Mutant("kl_summed_over_batch_axis", KL, (("logvar.exp(), dim=-1)", "logvar.exp(), dim=0)"),),
           parts=("kl_divergence",), keywords=("latent axis",)),
    Mutant("kl_exp_in_place", KL, (("logvar.exp(), dim=-1)", "logvar.exp_(), dim=-1)"),),
           parts=("kl_divergence",), keywords=("`logvar` in place",)),
    Mutant("kl_inputs_through_data", KL,
           (("mu, logvar = mu.float(), logvar.float()", "mu, logvar = mu.data.float(), logvar.data.float()"),),
           parts=("kl_divergence",), keywords=("backward() can reach it",)),
    Mutant("kl_in_float16", KL,
           (("    mu, logvar = mu.float(), logvar.float()  # exp(logvar) overflows float16 once logvar > 11\n", ""),),
           parts=("mixed_precision",), keywords=("float32",)),
    # --- 3. elbo_loss
    Mutant("elbo_mean_over_pixels", ELBO,
           (("recon = bce.flatten(start_dim=1).sum(dim=1)", "recon = bce.flatten(start_dim=1).mean(dim=1)"),),
           parts=("elbo_loss",), keywords=("averaged over the pixels",)),
    Mutant("elbo_default_reduction", ELBO,
           (('bce = F.binary_cross_entropy_with_logits(x_logits.float(), x.float(), reduction="none")',
             "recon_mean = F.binary_cross_entropy_with_logits(x_logits.float(), x.float())"),
            ("    recon = bce.flatten(start_dim=1).sum(dim=1)  # (B,): -log p(x | z), summed over the pixels\n", ""),
            ("return (recon + beta * kl).mean()", "return recon_mean + beta * kl.mean()")),
           parts=("elbo_loss",), keywords=("averaged over the pixels",)),
    Mutant("elbo_sigmoid_then_bce", ELBO,
           (('bce = F.binary_cross_entropy_with_logits(x_logits.float(), x.float(), reduction="none")',
             'bce = F.binary_cross_entropy(torch.sigmoid(x_logits.float()), x.float(), reduction="none")'),),
           parts=("elbo_loss", "mixed_precision"), keywords=("binary_cross_entropy_with_logits",)),
    Mutant("elbo_bce_on_logits", ELBO,
           (('bce = F.binary_cross_entropy_with_logits(x_logits.float(), x.float(), reduction="none")',
             'bce = F.binary_cross_entropy(x_logits.float(), x.float(), reduction="none")'),),
           parts=("elbo_loss",), keywords=("binary_cross_entropy_with_logits",)),
    Mutant("elbo_double_sigmoid", ELBO,
           (("binary_cross_entropy_with_logits(x_logits.float()", "binary_cross_entropy_with_logits(torch.sigmoid(x_logits.float())"),),
           parts=("elbo_loss",), keywords=("twice",)),
    Mutant("elbo_kl_summed_recon_averaged", ELBO,
           (("return (recon + beta * kl).mean()", "return recon.mean() + beta * kl.sum()"),),
           parts=("elbo_loss",), keywords=("same reduction",)),
    Mutant("elbo_summed_over_batch", ELBO, (("return (recon + beta * kl).mean()", "return (recon + beta * kl).sum()"),),
           parts=("elbo_loss",), keywords=("mean over the batch",)),
    Mutant("elbo_per_example", ELBO, (("return (recon + beta * kl).mean()", "return recon + beta * kl"),),
           parts=("elbo_loss",), keywords=("one value per example",)),
    Mutant("elbo_beta_on_recon", ELBO, (("return (recon + beta * kl).mean()", "return (beta * recon + kl).mean()"),),
           parts=("elbo_loss",), keywords=("beta multiplies the reconstruction",)),
    Mutant("elbo_kl_subtracted", ELBO, (("return (recon + beta * kl).mean()", "return (recon - beta * kl).mean()"),),
           parts=("elbo_loss",), keywords=("subtracted",)),
    # --- 4. latent_grid
    Mutant("grid_linear_span", GRID,
           (("q = torch.special.ndtri(torch.linspace(lo, hi, n))", "q = torch.linspace(-3.0, 3.0, n)"),),
           parts=("latent_grid",), keywords=("linear grid",)),
    Mutant("grid_linear_same_ends", GRID,
           (("q = torch.special.ndtri(torch.linspace(lo, hi, n))",
             "q = torch.linspace(float(torch.special.ndtri(torch.tensor(lo))), "
             "float(torch.special.ndtri(torch.tensor(hi))), n)"),),
           parts=("latent_grid",), keywords=("linear grid",)),
    Mutant("grid_percentiles_0_to_1", GRID,
           (("torch.linspace(lo, hi, n)", "torch.linspace(0.0, 1.0, n)"),),
           parts=("latent_grid",), keywords=("infinite",)),
    Mutant("grid_transposed", GRID, (("torch.stack([z1, z2], dim=-1)", "torch.stack([z2, z1], dim=-1)"),),
           parts=("latent_grid",), keywords=("swapped",)),
    Mutant("grid_rows_reversed", GRID,
           (('z2, z1 = torch.meshgrid(q, q, indexing="ij")', 'z2, z1 = torch.meshgrid(q.flip(0), q, indexing="ij")'),),
           parts=("latent_grid",), keywords=("reverse order",)),
    Mutant("grid_returns_logits", GRID,
           (("return torch.sigmoid(logits.float()).reshape", "return logits.float().reshape"),),
           parts=("latent_grid",), keywords=("sigmoid",)),
    Mutant("grid_grad_left_off", GRID,
           (("    with torch.no_grad():\n        logits = decoder(z)",
             "    torch.set_grad_enabled(False)  # a picture needs no gradients\n    logits = decoder(z)"),),
           parts=("latent_grid",), keywords=("switched off",)),
    Mutant("grid_float64_latents", GRID, (("torch.linspace(lo, hi, n))", "torch.linspace(lo, hi, n, dtype=torch.float64))"),),
           parts=("latent_grid",), keywords=("float32",)),
]

VARIANTS = [
    Variant("reparam_mul_exp_addcmul", REP, r'''
def reparameterize(mu, logvar, eps):
    std = logvar.mul(0.5).exp()
    return torch.addcmul(mu, std, eps)
''', "logvar.mul(0.5).exp() and torch.addcmul"),
    Variant("reparam_divide_by_two", REP, r'''
def reparameterize(mu, logvar, eps):
    std = (logvar / 2).exp()
    z = eps * std
    return z + mu
''', "exp(logvar / 2), eps * std + mu"),
    Variant("kl_per_dimension_loop", KL, r'''
def kl_divergence(mu, logvar):
    # torch.distributions' formula written out: 0.5 * (sigma^2 + mu^2 - 1 - log sigma^2), dimension by dimension
    mu = mu.to(torch.float32)
    logvar = logvar.to(torch.float32)
    total = torch.zeros(mu.shape[:-1], dtype=torch.float32)
    for j in range(mu.shape[-1]):
        var = torch.exp(logvar[..., j])
        total = total + 0.5 * (var + mu[..., j] ** 2 - 1.0 - logvar[..., j])
    return total
''', "a loop over latent dimensions, 0.5 * (var + mu^2 - 1 - logvar)"),
    Variant("kl_einsum_double", KL, r'''
def kl_divergence(mu, logvar):
    m, lv = mu.double(), logvar.double()
    inner = 1 + lv - torch.einsum("bl,bl->bl", m, m) - lv.exp()
    return (-0.5 * inner.sum(-1)).float()
''', "float64 inside, einsum, cast back to float32"),
    Variant("elbo_softplus_by_hand", ELBO, r'''
def elbo_loss(x, x_logits, mu, logvar, beta=1.0):
    logits, target = x_logits.float(), x.float()
    # -log p(x|z) per pixel = softplus(l) - x * l, the stable form of the BCE with logits
    nll = F.softplus(logits) - target * logits
    recon = nll.sum(dim=tuple(range(1, nll.dim())))
    return torch.mean(recon + beta * kl_divergence(mu, logvar))
''', "softplus form of the BCE, sum over all non-batch axes"),
    Variant("elbo_sum_then_divide", ELBO, r'''
def elbo_loss(x, x_logits, mu, logvar, beta=1.0):
    B = x.shape[0]
    recon = F.binary_cross_entropy_with_logits(x_logits.float(), x.float(), reduction="sum") / B
    kl = kl_divergence(mu, logvar).sum() / B
    return recon + beta * kl
''', "reduction='sum' divided by the batch size for both terms"),
    Variant("grid_erfinv_rows", GRID, r'''
def latent_grid(decoder, n, quantile_range=(0.05, 0.95)):
    lo, hi = quantile_range
    p = torch.linspace(lo, hi, n)
    q = math.sqrt(2.0) * torch.erfinv(2 * p - 1)  # the inverse normal CDF without scipy
    rows = []
    with torch.no_grad():
        for i in range(n):
            z = torch.stack([q, torch.full((n,), float(q[i]))], dim=1)  # z_1 runs along the row, z_2 = q[i]
            rows.append(torch.sigmoid(decoder(z)))
    return torch.stack(rows).float()
''', "erfinv instead of ndtri, one decoder call per row"),
    Variant("grid_cartesian_prod", GRID, r'''
def latent_grid(decoder, n, quantile_range=(0.05, 0.95)):
    q = torch.special.ndtri(torch.linspace(quantile_range[0], quantile_range[1], n, dtype=torch.float64)).float()
    pairs = torch.cartesian_prod(q, q)      # (q[i], q[j]) in row-major order
    z = pairs.flip(-1).contiguous()         # (z_1, z_2) = (q[j], q[i])
    images = decoder(z).detach().sigmoid()
    return images.view(n, n, *images.shape[1:])
''', "cartesian_prod, float64 percentiles cast to float32"),
]

CHEATS = [
    Cheat("reparam_via_genlab", REP, r'''
from genlab.nn.vae import reparameterize as _library_reparameterize


def reparameterize(mu, logvar, eps):
    return _library_reparameterize(mu, logvar, eps)
''', parts=("reparameterize",)),
    Cheat("kl_via_torch_distributions", KL, r'''
from torch.distributions import Normal, kl_divergence as _torch_kl


def kl_divergence(mu, logvar):
    q = Normal(mu.float(), torch.exp(0.5 * logvar.float()))
    return _torch_kl(q, Normal(torch.zeros_like(q.loc), torch.ones_like(q.loc))).sum(-1)
''', parts=("kl_divergence",)),
    Cheat("elbo_via_genlab", ELBO, r'''
import genlab.nn.vae as _vae


def elbo_loss(x, x_logits, mu, logvar, beta=1.0):
    return _vae.elbo_loss(x, x_logits, mu, logvar, beta=beta)
''', parts=("elbo_loss",)),
    Cheat("grid_via_genlab_helper", GRID, r'''
from genlab.nn.vae import latent_quantiles


def latent_grid(decoder, n, quantile_range=(0.05, 0.95)):
    q = latent_quantiles(n, quantile_range)
    z2, z1 = torch.meshgrid(q, q, indexing="ij")
    with torch.no_grad():
        logits = decoder(torch.stack([z1, z2], dim=-1).reshape(n * n, 2))
    return torch.sigmoid(logits).reshape(n, n, *logits.shape[1:])
''', parts=("latent_grid",)),
]
