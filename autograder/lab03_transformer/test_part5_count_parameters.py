"""Part 5: count_parameters(config: dict) -> int, the closed-form parameter count of genlab's GPT."""
import random

import pytest
from torch import nn

from autograder import kit
from genlab.checks import lab03_bugs as bugs

NAME = "count_parameters"


def real_configs(seed: int, n: int = 3) -> list[dict]:
    """``n`` configs small enough to build a real model in the grader, drawn per submission
    (``submission.seed``), so that no table of earlier answers fits them."""
    rng = random.Random(seed)
    configs = []
    for _ in range(n):
        n_head = rng.choice((1, 2, 3, 4))
        configs.append(dict(vocab_size=rng.randint(3, 120), block_size=rng.randint(2, 40), n_layer=rng.randint(0, 3),
                            n_head=n_head, n_embd=n_head * rng.randint(1, 12), dropout=rng.choice((0.0, 0.1))))
    return configs


FORMULA_CONFIGS = [
    dict(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2),
    dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768, dropout=0.0),
    dict(vocab_size=50257, block_size=1024, n_layer=24, n_head=16, n_embd=1024, dropout=0.0),
    dict(vocab_size=1000, block_size=10, n_layer=0, n_head=1, n_embd=4, dropout=0.0),
    dict(vocab_size=3, block_size=2, n_layer=5, n_head=3, n_embd=12, dropout=0.0),
    dict(vocab_size=256, block_size=128, n_layer=8, n_head=8, n_embd=64, dropout=0.0),
]


def torch_gpt(vocab_size, block_size, n_layer, n_embd, **_):
    """genlab's GPT architecture built from plain torch layers (tests/lab03 checks it matches genlab.models.GPT)."""
    d = n_embd

    def block():
        return nn.ModuleDict(dict(ln_1=nn.LayerNorm(d), q=nn.Linear(d, d), k=nn.Linear(d, d), v=nn.Linear(d, d),
                                  out=nn.Linear(d, d), ln_2=nn.LayerNorm(d), fc=nn.Linear(d, 4 * d),
                                  proj=nn.Linear(4 * d, d)))

    model = nn.ModuleDict(dict(wte=nn.Embedding(vocab_size, d), wpe=nn.Embedding(block_size, d),
                               blocks=nn.ModuleList(block() for _ in range(n_layer)), ln_f=nn.LayerNorm(d),
                               lm_head=nn.Linear(d, vocab_size, bias=False)))
    model.lm_head.weight = model.wte.weight  # tied: counted once by parameters()
    return model


def _count(fn, config):
    hint = f"config is a plain dict with the keys {', '.join(sorted(config))}: read config['n_embd'] etc"
    return bugs.explained_call(kit.call, fn, dict(config), hint=hint)


def _check(got, config, want=None):
    hint = bugs.name_parameter_bug(got, config)
    if hint is not None:
        raise AssertionError(f"for a config with n_layer={config['n_layer']}: {hint}")
    if want is not None and got != want:   # never `want` itself: feedback must not hand out answers
        shown = ", ".join(f"{k}={config[k]}" for k in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"))
        raise AssertionError(f"for the config {shown} your formula gives {got}, which is not the real model's count.")


@pytest.mark.points(4)
def test_matches_real_model(submission):
    """Equal to sum(p.numel() for p in model.parameters()) of the real architecture, small configs."""
    fn = submission.function(NAME)
    for config in real_configs(submission.seed):
        real = sum(p.numel() for p in torch_gpt(**config).parameters())
        _check(_count(fn, config), config, real)


@pytest.mark.points(6)
def test_formula_for_other_configs(submission):
    """Exact for six more configs, from GPT-2 sized to degenerate (no layers)."""
    fn = submission.function(NAME)
    for config in FORMULA_CONFIGS:
        _check(_count(fn, config), config)
