"""Lab 03's own checks: the hidden tests' plain-torch GPT mirror, the public checks on the
library's reference and on the wrong answers students write (each must get a message that
names the real bug and its fix), and the sizes at which the bug-namers tell bugs apart.
(Grading, mutants and the notebooks are covered for every lab by ``tests/labs/``.)"""
from __future__ import annotations

import importlib.util
import math
import re

import pytest
import torch
from torch import nn

from autograder.runner.lab import AUTOGRADER_DIR
from genlab.checks import lab03 as checks
from genlab.checks import lab03_bugs as bugs
from genlab.checks.kit import close

HIDDEN = AUTOGRADER_DIR / "lab03_transformer"


def _hidden(stem: str):
    spec = importlib.util.spec_from_file_location(f"lab03_hidden_{stem}", HIDDEN / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_torch_mirror_of_gpt_matches_genlab_gpt():
    """The hidden test counts a plain-torch mirror of genlab's GPT; it must stay equal to the real one."""
    from genlab.models import GPT

    module = _hidden("test_part5_count_parameters")
    drawn = [c for seed in range(20) for c in module.real_configs(seed)]
    for config in drawn + [dict(vocab_size=103, block_size=64, n_layer=4, n_head=4, n_embd=128)]:
        keys = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")
        real = sum(p.numel() for p in GPT(**{k: config[k] for k in keys}).parameters())
        mirror = sum(p.numel() for p in module.torch_gpt(**config).parameters())
        assert mirror == real == bugs.gpt_parameter_formula(**{k: config[k] for k in keys}), config


# ------------------------------------------------------------------ the library's reference passes

def test_public_checks_pass_on_the_library_reference(capsys):
    import genlab.nn as ref
    from genlab.models import count_parameters

    checks.check_scaled_dot_product_attention(ref.scaled_dot_product_attention)
    checks.check_masks(ref.causal_mask, ref.combine_masks)
    checks.check_multi_head_attention(ref.MultiHeadAttention)
    checks.check_sinusoidal_positions(ref.sinusoidal_positions)
    checks.check_count_parameters(count_parameters)
    checks.check_kv_cache_step(ref.kv_cache_step)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and all(line.startswith("✓") for line in lines), lines
    assert "N = L(12d² + 13d) + Vd + Td + 2d" in lines[4]  # the closed form comes only with success


# ------------------------------------------------------------------ wrong answers students write

def sdpa(fill="min", zero=True, scale="sqrt", dim=-1, transpose="t", f32=False, invert=False, mask_first=True):
    """scaled_dot_product_attention written with one of the usual mistakes."""
    def fn(q, k, v, mask=None):
        if f32:
            q, k, v = q.float(), k.float(), v.float()
        kt = {"t": lambda: k.transpose(-2, -1), "T": lambda: k.T, "mT": lambda: k.mT}[transpose]()
        s = (q @ kt) / {"sqrt": math.sqrt(q.size(-1)), "none": 1.0, "dk": q.size(-1),
                        "dv": math.sqrt(v.size(-1)), "model": 1.0}[scale]
        if mask is not None:
            blocked = mask if invert else ~mask
            value = {"min": torch.finfo(s.dtype).min, "1e9": -1e9, "inf": float("-inf"), "-100": -100.0}[fill]
            if mask_first:
                s = s.masked_fill(blocked, value)
        w = torch.softmax(s, dim=dim)
        if mask is not None and zero:
            w = w.masked_fill(blocked, 0.0)
        return w @ v, w
    return fn


def sdpa_torch_sqrt(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / torch.sqrt(q.size(-1))
    w = torch.softmax(scores, -1)
    return w @ v, w


def sdpa_bmm(q, k, v, mask=None):
    w = torch.softmax(torch.bmm(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1)), -1)
    return torch.bmm(w, v), w


def sdpa_output_only(q, k, v, mask=None):
    return sdpa()(q, k, v, mask)[0]


def comb(c, p):
    return c[None, None] & p[:, None, None, :]


def causal(pattern):
    return lambda T: {"tril": torch.ones(T, T, dtype=torch.bool).tril(),
                      "triu1": torch.triu(torch.ones(T, T), diagonal=1).bool(),
                      "float": torch.tril(torch.ones(T, T)),
                      "additive": torch.triu(torch.full((T, T), float("-inf")), diagonal=1),
                      "tril-1": torch.ones(T, T, dtype=torch.bool).tril(-1)}[pattern]


def count(*flags):
    def fn(c):
        d, L, V, T, H = c["n_embd"], c["n_layer"], c["vocab_size"], c["block_size"], c["n_head"]
        attention = 4 * d * d + 4 * d
        if "per_head" in flags:
            attention = 3 * H * d * d + d * d + 4 * d
        mlp = 8 * d * d + (0 if "mlp_no_bias" in flags else 5 * d)
        total = L * (attention + mlp + 4 * d) + V * d + T * d + 2 * d
        return float(total) if "float" in flags else torch.tensor(total) if "tensor" in flags else total
    return fn


class MHAScaledByModelWidth(nn.Module):
    """Attention written inline in forward, scaled by √d_model instead of √d_head."""

    def __init__(self, d_model, n_heads):
        super().__init__()
        self.d_model, self.n_heads, self.last_weights = d_model, n_heads, None
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            setattr(self, name, nn.Linear(d_model, d_model))

    def split_heads(self, x):
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, -1).transpose(1, 2)

    def merge_heads(self, x):
        B, H, T, d_h = x.shape
        return x.transpose(1, 2).reshape(B, T, H * d_h)

    def forward(self, query, key, value, mask=None):
        q, k, v = self.split_heads(self.q_proj(query)), self.split_heads(self.k_proj(key)), self.split_heads(self.v_proj(value))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_model)
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        w = torch.softmax(scores, -1)
        self.last_weights = w
        return self.out_proj(self.merge_heads(w @ v))


class MHAMergeWithView(MHAScaledByModelWidth):
    def forward(self, query, key, value, mask=None):
        q, k, v = self.split_heads(self.q_proj(query)), self.split_heads(self.k_proj(key)), self.split_heads(self.v_proj(value))
        out, w = sdpa()(q, k, v, mask)
        self.last_weights = w
        B, H, T, d_h = out.shape
        return self.out_proj(out.transpose(1, 2).view(B, T, H * d_h))


class MHAValueFromKey(MHAScaledByModelWidth):
    def forward(self, query, key, value, mask=None):
        q, k, v = self.split_heads(self.q_proj(query)), self.split_heads(self.k_proj(key)), self.split_heads(self.v_proj(key))
        out, w = sdpa()(q, k, v, mask)
        self.last_weights = w
        return self.out_proj(self.merge_heads(out))


class MHAWithoutBias(MHAScaledByModelWidth):
    def forward(self, query, key, value, mask=None):
        q, k, v = (self.split_heads(x @ p.weight.T) for x, p in ((query, self.q_proj), (key, self.k_proj), (value, self.v_proj)))
        out, w = sdpa()(q, k, v, mask)
        self.last_weights = w
        return self.out_proj(self.merge_heads(out))


def kv(dim=-2, new_first=False):
    def fn(q, k_new, v_new, cache_k=None, cache_v=None):
        if cache_k is not None:
            parts_k, parts_v = ([k_new, cache_k], [v_new, cache_v]) if new_first else ([cache_k, k_new], [cache_v, v_new])
            k_new, v_new = torch.cat(parts_k, dim=dim), torch.cat(parts_v, dim=dim)
        return sdpa()(q, k_new, v_new)[0], k_new, v_new
    return fn


def positions(variant):
    def fn(T, d):
        position = torch.arange(T)[:, None]
        two_i = torch.arange(0, d, 2)
        pe = torch.zeros_like(position).repeat(1, d) if variant == "zeros_like" else torch.zeros(T, d)
        exponent = two_i // d if variant == "floor" else (two_i / 2) / d if variant == "pair" else two_i / d
        angle = position / 10000 ** exponent
        pe[:, 0::2], pe[:, 1::2] = torch.sin(angle), torch.cos(angle)
        return pe
    return fn


WRONG_ANSWERS = [
    # (name, check, args, words the message must contain)
    ("fully masked row left uniform", checks.check_scaled_dot_product_attention, (sdpa(zero=False),), "uniform weights"),
    ("-1e9 in float16", checks.check_scaled_dot_product_attention, (sdpa(fill="1e9"),), "torch.finfo(x.dtype).min"),
    ("-inf, no zeroing", checks.check_scaled_dot_product_attention, (sdpa(fill="inf", zero=False),), "NaN"),
    ("-100 fill leaves tiny weights", checks.check_scaled_dot_product_attention, (sdpa(fill="-100", zero=False),),
     "exactly 0"),
    ("k.T", checks.check_scaled_dot_product_attention, (sdpa(transpose="T"),), "k.transpose(-2, -1)"),
    ("torch.bmm", checks.check_scaled_dot_product_attention, (sdpa_bmm,), "torch.matmul"),
    ("torch.sqrt of an int", checks.check_scaled_dot_product_attention, (sdpa_torch_sqrt,), "math.sqrt(d_k)"),
    ("float32 output for float16 inputs", checks.check_scaled_dot_product_attention, (sdpa(f32=True),),
     "float16 output"),
    ("no scale", checks.check_scaled_dot_product_attention, (sdpa(scale="none"),), "not scaled"),
    ("scale by d_k", checks.check_scaled_dot_product_attention, (sdpa(scale="dk"),), "instead of √d_k"),
    ("scale by sqrt(d_v)", checks.check_scaled_dot_product_attention, (sdpa(scale="dv"),), "√d_v"),
    ("softmax over queries", checks.check_scaled_dot_product_attention, (sdpa(dim=-2),), "dim=-1"),
    ("inverted mask", checks.check_scaled_dot_product_attention, (sdpa(invert=True),), "ALLOWED"),
    ("mask only after the softmax", checks.check_scaled_dot_product_attention, (sdpa(mask_first=False),),
     "not masked before"),
    ("returns only the output", checks.check_scaled_dot_product_attention, (sdpa_output_only,), "(output, weights)"),
    ("causal in the True = blocked convention", checks.check_masks, (causal("triu1"), comb), "True = blocked"),
    ("causal as a float mask", checks.check_masks, (causal("float"), comb), "torch.bool"),
    ("causal as an additive 0/-inf mask", checks.check_masks, (causal("additive"), comb), "additive"),
    ("causal without the diagonal", checks.check_masks, (causal("tril-1"), comb), "diagonal"),
    ("combine without broadcast axes", checks.check_masks, (causal("tril"), lambda c, p: c & p),
     "key_padding[:, None, None, :]"),
    ("combine without the head axis", checks.check_masks, (causal("tril"), lambda c, p: c & p[:, None, :]),
     "size-1 axis for the heads"),
    ("combine assuming T_q == T_k", checks.check_masks,
     (causal("tril"), lambda c, p: (c[None, None] & p[:, None, None, :]).expand(p.shape[0], 1, c.shape[0], c.shape[0])),
     "key_padding[:, None, None, :]"),
    ("count: MLP without biases", checks.check_count_parameters, (count("mlp_no_bias"),), "MLP's biases"),
    ("count: each head's Q, K, V as d x d", checks.check_count_parameters, (count("per_head"),), "each head"),
    ("count returns a float", checks.check_count_parameters, (count("float"),), "Python int"),
    ("count returns a tensor", checks.check_count_parameters, (count("tensor"),), "Python int"),
    ("count reads config.n_embd", checks.check_count_parameters, (lambda c: c.n_embd * 2,), "config['n_embd']"),
    ("MHA scaled by sqrt(d_model)", checks.check_multi_head_attention, (MHAScaledByModelWidth,), "√d_model"),
    ("MHA merges with .view", checks.check_multi_head_attention, (MHAMergeWithView,), ".reshape"),
    ("MHA values from key", checks.check_multi_head_attention, (MHAValueFromKey,), "v_proj(value)"),
    ("MHA projections without bias", checks.check_multi_head_attention, (MHAWithoutBias,), "biases are missing"),
    ("KV cache along the heads axis", checks.check_kv_cache_step, (kv(dim=1),), "dim=-2"),
    ("KV cache along the features axis", checks.check_kv_cache_step, (kv(dim=-1),), "dim=-2"),
    ("KV cache new entry first", checks.check_kv_cache_step, (kv(new_first=True),), "old entries first"),
    ("positions with floor division", checks.check_sinusoidal_positions, (positions("floor"),), "integer division"),
    ("positions in zeros_like(position)", checks.check_sinusoidal_positions, (positions("zeros_like"),), "integer"),
    ("positions with i/d", checks.check_sinusoidal_positions, (positions("pair"),), "2i/d"),
]


@pytest.mark.parametrize("name, check, args, words", WRONG_ANSWERS, ids=[w[0] for w in WRONG_ANSWERS])
def test_wrong_answer_gets_a_message_naming_the_bug(name, check, args, words):
    with pytest.raises(AssertionError) as info:
        check(*args)
    message = str(info.value)
    assert words in message, message
    if "raised an error" in message:  # a torch error is explained, never left raw
        assert re.search(r"raised an error: (?!\w+Error:).+ \(\w+Error: ", message), message


def test_right_answers_written_differently_pass(capsys):
    checks.check_scaled_dot_product_attention(sdpa(transpose="mT"))
    checks.check_masks(causal("tril"), lambda c, p: torch.logical_and(c, p[:, None, :]).unsqueeze(1))
    assert capsys.readouterr().out.count("✓") == 2


def test_not_written_yet():
    def stub(*args, **kwargs):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not written yet"):
        checks.check_scaled_dot_product_attention(stub)


# ------------------------------------------------------------------ sizes at which bugs differ

def _first_named(sizes, right, wrong, name):
    """The namer's verdict at the first size where ``wrong`` differs from ``right`` (None if never)."""
    for size in sizes:
        if not close(wrong(*size), right(*size), 2e-4):
            return name(wrong(*size), *size)
    return None


@pytest.mark.parametrize("sizes", [checks.POSITION_SIZES, _hidden("test_part4_positions").SIZES], ids=["public", "hidden"])
def test_every_sinusoid_bug_is_named_at_its_first_differing_size(sizes):
    for variant, hint in bugs.SINUSOID_BUGS:
        got = _first_named(sizes, bugs.sinusoid_formula, lambda T, d, variant=variant: bugs.sinusoid_formula(T, d, variant).float(),
                           bugs.name_sinusoid_bug)
        assert got == hint, (variant, got)


@pytest.mark.parametrize("lengths", [checks.CAUSAL_LENGTHS, _hidden("test_part2_masks").CAUSAL_LENGTHS],
                         ids=["public", "hidden"])
def test_every_causal_mask_bug_is_named_at_the_first_length(lengths):
    ones = lambda T: torch.ones(T, T, dtype=torch.bool)  # noqa: E731
    patterns = {"True = blocked": lambda T: ones(T).triu(1), "diagonal is False": lambda T: ones(T).tril(-1),
                "one future position": lambda T: ones(T).tril(1), "transposed": lambda T: ones(T).triu()}
    for words, pattern in patterns.items():
        T = lengths[0]
        assert words in bugs.name_causal_mask_bug(pattern(T), T), words


def test_hidden_real_configs_vary_per_submission_and_repeat_on_a_regrade():
    hidden = _hidden("test_part5_count_parameters")
    assert hidden.real_configs(123) == hidden.real_configs(123)
    assert len({str(hidden.real_configs(seed)) for seed in range(20)}) == 20


def _count_configs():
    hidden = _hidden("test_part5_count_parameters")
    # the hidden real configs are drawn per submission and need not separate every bug: the fixed
    # formula configs, graded in the same part, do
    return [("public", list(checks.COUNT_CONFIGS)), ("hidden formula", hidden.FORMULA_CONFIGS)]


@pytest.mark.parametrize("configs", [c for _, c in _count_configs()], ids=[n for n, _ in _count_configs()])
def test_every_counting_bug_is_named_at_its_first_differing_config(configs):
    """At the first config where a counting bug changes the count, the namer names that bug."""
    for flags, hint in bugs.PARAMETER_BUGS:
        for config in configs:
            args = {k: config[k] for k in ("vocab_size", "block_size", "n_layer", "n_embd", "n_head")}
            wrong = bugs.gpt_parameter_formula(**args, **flags)
            if wrong != bugs.gpt_parameter_formula(**args):
                assert bugs.name_parameter_bug(wrong, config) == hint, (flags, config)
                break
        else:
            pytest.fail(f"no config shows the bug {flags}")


def test_explain_error_prefers_the_lab_sentence_then_the_hint():
    assert "math.sqrt" in bugs.explain_error("sqrt(): argument 'input' (position 1) must be Tensor, not int")
    assert bugs.explain_error("The size of tensor a (3) must match the size of tensor b", "my hint") == "my hint"
    assert "transpose(-2, -1)" in bugs.explain_error("The size of tensor a (3) must match the size of tensor b")
    assert bugs.explain_error("something else") is None


def test_mha_namer_survives_bugs_whose_shapes_do_not_fit():
    """Cross-attention with key padding: the kv-from-query bug cannot apply there, the others still are named."""
    _, state = bugs.torch_mha(24, 3, 0)
    g = torch.Generator().manual_seed(0)
    y, memory = torch.randn(2, 3, 24, generator=g), torch.randn(2, 7, 24, generator=g)
    mask = (torch.arange(7)[None] < torch.tensor([7, 4])[:, None])[:, None, None, :]
    got = bugs.mha_formula(state, 3, y, memory, memory, mask, scale="none").float()
    assert "not scaled" in bugs.name_mha_bug(got, state, 3, y, memory, memory, mask)
    assert bugs.name_mha_bug(bugs.mha_formula(state, 3, y, memory, memory, mask).float(), state, 3, y, memory,
                             memory, mask) is None
