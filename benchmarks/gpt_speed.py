"""genlab's GPT against a plain reference GPT: training tokens/s, val loss at equal time, generation.

Three runners train the same GPT (4 layers, 4 heads, 128 wide, block 64, batch 12, same
initial weights, same batches, AdamW lr 2e-3 betas (0.9, 0.95) weight decay 0.1 on matrices,
100 warmup steps then constant, clipping at 1.0), interleaved in chunks in one process so
that load from other processes hits all of them alike:

- ``lightning``: ``genlab.models.GPT`` through ``lightning.Trainer``;
- ``genlab_plain``: the same module in a plain PyTorch loop (its own ``configure_optimizers``);
- ``reference``: a plain GPT written below the way the fastest small implementations write
  it (one fused q/k/v Linear, ``F.scaled_dot_product_attention(is_causal=True)``, tied
  weights, the output layer on the last position only when generating, fused AdamW).

Each gets ``--seconds`` of training time (setup excluded); then all three are scored on the
same validation batches (val loss at equal wall time). Throughput is given both as total
tokens/s and as the median step time (steady state, less sensitive to load spikes). Then generation at batch 1 (``--new-tokens`` tokens, temperature 1,
interleaved rounds): genlab with the KV cache (default window policy, see ``GPT.generate``),
with the cache and the strict sliding window (``keep=block_size``, the reference's windows),
without the cache, and the reference (no cache, crop to the last ``block_size`` tokens).

    python benchmarks/gpt_speed.py            # about 3 minutes on 2 cores
    python benchmarks/gpt_speed.py --long     # 5 minutes of training each, 2000 new tokens
    python benchmarks/gpt_speed.py [--seconds 40] [--chunk 2] [--new-tokens 500] [--rounds 5] [--threads N]

Prints tables and writes runs/bench/gpt_speed.json. Targets: genlab's module at least as fast
as the reference (ratio >= 1.0), Lightning within 5% of the plain loop, cached generation
faster than the reference.
"""
from __future__ import annotations

import os

# Before torch loads OpenMP: idle threads sleep instead of spinning (see gpt_lightning_overhead.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import math
import statistics
import time
from pathlib import Path

import common
import torch
import torch.nn.functional as F
from torch import nn

from genlab.data import CharTextDataModule
from genlab.models import GPT

OUT = Path("runs/bench/gpt_speed.json")
ARCH = dict(block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0)
OPTIM = dict(lr=2e-3, weight_decay=0.1, warmup_steps=100, schedule="constant")
BATCH, CLIP, VAL_BATCHES = 12, 1.0, 50


# ----------------------------------------------------------------- the plain reference
class RefSelfAttention(nn.Module):
    def __init__(self, d: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(d, 3 * d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x):
        B, T, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)  # 3 x (B, T, d)
        q, k, v = (t.view(B, T, self.n_head, d // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, d_h)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, d_h)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, d))  # (B, T, d)


class RefMLP(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.fc, self.proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x)))  # (B, T, d)


class RefBlock(nn.Module):
    def __init__(self, d: int, n_head: int):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(d), RefSelfAttention(d, n_head)
        self.ln2, self.mlp = nn.LayerNorm(d), RefMLP(d)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))  # (B, T, d)
        return x + self.mlp(self.ln2(x))  # (B, T, d)


class RefGPT(nn.Module):
    """Module names follow genlab's state dict, so ``load_state_dict(gpt.state_dict())`` copies the init."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int, **_):
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.blocks = nn.ModuleList(RefBlock(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied

    def forward(self, idx, targets=None):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))  # (B, T, d)
        for block in self.blocks:
            x = block(x)  # (B, T, d)
        x = self.ln_f(x)  # (B, T, d)
        if targets is None:  # generation: the last position only
            return self.lm_head(x[:, -1:])  # (B, 1, V)
        logits = self.lm_head(x)  # (B, T, V)
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1))

    @torch.no_grad()
    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, generator=None):
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.block_size:])[:, -1] / temperature  # (B, V)
            next_id = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)  # (B, 1)
            idx = torch.cat([idx, next_id], dim=1)  # (B, T + 1)
        return idx


def ref_optimizer(model: nn.Module):
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": OPTIM["weight_decay"]},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=OPTIM["lr"], betas=(0.9, 0.95), fused=True)
    warmup = OPTIM["warmup_steps"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
    return optimizer, scheduler


# ------------------------------------------------------------------- generation timing
def time_generation(runners: dict, prompt, new_tokens: int, rounds: int) -> dict:
    """Interleaved rounds, in alternating order; tokens/s from the total time of each runner."""
    seconds = {name: 0.0 for name in runners}
    outputs = {}
    for r in range(rounds):
        order = list(runners.items())
        for name, fn in order if r % 2 == 0 else reversed(order):  # alternate the order: no runner always first
            generator = torch.Generator().manual_seed(r)
            start = time.perf_counter()
            outputs[name] = fn(prompt, new_tokens, generator)
            seconds[name] += time.perf_counter() - start
    return {name: {"seconds": round(s, 3), "tokens_per_s": round(rounds * new_tokens / s, 1)}
            for name, s in seconds.items()}, outputs


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="training time for each runner (default 40)")
    parser.add_argument("--chunk", type=float, default=2.0, help="seconds per interleaved chunk (default 2)")
    parser.add_argument("--new-tokens", type=int, default=500, help="tokens generated per round (default 500)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved generation rounds (default 5)")
    parser.add_argument("--long", action="store_true", help="300 s of training each, 2000 new tokens, 5 rounds")
    args = common.parse(parser, argv, OUT)
    if args.long:
        args.seconds, args.new_tokens, args.rounds = 300.0, 2000, 5

    datamodules = common.set_up(lambda: CharTextDataModule(block_size=ARCH["block_size"], batch_size=BATCH, seed=0),
                                n=3)
    V = datamodules[0].vocab_size
    genlab_models = common.twins(lambda: GPT(V, **ARCH, **OPTIM))
    reference = RefGPT(V, **ARCH)
    reference.load_state_dict(genlab_models[0].state_dict())  # the same initial weights
    same_init = all(torch.equal(a, b) for a, b in zip(genlab_models[0].state_dict().values(),
                                                      reference.state_dict().values(), strict=True))
    assert same_init

    # each runner's fp32 loss; a plain loop's step: forward, loss, backward, clip, optimizer step, LR step
    loss_fns = {"lightning": lambda x, y, m=genlab_models[0]: m.loss(m(x), y),
                "genlab_plain": lambda x, y, m=genlab_models[1]: m.loss(m(x), y),
                "reference": lambda x, y: reference(x, y)}
    genlab_plain = common.PlainLoop(genlab_models[1], *common.optimizer_and_scheduler(genlab_models[1]),
                                    lambda batch: loss_fns["genlab_plain"](*batch),
                                    common.forever(datamodules[1].train_dataloader()), clip=CLIP)
    ref_plain = common.PlainLoop(reference, *ref_optimizer(reference), lambda batch: loss_fns["reference"](*batch),
                                 common.forever(datamodules[2].train_dataloader()), clip=CLIP)
    interleave = common.Interleave([genlab_plain, ref_plain], args.seconds, args.chunk)
    trainer = common.quiet_trainer(max_epochs=-1, max_steps=-1, gradient_clip_val=CLIP, limit_val_batches=0,
                                   num_sanity_val_steps=0, callbacks=[interleave])
    wall = time.perf_counter()
    trainer.fit(genlab_models[0], datamodules[0])
    interleave.finish()  # the plain loops' share
    wall = time.perf_counter() - wall

    tokens_per_step = BATCH * ARCH["block_size"]
    rows = {}
    for name, model, runner in (("lightning", genlab_models[0], interleave),
                                ("genlab_plain", genlab_models[1], genlab_plain),
                                ("reference", reference, ref_plain)):
        rows[name] = {"steps": runner.steps, "seconds": round(runner.seconds, 2),
                      "tokens_per_s": round(runner.steps * tokens_per_step / runner.seconds, 1),
                      "median_step_ms": round(1e3 * statistics.median(runner.step_times), 3),
                      "val_loss": round(common.mean_loss(loss_fns[name], model, datamodules[0].val_dataloader(),
                                                         VAL_BATCHES), 4)}
    for r in rows.values():
        r["vs_reference"] = round(r["tokens_per_s"] / rows["reference"]["tokens_per_s"], 3)
        r["vs_reference_median"] = round(rows["reference"]["median_step_ms"] / r["median_step_ms"], 3)

    # generation, batch 1, from a one-character prompt
    model = genlab_models[0].eval()
    reference.eval()
    prompt = torch.zeros(1, 1, dtype=torch.long)
    block = ARCH["block_size"]
    gen, outputs = time_generation({
        "genlab_cache": lambda p, n, g: model.generate(p, n, generator=g),
        "genlab_cache_sliding": lambda p, n, g: model.generate(p, n, generator=g, keep=block),
        "genlab_no_cache": lambda p, n, g: model.generate(p, n, generator=g, use_cache=False),
        "reference": lambda p, n, g: reference.generate(p, n, generator=g),
    }, prompt, args.new_tokens, args.rounds)
    for r in gen.values():
        r["vs_reference"] = round(r["tokens_per_s"] / gen["reference"]["tokens_per_s"], 3)
    # the same windows and weights give the same tokens: genlab's sliding window against the reference
    reference.load_state_dict(model.state_dict())
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    n_check = min(args.new_tokens, 200)
    same_tokens = torch.equal(model.generate(prompt, n_check, generator=g1, keep=block),
                              reference.generate(prompt, n_check, generator=g2))

    result = {
        "benchmark": "gpt_speed",
        "config": {**ARCH, **OPTIM, "batch_size": BATCH, "clip": CLIP, "seconds": args.seconds,
                   "chunk": args.chunk, "new_tokens": args.new_tokens, "rounds": args.rounds,
                   "threads": torch.get_num_threads(), "val_batches": VAL_BATCHES},
        "training": rows,
        "lightning_overhead": round(1.0 - rows["lightning"]["tokens_per_s"] / rows["genlab_plain"]["tokens_per_s"], 4),
        "generation": gen,
        "generation_same_tokens_as_reference": same_tokens,
        "meets_target": bool(rows["genlab_plain"]["vs_reference"] >= 1.0 and gen["genlab_cache"]["vs_reference"] > 1.0),
        "wall_seconds": round(wall, 1),
        "machine": common.machine("python", "torch", "lightning", "cpu", "load_average"),
    }
    print(f"GPT 4L/4H/128d, block 64, batch 12, {args.seconds:.0f} s each, interleaved in {args.chunk:.0f} s chunks, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    print(f"{'training':<14} {'steps':>6} {'seconds':>8} {'tokens/s':>9} {'vs ref':>7} "
          f"{'median step ms':>15} {'vs ref':>7} {'val_loss':>9}")
    for name, r in rows.items():
        print(f"{name:<14} {r['steps']:>6} {r['seconds']:>8.1f} {r['tokens_per_s']:>9.0f} {r['vs_reference']:>7.3f} "
              f"{r['median_step_ms']:>15.2f} {r['vs_reference_median']:>7.3f} {r['val_loss']:>9.4f}")
    print(f"Lightning overhead over genlab's plain loop: {100 * result['lightning_overhead']:.1f}%")
    print(f"\ngeneration, batch 1, {args.new_tokens} new tokens x {args.rounds} rounds")
    print(f"{'generation':<22} {'seconds':>8} {'tokens/s':>9} {'vs ref':>7}")
    for name, r in gen.items():
        print(f"{name:<22} {r['seconds']:>8.2f} {r['tokens_per_s']:>9.0f} {r['vs_reference']:>7.3f}")
    print(f"genlab (keep=block_size) and the reference sample the same {n_check} tokens from the same weights: "
          f"{same_tokens}")
    if not all(math.isfinite(r["val_loss"]) for r in rows.values()):
        print("warning: non-finite validation loss")
    return common.write_report(result, args.out)


if __name__ == "__main__":
    main()
