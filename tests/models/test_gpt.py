"""GPT: parameter formula, weight tying, KV cache, causality, training, fp16."""
import inspect

import pytest
import torch

from genlab.models import GPT, GPTConfig, count_parameters, parameter_breakdown
from genlab.nn import scaled_dot_product_attention

TINY = dict(vocab_size=23, block_size=12, n_layer=2, n_head=2, n_embd=16)


def _tiny(seed=0, **overrides):
    torch.manual_seed(seed)
    return GPT(**{**TINY, **overrides})


def _real_count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "cfg",
    [
        dict(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128),
        dict(vocab_size=10, block_size=8, n_layer=1, n_head=1, n_embd=8),
        dict(vocab_size=103, block_size=32, n_layer=3, n_head=6, n_embd=48),
        dict(vocab_size=7, block_size=100, n_layer=6, n_head=2, n_embd=20),
        dict(vocab_size=500, block_size=16, n_layer=2, n_head=8, n_embd=64, dropout=0.1),
        dict(vocab_size=2, block_size=1, n_layer=0, n_head=1, n_embd=4),
    ],
)
def test_count_parameters_equals_the_real_module(cfg):
    model = GPT(**cfg)
    assert count_parameters(cfg) == _real_count(model)
    assert count_parameters(GPTConfig(**cfg)) == _real_count(model)


def test_count_parameters_from_a_partial_dict_uses_defaults():
    assert count_parameters({"vocab_size": 50}) == _real_count(GPT(50))
    with pytest.raises(ValueError, match="vocab_size"):
        count_parameters({"n_layer": 2})


def test_mlp_holds_about_two_thirds_of_a_block():
    for d in (128, 768):
        parts = parameter_breakdown(dict(vocab_size=100, n_layer=4, n_embd=d))
        block = parts["attention"] + parts["mlp"] + parts["layernorm"] - 2 * d
        assert abs(parts["mlp"] / block - 2 / 3) < 0.01
        assert abs(parts["attention"] / block - 1 / 3) < 0.01


def test_weights_are_tied_and_lm_head_has_no_bias():
    model = _tiny()
    assert model.lm_head.weight is model.wte.weight
    assert model.lm_head.weight.data_ptr() == model.wte.weight.data_ptr()
    assert model.lm_head.bias is None
    with torch.no_grad():
        model.wte.weight[3, 0] = 42.0
    assert model.lm_head.weight[3, 0] == 42.0


def test_forward_shapes_and_context_bound():
    model = _tiny()
    assert model(torch.randint(0, 23, (3, 12))).shape == (3, 12, 23)
    with pytest.raises(ValueError, match="context size"):
        model(torch.randint(0, 23, (1, 13)))


def test_causal_invariance_of_logits():
    model = _tiny().eval()
    idx = torch.randint(0, 23, (2, 12), generator=torch.Generator().manual_seed(0))
    idx2 = idx.clone()
    idx2[:, 7:] = (idx2[:, 7:] + 5) % 23
    a, b = model(idx), model(idx2)
    assert torch.equal(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def _windows(prompt_len, steps, block, keep):
    """The documented context policy, as (start, end) token ranges each step's logits come from."""
    n, end, out = min(prompt_len, block), prompt_len, []
    for _ in range(steps):
        out.append((end - n, end))
        n, end = (keep if n == block else n + 1), end + 1
    return out


@pytest.mark.parametrize("attention", [None, scaled_dot_product_attention])
@pytest.mark.parametrize("keep", [None, 1, 5, 12])
def test_cached_generation_gives_the_uncached_logits(attention, keep):
    model = _tiny(attention=attention)
    prompt = torch.randint(0, 23, (2, 3), generator=torch.Generator().manual_seed(0))
    # 30 new tokens with block_size 12: the window fills up, restarts from `keep` tokens, fills again
    cached, logits_c = model.generate(
        prompt, 30, generator=torch.Generator().manual_seed(1), return_logits=True, keep=keep
    )
    plain, logits_u = model.generate(
        prompt, 30, generator=torch.Generator().manual_seed(1), use_cache=False, return_logits=True, keep=keep
    )
    assert logits_c.shape == (2, 30, 23)
    torch.testing.assert_close(logits_c, logits_u, atol=1e-5, rtol=1e-5)
    assert torch.equal(cached, plain)
    # every step's logits are a plain forward over its window of the final sequence
    windows = _windows(3, 30, 12, 6 if keep is None else keep)
    for step, (start, end) in enumerate(windows):
        torch.testing.assert_close(logits_c[:, step], model(plain[:, start:end])[:, -1], atol=1e-5, rtol=1e-5)
    if keep == 12:  # the strict sliding window: always the last block_size tokens
        assert windows == [(max(0, 3 + i - 12), 3 + i) for i in range(30)]
    else:  # once full, the window restarts from `keep` tokens and regrows, never past block_size
        lengths = [e - s for s, e in windows]
        assert max(lengths) == 12 and lengths[9] == 12 and lengths[10] == (keep or 6)


def test_generation_runs_the_output_layer_on_the_last_position_only():
    model = _tiny().eval()
    idx = torch.randint(0, 23, (2, 9), generator=torch.Generator().manual_seed(0))
    seen = []
    handle = model.lm_head.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[1]))
    with torch.no_grad():
        torch.testing.assert_close(model._logits(idx, last_only=True), model(idx)[:, -1:])
        model.generate(idx[:1, :2], 15)
    handle.remove()
    assert seen[:2] == [1, 9] and set(seen[2:]) == {1}
    with pytest.raises(ValueError, match="keep"):
        model.generate(idx, 2, keep=13)
    with pytest.raises(ValueError, match="keep"):
        model.generate(idx, 2, keep=0)


def test_long_prompt_is_cropped_to_the_context():
    model = _tiny()
    prompt = torch.randint(0, 23, (1, 20), generator=torch.Generator().manual_seed(0))
    out, logits = model.generate(prompt, 3, temperature=0, return_logits=True)
    assert out.shape == (1, 23)
    torch.testing.assert_close(logits[:, 0], model(prompt[:, -12:])[:, -1], atol=1e-5, rtol=1e-5)


def test_default_and_injected_attention_compute_the_same_model():
    default = _tiny()
    injected = _tiny(attention=scaled_dot_product_attention)
    assert torch.equal(default.blocks[0].attn.qkv.weight, injected.blocks[0].attn.qkv.weight)
    idx = torch.randint(0, 23, (2, 12), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(default(idx), injected(idx), atol=1e-5, rtol=1e-5)
    maps = default.attention_maps(idx)
    assert len(maps) == 2 and maps[0].shape == (2, 2, 12, 12)
    assert torch.equal(maps[0].triu(1), torch.zeros_like(maps[0]))  # causal: nothing above the diagonal
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 2, 12))


def test_a_checkpoint_with_separate_q_k_v_projections_loads():
    """Older GPT checkpoints hold attn.q_proj/k_proj/v_proj: they load into the fused qkv."""
    model = _tiny()
    old = {}
    for name, value in model.state_dict().items():
        if ".attn.qkv." in name:
            for part, chunk in zip("qkv", value.chunk(3, dim=0), strict=True):
                old[name.replace(".qkv.", f".{part}_proj.")] = chunk.clone()
        else:
            old[name] = value
    fresh = _tiny(seed=1)
    fresh.load_state_dict(old)
    idx = torch.randint(0, 23, (2, 12), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(fresh(idx), model(idx))


def test_greedy_generation_is_deterministic_and_training_mode_is_restored():
    model = _tiny(dropout=0.1)
    model.train()
    prompt = torch.zeros(1, 1, dtype=torch.long)
    a = model.generate(prompt, 10, temperature=0.0)
    b = model.generate(prompt, 10, temperature=0.0, use_cache=False)
    assert torch.equal(a, b) and a.shape == (1, 11)
    assert model.training
    s1 = model.generate(prompt, 10, top_k=5, top_p=0.9, generator=torch.Generator().manual_seed(3))
    s2 = model.generate(prompt, 10, top_k=5, top_p=0.9, generator=torch.Generator().manual_seed(3))
    assert torch.equal(s1, s2)


def test_generation_draws_every_token_from_the_sampler_it_is_given():
    """A student's sampler (lab 01's sample_next) is the one generate runs, with its settings."""
    model = _tiny()
    prompt = torch.zeros(2, 3, dtype=torch.long)
    calls = []

    def last_token_sampler(logits, temperature, top_k, top_p, generator):
        calls.append((tuple(logits.shape), logits.dtype, temperature, top_k, top_p, generator))
        return torch.full((logits.shape[0],), 22, dtype=torch.long)

    g = torch.Generator()
    out = model.generate(prompt, 15, temperature=0.7, top_k=4, top_p=0.5, generator=g, sampler=last_token_sampler)
    assert out.shape == (2, 18) and bool((out[:, 3:] == 22).all())
    assert calls == [((2, 23), torch.float32, 0.7, 4, 0.5, g)] * 15
    default = model.generate(prompt, 5, temperature=0.0)
    assert torch.equal(default, model.generate(prompt, 5, temperature=0.0, sampler=lambda x, **_: x.argmax(-1)))


def test_optimizer_decays_only_matrices():
    model = _tiny()
    opt = model.configure_optimizers()["optimizer"]
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"])
    assert all(p.dim() == 1 for p in no_decay["params"])
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == _real_count(model)


def test_optimizer_is_fused_on_cpu_and_foreach_under_mixed_precision():
    import lightning as L

    model = _tiny()
    opt = model.configure_optimizers()["optimizer"]
    assert opt.defaults["fused"] is True  # no trainer, CPU parameters: one fused kernel
    trainer = L.Trainer(accelerator="cpu", precision="bf16-mixed", max_steps=2, gradient_clip_val=1.0,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    x = torch.randint(0, 23, (8, 12))
    data = torch.utils.data.DataLoader(list(zip(x, torch.roll(x, -1, 1), strict=True)), batch_size=4)
    trainer.fit(model, data)  # Lightning refuses clipping with a fused optimizer under mixed precision
    opt = trainer.optimizers[0]
    assert opt.defaults["foreach"] is True and not opt.defaults["fused"]
    assert torch.isfinite(trainer.callback_metrics["train_loss"])


def test_fused_optimizer_follows_torch_per_tensor_adamw():
    """The fused update is AdamW: 20 steps against torch's per-tensor loop (the oracle)."""
    model, oracle = _tiny(lr=3e-3), _tiny(lr=3e-3)
    start = [p.detach().clone() for p in model.parameters()]
    opt = model.configure_optimizers()["optimizer"]
    matrices = [p for p in oracle.parameters() if p.dim() >= 2]
    vectors = [p for p in oracle.parameters() if p.dim() < 2]
    ref_opt = torch.optim.AdamW([{"params": matrices, "weight_decay": 0.1}, {"params": vectors, "weight_decay": 0.0}],
                                lr=3e-3, betas=(0.9, 0.95), foreach=False)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):  # the same gradients for both (training itself would amplify rounding)
        for a, b in zip(model.parameters(), oracle.parameters(), strict=True):
            a.grad = torch.randn(a.shape, generator=g)
            b.grad = a.grad.clone()
        opt.step()
        ref_opt.step()
    for a, b, a0 in zip(model.parameters(), oracle.parameters(), start, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
        assert (a - a0).abs().max() > 1e-3  # and every tensor moved


def test_a_few_training_steps_reduce_the_loss():
    model = _tiny(lr=3e-3)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 23, (4, 12), generator=g)
    y = torch.roll(x, -1, dims=1)
    opt = model.configure_optimizers()["optimizer"]
    first = model.loss(model(x), y).item()
    for _ in range(30):
        loss = model.loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.dtype == torch.float32
    assert model.loss(model(x), y).item() < 0.7 * first


def test_loss_is_float32_under_cpu_autocast_float16():
    model = _tiny()
    x = torch.randint(0, 23, (2, 12))
    with torch.autocast("cpu", dtype=torch.float16):
        logits = model(x)
        loss = model.loss(logits, torch.roll(x, -1, 1))
    assert logits.dtype == torch.float16 and loss.dtype == torch.float32
    assert torch.isfinite(logits).all() and torch.isfinite(loss)


def test_loss_is_float32_for_a_half_precision_model():
    model = _tiny().half()
    x = torch.randint(0, 23, (2, 12))
    logits = model(x)
    loss = model.loss(logits, torch.roll(x, -1, 1))
    assert logits.dtype == torch.float16 and loss.dtype == torch.float32
    assert torch.isfinite(loss)


def test_linked_attributes_are_init_arguments_and_datamodule_attributes():
    from genlab.data import CharTextDataModule

    params = inspect.signature(GPT.__init__).parameters
    dm = CharTextDataModule(block_size=16, batch_size=2)
    for name in GPT.linked_from_data:
        assert name in params and hasattr(dm, name)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_16_mixed_training_on_gpu_is_finite():
    import lightning as L

    torch.manual_seed(0)
    model = GPT(**TINY)
    x = torch.randint(0, 23, (64, 12))
    data = torch.utils.data.DataLoader(list(zip(x, torch.roll(x, -1, 1), strict=True)), batch_size=8)
    trainer = L.Trainer(
        accelerator="gpu", devices=1, precision="16-mixed", max_steps=20,
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
    )
    trainer.fit(model, data)
    assert torch.isfinite(trainer.callback_metrics["train_loss"])
    model.cuda()
    xb = x[:4].cuda()
    with torch.autocast("cuda", dtype=torch.float16):
        logits = model(xb)
        loss = model.loss(logits, torch.roll(xb, -1, 1))
    assert logits.dtype == torch.float16 and loss.dtype == torch.float32
    assert all(torch.isfinite(p).all() for p in model.parameters())
