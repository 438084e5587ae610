"""Mutants (realistic bugs), correct variants and cheats of lab 03's graded cells.

Each case rewrites one cell of ``solutions/03_transformer/transformer.ipynb`` (found by its
nbgrader ``grade_id``); ``tests/labs/`` grades them all and runs their public checks.
"""
from __future__ import annotations

from tests.labs.harness import Cheat, Mutant, Variant

SDPA, MASKS, MHA = "scaled_dot_product_attention", "masks", "multi_head_attention"
POS, COUNT, KV = "sinusoidal_positions", "count_parameters", "kv_cache_step"

ATT, MSK, MHA_T = "part1_attention", "part2_masks", "part3_multi_head_attention"
POS_T, COUNT_T, KV_T = "part4_positions", "part5_count_parameters", "part6_kv_cache"

INLINE_ATTENTION_SQRT_D_MODEL = """scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_model)
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        if mask is not None:
            weights = weights.masked_fill(~mask, 0.0)
        out = weights @ v"""

# The weights of scaled_dot_product_attention written by hand (a cheat adds the output's line).
SDPA_WEIGHTS_BY_HAND = """
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)
"""

MUTANTS = [
    # --- part 1: scaled dot-product attention
    Mutant("sdpa_no_scale", SDPA, (("/ math.sqrt(d_k)", ""),), (ATT,), ("math.sqrt(d_k)", "not scaled")),
    Mutant("sdpa_divide_by_dk", SDPA, (("/ math.sqrt(d_k)", "/ d_k"),), (ATT,), ("instead of √d_k",)),
    Mutant("sdpa_softmax_over_queries", SDPA, (("torch.softmax(scores, dim=-1)", "torch.softmax(scores, dim=-2)"),),
           (ATT,), ("dim=-1",)),
    Mutant("sdpa_fill_minus_1e9", SDPA, (("torch.finfo(scores.dtype).min", "-1e9"),), (ATT,), ("-1e9", "65504")),
    Mutant("sdpa_neg_inf_gives_nan", SDPA,
           (("torch.finfo(scores.dtype).min", 'float("-inf")'),
            ("        weights = weights.masked_fill(~mask, 0.0)\n", "        pass\n")),
           (ATT,), ("NaN",)),
    Mutant("sdpa_fully_masked_row_uniform", SDPA,
           (("        weights = weights.masked_fill(~mask, 0.0)\n", "        pass\n"),), (ATT,),
           ("uniform weights",)),
    Mutant("sdpa_inverted_mask", SDPA,
           (("scores.masked_fill(~mask,", "scores.masked_fill(mask,"), ("weights.masked_fill(~mask,", "weights.masked_fill(mask,")),
           (ATT,), ("ALLOWED",)),
    Mutant("sdpa_mask_only_after_softmax", SDPA,
           (("        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)\n", "        pass\n"),),
           (ATT,), ("not masked before",)),
    Mutant("sdpa_k_dot_T", SDPA, (("q @ k.transpose(-2, -1)", "q @ k.T"),), (ATT,), ("k.transpose(-2, -1)",)),
    Mutant("sdpa_float32_output_for_float16", SDPA,
           (("torch.softmax(scores, dim=-1)", "torch.softmax(scores.float(), dim=-1)"),
            ("output = weights @ v", "output = weights @ v.float()")),
           (ATT,), ("float16 output",)),
    # --- part 2: masks
    Mutant("causal_excludes_diagonal", MASKS, (("dtype=torch.bool).tril()", "dtype=torch.bool).tril(-1)"),), (MSK,),
           ("diagonal",)),
    Mutant("causal_sees_one_ahead", MASKS, (("dtype=torch.bool).tril()", "dtype=torch.bool).tril(1)"),), (MSK,),
           ("one future position",)),
    Mutant("causal_transposed", MASKS, (("dtype=torch.bool).tril()", "dtype=torch.bool).triu()"),), (MSK,),
           ("transposed",)),
    Mutant("causal_true_means_blocked", MASKS, (("dtype=torch.bool).tril()", "dtype=torch.bool).triu(1)"),), (MSK,),
           ("True = blocked",)),
    Mutant("causal_float_mask", MASKS, (("torch.ones(T, T, dtype=torch.bool).tril()", "torch.ones(T, T).tril()"),),
           (MSK,), ("torch.bool",)),
    Mutant("combine_with_or", MASKS, (("causal[None, None, :, :] & key_padding", "causal[None, None, :, :] | key_padding"),),
           (MSK,), ("OR",)),
    Mutant("combine_pads_queries", MASKS, (("key_padding[:, None, None, :]", "key_padding[:, None, :, None]"),),
           (MSK,), ("queries", "shape")),
    Mutant("combine_without_broadcast_axes", MASKS,
           (("causal[None, None, :, :] & key_padding[:, None, None, :]", "causal & key_padding"),),
           (MSK,), ("key_padding[:, None, None, :]",)),
    # --- part 3: multi-head attention
    Mutant("mha_merge_without_transpose", MHA,
           (("return x.transpose(1, 2).reshape(B, T, H * d_head)", "return x.reshape(B, T, H * d_head)"),),
           (MHA_T,), ("wrong order", "transpose(1, 2)")),
    Mutant("mha_split_without_transpose", MHA,
           (("return x.view(B, T, self.n_heads, self.d_head).transpose(1, 2)",
             "return x.reshape(B, self.n_heads, T, self.d_head)"),),
           (MHA_T,), ("mixes time steps and heads",)),
    Mutant("mha_missing_out_proj", MHA, (("return self.out_proj(self.merge_heads(out))", "return self.merge_heads(out)"),),
           (MHA_T,), ("out_proj",)),
    Mutant("mha_kv_from_query", MHA,
           (("self.k_proj(key)", "self.k_proj(query)"), ("self.v_proj(value)", "self.v_proj(query)")),
           (MHA_T,), ("projected from `query`", "shape")),
    # promises no value check sees (genlab.checks.contract): gradients, inputs, per-head weights
    Mutant("sdpa_detached_weights", SDPA, (("weights = torch.softmax(scores, dim=-1)",
                                            "weights = torch.softmax(scores, dim=-1).detach()"),),
           (ATT,), ("no gradient reaches",)),
    Mutant("sdpa_scales_q_in_place", SDPA, (("scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)",
                                             "q /= math.sqrt(d_k)\n    scores = q @ k.transpose(-2, -1)"),),
           (ATT,), ("in place",)),
    Mutant("mha_last_weights_head_mean", MHA, (("self.last_weights = weights.detach()",
                                                "self.last_weights = weights.mean(dim=1).detach()"),),
           (MHA_T,), ("every head", "per head")),
    Mutant("mha_value_from_key", MHA, (("self.v_proj(value)", "self.v_proj(key)"),), (MHA_T,), ("v_proj(value)",)),
    Mutant("mha_inline_scale_sqrt_d_model", MHA,
           (("out, weights = scaled_dot_product_attention(q, k, v, mask)", INLINE_ATTENTION_SQRT_D_MODEL),),
           (MHA_T,), ("√d_model",)),
    # --- part 4: sinusoidal positions
    Mutant("positions_sin_cos_swapped", POS,
           (("pe[:, 0::2] = torch.sin(angle)", "pe[:, 0::2] = torch.cos(angle)"),
            ("pe[:, 1::2] = torch.cos(angle)", "pe[:, 1::2] = torch.sin(angle)")),
           (POS_T,), ("swapped",)),
    Mutant("positions_column_exponent", POS,
           (("    angle = position / 10000 ** (two_i / d)  # (T, d/2)\n",
             "    j = torch.arange(d, dtype=torch.float64)\n    angle_all = position / 10000 ** (j / d)\n"),
            ("pe[:, 0::2] = torch.sin(angle)", "pe[:, 0::2] = torch.sin(angle_all[:, 0::2])"),
            ("pe[:, 1::2] = torch.cos(angle)", "pe[:, 1::2] = torch.cos(angle_all[:, 1::2])")),
           (POS_T,), ("column index",)),
    Mutant("positions_halves_not_interleaved", POS,
           (("    pe[:, 0::2] = torch.sin(angle)\n    pe[:, 1::2] = torch.cos(angle)\n",
             "    pe = torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)\n"),),
           (POS_T,), ("interleaved",)),
    Mutant("positions_float64", POS, (("return pe.float()", "return pe"),), (POS_T,), ("float32",)),
    Mutant("positions_exponent_floor_divided", POS, (("10000 ** (two_i / d)", "10000 ** (two_i // d)"),), (POS_T,),
           ("integer division",)),
    Mutant("positions_integer_table", POS,
           (("pe = torch.zeros(T, d, dtype=torch.float64)", "pe = torch.zeros(T, d, dtype=torch.long)"),),
           (POS_T,), ("integer tensor",)),
    # --- part 5: parameter count
    Mutant("count_without_biases", COUNT,
           (("attention = 4 * (d * d + d)", "attention = 4 * d * d"),
            ("mlp = (d * 4 * d + 4 * d) + (4 * d * d + d)", "mlp = (d * 4 * d) + (4 * d * d)")),
           (COUNT_T,), ("biases are missing",)),
    Mutant("count_mlp_without_biases", COUNT,
           (("mlp = (d * 4 * d + 4 * d) + (4 * d * d + d)", "mlp = (d * 4 * d) + (4 * d * d)"),),
           (COUNT_T,), ("MLP's biases",)),
    Mutant("count_attention_without_biases", COUNT, (("attention = 4 * (d * d + d)", "attention = 4 * d * d"),),
           (COUNT_T,), ("attention's biases",)),
    Mutant("count_without_layernorms", COUNT,
           (("layer_norms = 2 * (2 * d)", "layer_norms = 0"), ("final_norm = 2 * d", "final_norm = 0")),
           (COUNT_T,), ("LayerNorms are missing",)),
    Mutant("count_per_head_full_qkv", COUNT,
           (("attention = 4 * (d * d + d)", 'attention = 3 * config["n_head"] * (d * d + d) + (d * d + d)'),),
           (COUNT_T,), ("each head",)),
    Mutant("count_untied_head", COUNT, (("embeddings = V * d + T * d", "embeddings = 2 * V * d + T * d"),),
           (COUNT_T,), ("tied",)),
    Mutant("count_returns_float", COUNT, (("attention = 4 * (d * d + d)", "attention = 4 * (math.pow(d, 2) + d)"),),
           (COUNT_T,), ("Python int",)),
    # --- part 6: KV cache
    Mutant("kv_cache_not_appended", KV,
           (("cache_k = torch.cat([cache_k, k_new], dim=-2)", "cache_k = k_new"),
            ("cache_v = torch.cat([cache_v, v_new], dim=-2)", "cache_v = v_new")),
           (KV_T,), ("append",)),
    Mutant("kv_cache_wrong_dim", KV,
           (("torch.cat([cache_k, k_new], dim=-2)", "torch.cat([cache_k, k_new], dim=1)"),
            ("torch.cat([cache_v, v_new], dim=-2)", "torch.cat([cache_v, v_new], dim=1)")),
           (KV_T,), ("dim=-2",)),
    Mutant("kv_cache_new_first", KV,
           (("torch.cat([cache_k, k_new], dim=-2)", "torch.cat([k_new, cache_k], dim=-2)"),
            ("torch.cat([cache_v, v_new], dim=-2)", "torch.cat([v_new, cache_v], dim=-2)")),
           (KV_T,), ("old entries first",)),
]

VARIANTS = [
    Variant("sdpa_einsum_where", SDPA, r'''
def scaled_dot_product_attention(q, k, v, mask=None):
    scale = q.shape[-1] ** -0.5
    scores = torch.einsum("...qd,...kd->...qk", q, k) * scale
    if mask is not None:
        scores = torch.where(mask, scores, torch.full_like(scores, float("-inf")))
    weights = torch.softmax(scores, dim=-1)
    weights = torch.nan_to_num(weights, nan=0.0)
    if mask is not None:
        weights = torch.where(mask, weights, torch.zeros_like(weights))
    return torch.einsum("...qk,...kd->...qd", weights, v), weights
''', "einsum, -inf then nan_to_num"),
    Variant("sdpa_manual_softmax", SDPA, r'''
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = torch.matmul(q, k.transpose(-1, -2)) / (q.shape[-1] ** 0.5)
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), torch.finfo(scores.dtype).min)
    e = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
    if mask is not None:
        e = e * mask
    total = e.sum(dim=-1, keepdim=True)
    weights = e / torch.where(total == 0, torch.ones_like(total), total)
    return torch.matmul(weights, v), weights
''', "hand-written stable softmax, multiply by the mask"),
    Variant("sdpa_float32_softmax_cast_back", SDPA, r'''
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = (q.float() @ k.float().transpose(-2, -1)) / math.sqrt(q.shape[-1])  # float32 for stability
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
        none_allowed = ~mask.any(dim=-1, keepdim=True)
        scores = scores.masked_fill(none_allowed, 0.0)
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights * mask
    return (weights @ v.float()).to(q.dtype), weights.to(q.dtype)
''', "float32 inside, cast back; -inf with fully masked rows filled 0 first"),
    Variant("masks_loops", MASKS, r'''
def causal_mask(T):
    m = torch.zeros(T, T, dtype=torch.bool)
    for i in range(T):
        for j in range(i + 1):
            m[i, j] = True
    return m


def combine_masks(causal, key_padding):
    B, T_k = key_padding.shape
    T_q = causal.shape[0]
    out = torch.zeros(B, 1, T_q, T_k, dtype=torch.bool)
    for b in range(B):
        out[b, 0] = torch.logical_and(causal, key_padding[b].unsqueeze(0).expand(T_q, T_k))
    return out
''', "explicit loops, logical_and"),
    Variant("mha_unflatten_permute", MHA, r'''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.n_heads, self.d_model = n_heads, d_model
        self.last_weights = None
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            setattr(self, name, nn.Linear(d_model, d_model))

    def split_heads(self, x):
        return x.unflatten(-1, (self.n_heads, -1)).permute(0, 2, 1, 3)

    def merge_heads(self, x):
        return x.permute(0, 2, 1, 3).flatten(-2)

    def forward(self, query, key, value, mask=None):
        heads = []
        q, k, v = (self.split_heads(p(t)) for p, t in
                   ((self.q_proj, query), (self.k_proj, key), (self.v_proj, value)))
        outs, ws = [], []
        for h in range(self.n_heads):  # one head at a time
            m = None if mask is None else (mask if mask.dim() < 4 else mask[:, min(h, mask.shape[1] - 1)])
            o, w = scaled_dot_product_attention(q[:, h], k[:, h], v[:, h], m)
            outs.append(o)
            ws.append(w)
        self.last_weights = torch.stack(ws, 1).detach()
        return self.out_proj(self.merge_heads(torch.stack(outs, 1)))
''', "unflatten/permute, one head at a time"),
    Variant("positions_python_loops", POS, r'''
def sinusoidal_positions(T, d):
    rows = []
    for p in range(T):
        row = []
        for j in range(d):
            i = j // 2
            angle = p / math.pow(10000.0, 2 * i / d)
            row.append(math.sin(angle) if j % 2 == 0 else math.cos(angle))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float32).reshape(T, d)
''', "math.sin/cos in loops"),
    Variant("positions_exp_log", POS, r'''
def sinusoidal_positions(T, d):
    pos = torch.arange(T).unsqueeze(1).float()
    inv = torch.exp(torch.arange(0, d, 2).float() * (-math.log(10000.0) / d))
    ang = pos * inv
    return torch.stack([torch.sin(ang), torch.cos(ang)], dim=-1).reshape(T, d)
''', "exp/log frequencies in float32, stack+reshape to interleave"),
    Variant("count_by_components", COUNT, r'''
def count_parameters(config):
    d = config["n_embd"]
    linear = lambda n_in, n_out: n_in * n_out + n_out
    layernorm = 2 * d
    block = 4 * linear(d, d) + linear(d, 4 * d) + linear(4 * d, d) + 2 * layernorm
    return config["n_layer"] * block + (config["vocab_size"] + config["block_size"]) * d + layernorm
''', "summed from layer sizes"),
    Variant("kv_cache_preallocated", KV, r'''
def kv_cache_step(q, k_new, v_new, cache_k=None, cache_v=None):
    past = 0 if cache_k is None else cache_k.shape[-2]
    B, H, _, d_h = k_new.shape
    new_k = k_new.new_empty(B, H, past + 1, d_h)
    new_v = v_new.new_empty(B, H, past + 1, v_new.shape[-1])
    if past:
        new_k[:, :, :past] = cache_k
        new_v[:, :, :past] = cache_v
    new_k[:, :, past:] = k_new
    new_v[:, :, past:] = v_new
    scores = torch.einsum("bhqd,bhkd->bhqk", q, new_k) / math.sqrt(d_h)
    out = torch.einsum("bhqk,bhkd->bhqd", scores.softmax(-1), new_v)
    return out, new_k, new_v
''', "preallocated caches, einsum and own softmax"),
]



CHEATS = [
    Cheat("sdpa_via_checks_formula", SDPA, r'''
def scaled_dot_product_attention(q, k, v, mask=None):
    from genlab.checks.lab03_bugs import attention_formula
    out, weights = attention_formula(q, k, v, mask)
    return out.to(q.dtype), weights.to(q.dtype)
''', (ATT,)),
    # the weights by hand, the output from torch's fused kernel under another name than F's
    *(Cheat(f"sdpa_via_{route}", SDPA, SDPA_WEIGHTS_BY_HAND + f"    return {call}(q, k, v, attn_mask=mask), weights\n", (ATT,))
      for route, call in (("aten_operator", "torch.ops.aten.scaled_dot_product_attention"),
                          ("c_binding", "torch._C._nn.scaled_dot_product_attention"))),
    Cheat("count_by_building_genlab_gpt", COUNT, r'''
def count_parameters(config):
    from genlab.models.gpt import GPT
    keys = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")
    return sum(p.numel() for p in GPT(**{k: config[k] for k in keys}).parameters())
''', (COUNT_T,)),
]
