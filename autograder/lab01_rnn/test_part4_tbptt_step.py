"""Part 4: tbptt_step(model, batch, hidden) -> (loss, detached new hidden), on LSTM and RNN models;
and, on a GPU, 16-mixed training of the library model built from parts 2-4.

The small model's weights and windows are drawn per submission (``submission.seed``): the losses
and states they are compared with are computed here, on the same ones.
"""
import math
import random

import pytest
import torch

from autograder import kit
from genlab.checks import lab01 as checks
from genlab.checks import lab01_bugs as bugs

NAME = "tbptt_step"
#: The shared ``lightning_fit`` probe's arguments for 16-mixed on a GPU: RNNLanguageModel with the
#: student's LSTMCell, lm_loss and tbptt_step on contiguous streams, clipped as configs/rnn_lm.yaml.
GPU_FIT = {"model": "genlab.models.rnn_lm:RNNLanguageModel", "data": "genlab.data:CharTextDataModule",
           "parts": {"cell": "LSTMCell", "loss_fn": "lm_loss", "step_fn": "tbptt_step"},
           "from_data": {"vocab_size": "vocab_size"},
           "model_kwargs": {"embedding_dim": 32, "hidden_size": 64, "lr": 2e-3},
           "data_kwargs": {"block_size": 32, "batch_size": 8, "mode": "streams", "seed": 0},
           "gradient_clip_val": 1.0, "steps": 20, "seed": 0}


@pytest.fixture(scope="module")
def seen():
    """Observations already made in this grading session (the probe runs 100 steps; run it once)."""
    return {}


def _observe(submission, seen, kind: str):
    """The probe's observations, the reference on this side, and the student's own lm_loss values."""
    seed = random.Random(submission.seed).randrange(2**31)
    key = (kind, seed)
    if key not in seen:
        submission.function(NAME)
        state, windows, loop_windows, sizes = checks.tbptt_case(kind, seed)
        obs = kit.call(submission.probe, "lab01_tbptt", kind=kind, state_dict=state, windows=windows,
                       loop_windows=loop_windows, sizes=sizes, context=f"{NAME} on a small {kind.upper()} model")
        model = bugs.ProbeLM(kind, **sizes)
        model.load_state_dict(state)
        ref = bugs.tbptt_reference(model, windows)
        own = None
        if submission.has("lm_loss"):
            try:
                lm_loss = submission.function("lm_loss")
                own = [float(kit.call(lm_loss, z, y)) for z, (_, y) in zip(ref["logits"], windows, strict=False)]
            except (AssertionError, TypeError, ValueError):
                own = None  # part 3 has its own tests
        seen[key] = (obs, ref, own)
    return seen[key]


@pytest.mark.points(2)
def test_returns_the_loss_and_the_new_state(submission, seen):
    obs, ref, _ = _observe(submission, seen, "lstm")
    if obs.get("error") and obs.get("error_stage") == "window 0":
        kit.fail_if(bugs.name_tbptt_bug(obs, ref), "the first window")
    first = obs["first"]
    if first.get("type") != "tuple2":
        raise AssertionError(f"{NAME} should return (loss, new_hidden), got {first.get('type')}.")
    if not first.get("loss_is_tensor") or first.get("loss_shape") != () or first.get("loss_dtype") != "torch.float32":
        raise AssertionError(f"the loss should be a 0-d float32 tensor, got {first.get('loss_desc')}. "
                             f"{bugs.PART3_NOTE}")
    if not first.get("loss_requires_grad"):
        raise AssertionError(bugs.name_tbptt_bug(obs, ref))
    if first.get("state_count") != 2:
        raise AssertionError(f"for an LSTM new_hidden is the pair (h, c) the model returned; got "
                             f"{first.get('state_count')} tensor(s).")


@pytest.mark.points(2)
@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_each_window_starts_from_the_carried_state(submission, seen, kind):
    """The loss of window k is the model's loss from the state at the end of window k-1."""
    obs, ref, own = _observe(submission, seen, kind)
    hint = bugs.name_tbptt_bug({**obs, "crossed": None, "depths": [], "loop_error": None}, ref, own)
    kit.fail_if(hint, f"four windows in a row ({kind.upper()})")


@pytest.mark.points(2)
@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_no_gradient_crosses_the_truncation_boundary(submission, seen, kind):
    """The gradient of window k+1's loss with respect to window k's inputs is exactly zero."""
    obs, ref, own = _observe(submission, seen, kind)
    if obs.get("error"):
        kit.fail_if(bugs.name_tbptt_bug(obs, ref, own), kind.upper())
    if obs.get("crossed") is None or obs["crossed"] != 0.0:
        kit.fail_if(bugs.name_tbptt_bug({**obs, "states": [], "losses": obs["losses"]}, ref, own) or
                    "gradient crosses the truncation boundary: detach the state you carry.", kind.upper())


@pytest.mark.points(2)
def test_the_graph_does_not_grow_over_a_hundred_steps(submission, seen):
    """100 training steps (backward and an SGD step each): no error, bounded grad_fn depth."""
    for kind in ("lstm", "rnn"):
        obs, ref, own = _observe(submission, seen, kind)
        if obs.get("error"):
            kit.fail_if(bugs.name_tbptt_bug(obs, ref, own), kind.upper())
        depths = obs.get("depths") or []
        if obs.get("loop_error") or len(depths) < 100 or depths[-1] > max(depths[:2]):
            kit.fail_if(bugs.name_tbptt_bug({**obs, "crossed": 0.0}, ref, own) or
                        "the carried state's graph grows from step to step: detach it.", f"100 steps ({kind.upper()})")


@pytest.mark.points(2)
def test_the_state_is_really_carried(submission, seen):
    """A step that resets the state every window, or never advances it, loses these points."""
    obs, ref, own = _observe(submission, seen, "lstm")
    if obs.get("error"):
        kit.fail_if(bugs.name_tbptt_bug(obs, ref, own), "LSTM")
    losses = [float(v) for v in obs["losses"]]
    fresh = [float(v) for v in ref["fresh_losses"]]
    if len(losses) != len(fresh):
        raise AssertionError(f"{NAME} did not return a loss for every window.")
    reset = all(abs(a - b) <= 1e-5 * (1 + abs(b)) for a, b in zip(losses[1:], fresh[1:], strict=False))
    if reset:
        raise AssertionError("the state is not carried: every window starts from zeros (hidden=None), so the model "
                             "forgets the text it just read. Pass the incoming hidden to the model.")
    states = obs["states"]
    if len(states) >= 2 and all(torch.equal(a, b) for a, b in zip(states[0], states[1], strict=False)):
        raise AssertionError("the returned state does not change from window to window: return the model's NEW "
                             "final state, not the one you were given.")
    kit.fail_if(bugs.name_tbptt_bug({**obs, "crossed": None, "depths": [], "loop_error": None}, ref, own), "LSTM")


@pytest.mark.gpu
@pytest.mark.points(4)
def test_the_model_trains_with_16_mixed_on_a_gpu(submission):
    """20 Lightning steps of RNNLanguageModel with your LSTMCell, lm_loss and tbptt_step, precision="16-mixed"."""
    for name in ("LSTMCell", "lm_loss", "tbptt_step"):
        submission.function(name)
    data = kit.call(submission.probe, "lightning_fit", **GPU_FIT, context="16-mixed training on the GPU")
    if data.get("error"):
        raise AssertionError(f"training with your parts under precision='16-mixed' raised {data['error']}")
    losses = data.get("losses", [])
    if len(losses) < 20 or not all(isinstance(x, float) and math.isfinite(x) for x in losses):
        bad = next((i for i, x in enumerate(losses) if not (isinstance(x, float) and math.isfinite(x))), len(losses))
        raise AssertionError(f"under 16-mixed the training loss became inf/NaN at step {bad} (of {len(losses)}): "
                             "compute the loss from float32 logits (logits.float()).")
    if not data.get("params_finite"):
        raise AssertionError("under 16-mixed some parameters became inf/NaN after 20 steps.")
    if data.get("loss_dtype") != "torch.float32":
        raise AssertionError(f"under 16-mixed the loss should be float32, got {data.get('loss_dtype')}.")
