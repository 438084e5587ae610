"""Mutants (realistic bugs), correct variants and cheats of lab 00's graded cells.

Each case rewrites one cell of ``solutions/00_precision/precision.ipynb`` (found by its
nbgrader ``grade_id``); ``tests/labs/`` grades them all and runs their public checks.
The solution notebook is built by ``tests/lab00/make_notebook.py``.
"""
from __future__ import annotations

from tests.labs.harness import Cheat, Mutant, Variant

ADAM, SURVIVE, SCALING, DYNAMIC = "adam_step", "fp16_update_survives", "loss_scaling", "dynamic_scale_update"

MUTANTS = [
    # --- 1. Adam
    Mutant("adam_no_bias_correction", ADAM,
           (("m_hat = m / (1 - beta1 ** t)", "m_hat = m"), ("v_hat = v / (1 - beta2 ** t)", "v_hat = v")),
           ("adam_step",), ("bias correction",)),
    Mutant("adam_correction_on_m_only", ADAM, (("v_hat = v / (1 - beta2 ** t)", "v_hat = v"),),
           ("adam_step",), ("only m is bias-corrected",)),
    Mutant("adam_eps_inside_sqrt", ADAM, (("torch.sqrt(v_hat) + eps", "torch.sqrt(v_hat + eps)"),),
           ("adam_step",), ("inside the square root",)),
    Mutant("adam_step_counter_from_zero", ADAM,
           (('t = state.get("t", 0) + 1  # the first step is t = 1', 't = state.get("t", 0)'),
            ('return new_param, {"t": t, "m": m, "v": v}', 'return new_param, {"t": t + 1, "m": m, "v": v}')),
           ("adam_step",), ("1 − β^0 = 0", "count steps from 1")),
    Mutant("adamw_decay_coupled_into_gradient", ADAM,
           (("if weight_decay != 0 and not decoupled:", "if weight_decay != 0:"),
            ("        param = param * (1 - lr * weight_decay)  # decoupled (AdamW): shrink the weight itself\n",
             "        pass\n")),
           ("adam_step",), ("went into the gradient",)),
    Mutant("adamw_decay_without_lr", ADAM, (("param * (1 - lr * weight_decay)", "param * (1 - weight_decay)"),),
           ("adam_step",), ("forgets the learning rate",)),
    # --- 2. update survival
    Mutant("survive_computed_in_float32", SURVIVE,
           (("    return (size > gap / 2) | ((size == gap / 2) & neighbour_is_even & (size > 0))",
             "    return (weight.float() - lr * grad.float()) != weight.float()"),),
           ("fp16_update_survives",), ("float32",)),
    Mutant("survive_ties_always_survive", SURVIVE,
           (("(size > gap / 2) | ((size == gap / 2) & neighbour_is_even & (size > 0))", "(size > 0) & (size >= gap / 2)"),),
           ("fp16_update_survives",), ("half to even",)),
    Mutant("survive_whole_gap", SURVIVE,
           (("(size > gap / 2) | ((size == gap / 2) & neighbour_is_even & (size > 0))", "size > gap"),),
           ("fp16_update_survives",), ("HALF the gap",)),
    Mutant("survive_gap_away_from_zero", SURVIVE,
           (("target = torch.where(u > 0, -torch.inf, torch.inf)", "target = torch.where(w < 0, -torch.inf, torch.inf)"),),
           ("fp16_update_survives",), ("powers of two",)),
    Mutant("survive_relative_epsilon", SURVIVE,
           (("    return (size > gap / 2) | ((size == gap / 2) & neighbour_is_even & (size > 0))",
             "    return (size > 0) & (size > torch.finfo(torch.float16).eps * w.double().abs() / 2)"),),
           ("fp16_update_survives",), ("eps·|w|",)),
    # --- 3. loss scaling
    Mutant("scaling_after_backward", SCALING, (("(loss * scale).backward()", "loss.backward()"),),
           ("loss_scaling",), ("not scaled",)),
    Mutant("scaling_divides_the_loss", SCALING, (("(loss * scale).backward()", "(loss / scale).backward()"),),
           ("loss_scaling",), ("divided by the scale",)),
    Mutant("unscale_isinf_misses_nan", SCALING,
           (("any(not torch.isfinite(g).all() for g in unscaled if g is not None)",
             "any(torch.isinf(g).any() for g in unscaled if g is not None)"),),
           ("loss_scaling",), ("NaN is not inf",)),
    Mutant("unscale_in_float16", SCALING,
           (("unscaled = [None if g is None else g.float() / scale for g in grads]",
             "unscaled = [None if g is None else (g / scale).float() for g in grads]"),),
           ("loss_scaling",), ("float16",)),
    Mutant("unscale_after_clipping", SCALING,
           (("unscaled = [None if g is None else g.float() / scale for g in grads]",
             "unscaled = [None if g is None else g.float() for g in grads]"),
            ("    return unscaled, bool(found_inf)",
             "    unscaled = [None if g is None else g / scale for g in unscaled]\n    return unscaled, bool(found_inf)")),
           ("loss_scaling",), ("clipped before unscaling",)),
    Mutant("unscale_checks_first_gradient_only", SCALING,
           (("for g in unscaled if g is not None)", "for g in unscaled[:1] if g is not None)"),),
           ("loss_scaling",), ("every gradient",)),
    Mutant("unscale_found_inf_tensor", SCALING, (("return unscaled, bool(found_inf)", "return unscaled, torch.tensor(found_inf)"),),
           ("loss_scaling",), ("Python bool",)),
    # --- 4. dynamic scale
    Mutant("dynamic_never_backs_off", DYNAMIC, (("return scale * backoff_factor, 0", "return scale, 0"),),
           ("dynamic_scale_update",), ("never reduced",)),
    Mutant("dynamic_no_reset_after_growth", DYNAMIC, (("return float(new_scale), 0", "return float(new_scale), growth_tracker"),),
           ("dynamic_scale_update",), ("reset the clean-step counter",)),
    Mutant("dynamic_no_reset_on_overflow", DYNAMIC,
           (("return scale * backoff_factor, 0", "return scale * backoff_factor, growth_tracker"),),
           ("dynamic_scale_update",), ("restart at 0", "reset")),
    Mutant("dynamic_grows_one_step_late", DYNAMIC,
           (("    growth_tracker += 1  # one more clean step\n", ""),
            ("return float(scale), growth_tracker", "return float(scale), growth_tracker + 1")),
           ("dynamic_scale_update",), ("one step late",)),
    Mutant("dynamic_grows_past_float32", DYNAMIC,
           (("if new_scale > torch.finfo(torch.float32).max:", "if False:"),),
           ("dynamic_scale_update",), ("largest float32",)),
]

VARIANTS = [
    Variant("adam_torch_style_in_place", ADAM, r'''
def adam_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    beta1, beta2 = betas
    step = state.get("t", 0) + 1
    exp_avg = state["m"].clone() if "m" in state else torch.zeros_like(param)
    exp_avg_sq = state["v"].clone() if "v" in state else torch.zeros_like(param)
    p = param.clone()
    if weight_decay:
        if decoupled:
            p.mul_(1 - lr * weight_decay)
        else:
            grad = grad.add(p, alpha=weight_decay)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    step_size = lr / (1 - beta1 ** step)
    denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2 ** step)).add_(eps)
    p.addcdiv_(exp_avg, denom, value=-step_size)
    return p, {"t": step, "m": exp_avg, "v": exp_avg_sq}
''', notes="torch's own ordering: lerp_, addcmul_, step size lr / (1 - β1^t)"),
    Variant("adam_mutates_state_dict", ADAM, r'''
def adam_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    b1, b2 = betas
    if not state:
        state.update(t=0, m=torch.zeros_like(param), v=torch.zeros_like(param))
    state["t"] += 1
    g = grad + weight_decay * param if (weight_decay and not decoupled) else grad
    state["m"] = b1 * state["m"] + (1 - b1) * g
    state["v"] = b2 * state["v"] + (1 - b2) * g ** 2
    update = (state["m"] / (1 - b1 ** state["t"])) / ((state["v"] / (1 - b2 ** state["t"])) ** 0.5 + eps)
    shrink = (1 - lr * weight_decay) if decoupled else 1.0
    return param * shrink - lr * update, state
''', notes="updates the state dict it was given and returns it"),
    Variant("survive_direct_float16_arithmetic", SURVIVE, r'''
def fp16_update_survives(weight, lr, grad):
    w = weight.half()
    return (w - lr * grad.half()) != w
''', notes="lets float16 do the arithmetic"),
    Variant("survive_frexp_loop", SURVIVE, r'''
def fp16_update_survives(weight, lr, grad):
    out = torch.zeros(weight.shape, dtype=torch.bool)
    w_all, u_all = weight.half().flatten(), (lr * grad.half()).half().flatten()
    for i in range(w_all.numel()):
        w, u = float(w_all[i]), float(u_all[i])
        if u == 0:
            continue
        new = w - u
        if w == 0:
            out.view(-1)[i] = True
            continue
        mant, exp = math.frexp(abs(w))  # |w| = mant * 2**exp with 0.5 <= mant < 1
        exp = max(exp, -13)  # subnormals: the spacing stops shrinking at 2**-24
        gap_up = 2.0 ** (exp - 11)
        toward_zero = abs(new) < abs(w)
        gap = gap_up / 2 if (toward_zero and mant == 0.5 and exp > -13) else gap_up
        size = abs(u)
        if size > gap / 2:
            out.view(-1)[i] = True
        elif size == gap / 2:
            neighbour = torch.tensor(new, dtype=torch.float64).half()  # a tie: where does it round?
            out.view(-1)[i] = float(neighbour) != w
    return out
''', notes="an element-by-element loop with math.frexp"),
    Variant("scaling_with_torch_helpers", SCALING, r'''
def scaled_backward(loss, scale):
    loss.mul(scale).backward()


def unscale_and_check(grads, scale, max_norm=None):
    out = []
    found_inf = False
    for g in grads:
        if g is None:
            out.append(None)
            continue
        u = g.to(torch.float32).div(scale)
        found_inf = found_inf or not bool(torch.isfinite(u).all())
        out.append(u)
    if max_norm is not None and not found_inf:
        holders = [torch.nn.Parameter(torch.zeros_like(u)) for u in out if u is not None]
        for h, u in zip(holders, [u for u in out if u is not None]):
            h.grad = u
        torch.nn.utils.clip_grad_norm_(holders, max_norm)
        it = iter(h.grad for h in holders)
        out = [None if u is None else next(it) for u in out]
    return out, found_inf
''', notes="a loop, torch.nn.utils.clip_grad_norm_ for the clipping"),
    Variant("dynamic_with_float32_tensors", DYNAMIC, r'''
def dynamic_scale_update(scale, found_inf, growth_tracker, growth_factor=2.0, backoff_factor=0.5,
                         growth_interval=2000):
    s = torch.tensor(scale, dtype=torch.float32)
    if found_inf:
        return float(s * backoff_factor), 0
    count = growth_tracker + 1
    if count < growth_interval:
        return float(s), count
    grown = s * growth_factor
    return float(grown if torch.isfinite(grown) else s), 0
''', notes="keeps the scale as a float32 tensor, as GradScaler does"),
]

CHEATS = [
    Cheat("adam_via_genlab", ADAM, r'''
def adam_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    from genlab.optim import adam_step as reference
    return reference(param, grad, state, lr, betas, eps, weight_decay, decoupled)
''', ("adam_step",)),
    Cheat("adam_via_torch_optim", ADAM, r'''
def adam_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    p = torch.nn.Parameter(param.detach().clone())
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    opt = cls([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if state:
        opt.state[p] = {"step": torch.tensor(float(state["t"])), "exp_avg": state["m"].clone(),
                        "exp_avg_sq": state["v"].clone()}
    p.grad = grad.clone()
    opt.step()
    s = opt.state[p]
    return p.detach(), {"t": int(s["step"]), "m": s["exp_avg"], "v": s["exp_avg_sq"]}
''', ("adam_step",)),
    Cheat("survive_via_checks_oracle", SURVIVE, r'''
def fp16_update_survives(weight, lr, grad):
    from genlab.checks.lab00_bugs import fp16_truth
    return fp16_truth(weight, lr, grad)
''', ("fp16_update_survives",)),
    Cheat("scaling_via_genlab", SCALING, r'''
def scaled_backward(loss, scale):
    from genlab import precision
    return precision.scaled_backward(loss, scale)


def unscale_and_check(grads, scale, max_norm=None):
    from genlab import precision
    return precision.unscale_and_check(grads, scale, max_norm)
''', ("loss_scaling",)),
    # Binding the reference itself to the graded name: the grader's worker (or a probe) is then
    # the immediate caller, which the blockers trust. Fails (earns full marks) until the worker
    # refuses blocked wrappers handed out by name; see the lab 00 report.
    Cheat("scaling_via_genlab_alias", SCALING, r'''
from genlab.precision import scaled_backward, unscale_and_check
''', ("loss_scaling",)),
    Cheat("dynamic_via_amp_kernel", DYNAMIC, r'''
def dynamic_scale_update(scale, found_inf, growth_tracker, growth_factor=2.0, backoff_factor=0.5,
                         growth_interval=2000):
    s = torch.tensor([float(scale)])
    tracker = torch.tensor([int(growth_tracker)], dtype=torch.int32)
    torch._amp_update_scale_(s, tracker, torch.tensor([float(found_inf)]), growth_factor, backoff_factor,
                             growth_interval)
    return float(s), int(tracker)
''', ("dynamic_scale_update",)),
]
