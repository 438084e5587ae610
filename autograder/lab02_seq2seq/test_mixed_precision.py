"""Mixed precision: your attention under float16 autocast on a CPU, your parts inside genlab's
Seq2SeqAttention under bf16-mixed on a CPU, and 20 steps of 16-mixed on a GPU (gpu marker).
The attention's weights and inputs are drawn per submission (``submission.seed``)."""
import math
import random

import pytest
import torch

from autograder import kit
from genlab.checks import lab02_bugs as bugs

OVERFLOW_HINT = (" In float16 the most negative number is -65504, so a literal like -1e9 cannot be stored: fill masked "
                 "scores with torch.finfo(scores.dtype).min, which is right in every dtype.")
MODEL = "genlab.models.seq2seq:Seq2SeqAttention"
DATA = "genlab.data:DatesDataModule"
FROM_DATA = {n: n for n in ("src_vocab_size", "tgt_vocab_size", "pad_id", "bos_id", "eos_id")}
# The model runs the student's loop and loss too (genlab's are stubs in the worker's library).
PARTS = {"attention": "AdditiveAttention", "decoder_step": "decoder_step", "teacher_forcing": "teacher_forcing",
         "sequence_loss": "sequence_loss"}


def _hint(error: str) -> str:
    return OVERFLOW_HINT if "overflow" in error or "Half" in error else ""


@pytest.mark.points(2)
def test_attention_under_float16_autocast_on_cpu(submission):
    """Inside torch.autocast("cpu", dtype=torch.float16), as under mixed-precision training."""
    g = torch.Generator().manual_seed(random.Random(submission.seed * 1000).randrange(2**31))
    state = {"W.weight": torch.randn(5, 6, generator=g) * 0.6, "U.weight": torch.randn(5, 8, generator=g) * 0.6,
             "v.weight": torch.randn(1, 5, generator=g)}
    attn = kit.call(submission.function("AdditiveAttention"), 6, 8, 5, context="AdditiveAttention(6, 8, 5)")
    kit.call(attn.load_state_dict, state, context="loading W, U and v into AdditiveAttention(6, 8, 5)")
    query, keys = torch.randn(3, 6, generator=g), torch.randn(3, 7, 8, generator=g)
    mask = torch.arange(7)[None, :] < torch.tensor([7, 3, 1])[:, None]
    data = submission.probe("autocast", fn=attn, args=[query, keys, keys, mask], device="cpu", dtype="float16")
    if not data["finite"]:
        raise AssertionError("under float16 autocast the context or the weights contain inf/NaN." + OVERFLOW_HINT)
    context, weights = data["outputs"][:2]
    want_c, _ = bugs.additive_formula(state, query, keys, keys, mask)
    if bool((weights.masked_select(~mask) != 0).any()):
        raise AssertionError("under float16 autocast padded positions must still get weight exactly 0." + OVERFLOW_HINT)
    kit.expect_close(context, want_c.float(), "the context under float16 autocast", atol=3e-2, rtol=3e-2,
                     hint="It should equal the float32 result up to float16 rounding. If part 2's tests fail, fix "
                          "those first.")


def _fit(submission, accelerator, precision, steps):
    return submission.probe(
        "lightning_fit", model=MODEL, data=DATA, parts=PARTS, from_data=FROM_DATA, steps=steps, seed=0,
        accelerator=accelerator, precision=precision,
        model_kwargs={"emb_size": 16, "hidden_size": 32, "decoder_size": 48, "attention_size": 24, "lr": 3e-3},
        data_kwargs={"n_train": 512, "n_val": 32, "n_test": 32, "batch_size": 32})


def _check_run(data, where, steps):
    if data.get("error"):
        raise AssertionError(f"training Seq2SeqAttention with your AdditiveAttention, decoder_step, teacher_forcing "
                             f"and sequence_loss {where} raised "
                             f"{data['error']}.{_hint(data['error'])}")
    losses = data.get("losses", [])
    bad = next((i for i, x in enumerate(losses) if not (isinstance(x, float) and math.isfinite(x))), None)
    if len(losses) < steps or bad is not None:
        raise AssertionError(f"{where} the training loss became inf/NaN at step {bad} (of {len(losses)})."
                             + OVERFLOW_HINT)
    if not data.get("params_finite"):
        raise AssertionError(f"{where} some parameters became inf/NaN.")
    if data.get("loss_dtype") != "torch.float32":
        raise AssertionError(f"{where} the loss should be float32, got {data.get('loss_dtype')}: sequence_loss must "
                             "compute cross-entropy on logits.float().")


@pytest.mark.points(2)
def test_your_parts_train_inside_the_model_on_cpu(submission):
    """5 Lightning steps of Seq2SeqAttention built with your four training parts, bf16-mixed."""
    _check_run(_fit(submission, "cpu", "bf16-mixed", 5), "under bf16-mixed on a CPU", 5)


@pytest.mark.gpu
@pytest.mark.points(3)
def test_16_mixed_on_gpu(submission):
    """20 steps of precision="16-mixed" on a GPU: finite losses and parameters, float16 logits, float32 loss."""
    data = _fit(submission, "gpu", "16-mixed", 20)
    _check_run(data, "under 16-mixed on a GPU", 20)
    if data.get("output_dtype") != "torch.float16":
        raise AssertionError(f"inside autocast the logits should be float16, got {data.get('output_dtype')}.")
