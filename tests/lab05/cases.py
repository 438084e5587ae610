"""Mutants (realistic bugs), correct variants and cheats of lab 05's graded cells.

Each case rewrites one cell of ``solutions/05_gan/gan.ipynb`` (found by its nbgrader
``grade_id``); ``tests/labs/`` grades them all and runs their public checks.
"""
from __future__ import annotations

from tests.labs.harness import Cheat, Mutant, Variant

DLOSS, GLOSS, STEP = "discriminator_loss", "generator_loss", "training_step"
DLOSS_T, GLOSS_T, STEP_T = "part1_discriminator_loss", "part2_generator_loss", "part3_training_step"

D_BLOCK = """    for _ in range(gan.d_steps):
        fake = gan.generator(gan.sample_noise(B))
        d_loss = gan.discriminator_loss(gan.discriminator(real), gan.discriminator(fake.detach()))
        opt_d.zero_grad()
        gan.manual_backward(d_loss)
        opt_d.step()
"""
G_BLOCK = """    g_loss = gan.generator_loss(gan.discriminator(fake))  # the same fakes, through the updated D
    opt_g.zero_grad()
    gan.manual_backward(g_loss)
    opt_g.step()
"""
G_FIRST = """    fake = gan.generator(gan.sample_noise(B))
    g_loss = gan.generator_loss(gan.discriminator(fake))
    opt_g.zero_grad()
    gan.manual_backward(g_loss)
    opt_g.step()
    for _ in range(gan.d_steps):
        fake = gan.generator(gan.sample_noise(B))
        d_loss = gan.discriminator_loss(gan.discriminator(real), gan.discriminator(fake.detach()))
        opt_d.zero_grad()
        gan.manual_backward(d_loss)
        opt_d.step()
"""

MUTANTS = [
    # --- part 1: the discriminator's loss
    Mutant("d_labels_swapped", DLOSS,
           (("real_targets = torch.full_like(real_logits, 1.0 - label_smoothing)",
             "real_targets = torch.zeros_like(real_logits)"),
            ("fake_targets = torch.zeros_like(fake_logits)", "fake_targets = torch.full_like(fake_logits, 1.0 - label_smoothing)")),
           (DLOSS_T,), ("swapped",)),
    Mutant("d_sigmoid_then_bce", DLOSS,
           (("F.binary_cross_entropy_with_logits(real_logits, real_targets)",
             "F.binary_cross_entropy(torch.sigmoid(real_logits), real_targets)"),
            ("F.binary_cross_entropy_with_logits(fake_logits, fake_targets)",
             "F.binary_cross_entropy(torch.sigmoid(fake_logits), fake_targets)")),
           (DLOSS_T,), ("sigmoid",)),
    Mutant("d_terms_averaged", DLOSS, (("return real_loss + fake_loss", "return (real_loss + fake_loss) / 2"),),
           (DLOSS_T,), ("half",)),
    Mutant("d_two_sided_smoothing", DLOSS,
           (("fake_targets = torch.zeros_like(fake_logits)", "fake_targets = torch.full_like(fake_logits, label_smoothing)"),),
           (DLOSS_T,), ("two-sided",)),
    Mutant("d_value_function_sign", DLOSS, (("return real_loss + fake_loss", "return -(real_loss + fake_loss)"),),
           (DLOSS_T,), ("sign",)),
    Mutant("d_float16_loss", DLOSS,
           (("    real_logits, fake_logits = real_logits.float(), fake_logits.float()  # losses in float32\n", ""),),
           (DLOSS_T,), ("float32",)),
    Mutant("d_log_of_probabilities", DLOSS,
           (("    real_loss = F.binary_cross_entropy_with_logits(real_logits, real_targets)\n"
             "    fake_loss = F.binary_cross_entropy_with_logits(fake_logits, fake_targets)\n",
             "    p_real, p_fake = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)\n"
             "    real_loss = -(real_targets * torch.log(p_real) + (1 - real_targets) * torch.log(1 - p_real)).mean()\n"
             "    fake_loss = -torch.log(1 - p_fake).mean()\n"),),
           (DLOSS_T,), ("inf", "logits")),
    # promises no value check sees (genlab.checks.contract)
    Mutant("d_fake_term_negated_in_place", DLOSS,
           (("fake_loss = F.binary_cross_entropy_with_logits(fake_logits, fake_targets)",
             "fake_loss = -F.logsigmoid(fake_logits.neg_()).mean()  # BCE(x, 0) = -log sigmoid(-x)"),),
           (DLOSS_T,), ("changed its input `fake_logits` in place",)),
    Mutant("d_detaches_the_fakes", DLOSS,
           (("real_logits, fake_logits = real_logits.float(), fake_logits.float()",
             "real_logits, fake_logits = real_logits.float(), fake_logits.detach().float()  # fakes detached for D"),),
           (DLOSS_T,), ("no gradient reaches `fake_logits`",)),
    # --- part 2: the generator's loss
    Mutant("g_saturating", GLOSS,
           (("return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))",
             "return -F.softplus(fake_logits).mean()"),),
           (GLOSS_T,), ("saturating",)),
    Mutant("g_target_zero", GLOSS, (("torch.ones_like(fake_logits))", "torch.zeros_like(fake_logits))"),),
           (GLOSS_T,), ("target",)),
    Mutant("g_sigmoid_then_bce", GLOSS,
           (("F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))",
             "F.binary_cross_entropy(torch.sigmoid(fake_logits), torch.ones_like(fake_logits))"),),
           (GLOSS_T,), ("sigmoid",)),
    Mutant("g_sign_flipped", GLOSS,
           (("return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))",
             "return -F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))"),),
           (GLOSS_T,), ("sign",)),
    Mutant("g_float16_loss", GLOSS, (("    fake_logits = fake_logits.float()  # losses in float32\n", ""),),
           (GLOSS_T,), ("float32",)),
    Mutant("g_negated_in_place", GLOSS,
           (("return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))",
             "return F.softplus(fake_logits.neg_()).mean()  # -log sigmoid(x) = softplus(-x)"),),
           (GLOSS_T,), ("changed its input `fake_logits` in place",)),
    # --- part 3: the training step
    Mutant("step_generator_first", STEP, ((D_BLOCK + G_BLOCK, G_FIRST),), (STEP_T,), ("before D",)),
    Mutant("step_optimizers_swapped", STEP, (("opt_d, opt_g = gan.optimizers()", "opt_g, opt_d = gan.optimizers()"),),
           (STEP_T,), ("before D", "(opt_d, opt_g)")),
    Mutant("step_no_detach", STEP, (("gan.discriminator(fake.detach())", "gan.discriminator(fake)"),),
           (STEP_T,), ("detach",)),
    Mutant("step_no_detach_fresh_fakes", STEP,
           (("gan.discriminator(fake.detach())", "gan.discriminator(fake)"),
            ("    g_loss = gan.generator_loss(gan.discriminator(fake))  # the same fakes, through the updated D\n",
             "    fake = gan.generator(gan.sample_noise(B))\n    g_loss = gan.generator_loss(gan.discriminator(fake))\n")),
           (STEP_T,), ("detach",)),
    Mutant("step_real_batch_in_g_loss", STEP,
           (("g_loss = gan.generator_loss(gan.discriminator(fake))",
             "g_loss = -gan.discriminator_loss(gan.discriminator(real), gan.discriminator(fake))"),),
           (STEP_T,), ("real batch",)),
    Mutant("step_no_zero_grad_for_d", STEP, (("        opt_d.zero_grad()\n", ""),), (STEP_T,), ("zero_grad",)),
    Mutant("step_no_zero_grad_for_g", STEP, (("    opt_g.zero_grad()\n", ""),), (STEP_T,), ("zero_grad",)),
    Mutant("step_loss_backward", STEP,
           (("gan.manual_backward(d_loss)", "d_loss.backward()"), ("gan.manual_backward(g_loss)", "g_loss.backward()")),
           (STEP_T,), ("manual_backward",)),
    Mutant("step_ignores_d_steps", STEP, (("for _ in range(gan.d_steps):", "for _ in range(1):"),), (STEP_T,),
           ("d_steps",)),
    Mutant("step_d_loss_arguments_swapped", STEP,
           (("gan.discriminator_loss(gan.discriminator(real), gan.discriminator(fake.detach()))",
             "gan.discriminator_loss(gan.discriminator(fake.detach()), gan.discriminator(real))"),),
           (STEP_T,), ("swapped",)),
    Mutant("step_g_fakes_under_no_grad", STEP,
           (("    g_loss = gan.generator_loss(gan.discriminator(fake))  # the same fakes, through the updated D\n",
             "    with torch.no_grad():\n        fake = gan.generator(gan.sample_noise(B))\n"
             "    g_loss = gan.generator_loss(gan.discriminator(fake))\n"),),
           (STEP_T,), ("no gradient",)),
]

VARIANTS = [
    Variant("d_softplus_formula", DLOSS, r'''
def discriminator_loss(real_logits, fake_logits, label_smoothing=0.0):
    r, f = real_logits.float().flatten(), fake_logits.float().flatten()
    t = 1.0 - label_smoothing
    # BCE(x, t) = softplus(x) - t * x, exact for any logit
    return (F.softplus(r) - t * r).mean() + F.softplus(f).mean()
''', "softplus written out"),
    Variant("d_bce_module_per_term", DLOSS, r'''
def discriminator_loss(real_logits, fake_logits, label_smoothing=0.0):
    bce = torch.nn.BCEWithLogitsLoss()
    losses = []
    for logits, target in ((real_logits, 1.0 - label_smoothing), (fake_logits, 0.0)):
        x = logits.to(torch.float32).reshape(-1)
        losses.append(bce(x, torch.full_like(x, target)))
    return sum(losses)
''', "nn.BCEWithLogitsLoss in a loop"),
    Variant("g_logsigmoid", GLOSS, r'''
def generator_loss(fake_logits):
    return -F.logsigmoid(fake_logits.float()).mean()
''', "log-sigmoid"),
    Variant("g_softplus_sum_over_n", GLOSS, r'''
def generator_loss(fake_logits):
    x = fake_logits.double()
    return (F.softplus(-x).sum() / x.numel()).float()
''', "float64 inside, sum / N"),
    Variant("step_fresh_fakes_freeze_d", STEP, r'''
def training_step(gan, real):
    opt_d, opt_g = gan.optimizers()
    B = real.shape[0]
    for _ in range(gan.d_steps):
        with torch.no_grad():
            fake = gan.generator(gan.sample_noise(B))  # no graph to G at all: nothing to detach
        logits = gan.discriminator(torch.cat([real, fake]))
        d_loss = gan.discriminator_loss(logits[:B], logits[B:])
        gan.manual_backward(d_loss)
        opt_d.step()
        opt_d.zero_grad()
    gan.discriminator.requires_grad_(False)  # G's backward leaves D alone
    g_loss = gan.generator_loss(gan.discriminator(gan.generator(gan.sample_noise(B))))
    gan.discriminator.requires_grad_(True)
    gan.manual_backward(g_loss)
    opt_g.step()
    opt_g.zero_grad()
    return d_loss.detach(), g_loss.detach()
''', "fakes under no_grad, one D pass on cat, zero_grad after step, D frozen, fresh fakes for G"),
    Variant("step_module_zero_grad_while_loop", STEP, r'''
def training_step(gan, real):
    opt_d, opt_g = gan.optimizers()
    B = real.shape[0]
    done = 0
    while done < gan.d_steps:
        gan.zero_grad()  # every parameter of the GAN
        fake = gan.generator(gan.sample_noise(B)).detach()
        d_loss = gan.discriminator_loss(gan.discriminator(real), gan.discriminator(fake))
        gan.manual_backward(d_loss)
        opt_d.step()
        done += 1
    gan.zero_grad()
    g_loss = gan.generator_loss(gan.discriminator(gan.generator(gan.sample_noise(B))))
    gan.manual_backward(g_loss)
    opt_g.step()
    return (d_loss, g_loss)
''', "LightningModule.zero_grad, a while loop, fresh fakes"),
]

CHEATS = [
    Cheat("d_loss_via_library", DLOSS, r'''
def discriminator_loss(real_logits, fake_logits, label_smoothing=0.0):
    from genlab.nn.gan import discriminator_loss as reference
    return reference(real_logits, fake_logits, label_smoothing)
''', (DLOSS_T,)),
    Cheat("g_loss_via_checks_formula", GLOSS, r'''
def generator_loss(fake_logits):
    from genlab.checks.lab05_bugs import generator_loss_formula
    return generator_loss_formula(fake_logits).float()
''', (GLOSS_T,)),
    Cheat("step_via_library", STEP, r'''
def training_step(gan, real):
    from genlab.models import gan as library
    return library.discriminator_first_step(gan, real)
''', (STEP_T,)),
]
