"""Shared probes run in this process (as the worker runs them): what they report."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from autograder.runner.lab import AUTOGRADER_DIR, SHARED_PROBES
from genlab.nn.attention import scaled_dot_product_attention


def probe(name: str):
    spec = importlib.util.spec_from_file_location(f"probe_{name}", SHARED_PROBES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run


GPT = {"model": "genlab.models.gpt:GPT", "data": "genlab.data:CharTextDataModule",
       "parts": {"attention": "attend"},
       "model_kwargs": {"block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16},
       "data_kwargs": {"block_size": 16, "batch_size": 4}, "from_data": {"vocab_size": "vocab_size"},
       "accelerator": "cpu", "precision": "bf16-mixed", "steps": 2}


@pytest.fixture(scope="module")
def fit():
    return probe("lightning_fit")


def test_lightning_fit_reports_dtypes_losses_and_finiteness(fit):
    data = fit({"attend": scaled_dot_product_attention}, **GPT)
    assert data["error"] is None, data["error"]
    assert data["output_dtype"] == "torch.bfloat16" and data["loss_dtype"] == "torch.float32"
    assert len(data["losses"]) == 2 and all(isinstance(x, float) for x in data["losses"])
    assert data["params_finite"] is True


def test_lightning_fit_reports_what_went_wrong(fit):
    def nan_attention(q, k, v, mask=None):
        out, w = scaled_dot_product_attention(q, k, v, mask)
        return out * float("nan"), w

    def broken_attention(q, k, v, mask=None):
        raise ValueError("masks must be bool")

    data = fit({"attend": nan_attention}, **GPT)
    assert data["error"] is None and data["losses"] == ["nan", "nan"]
    data = fit({"attend": broken_attention}, **GPT)
    assert data["error"] == "ValueError: masks must be bool" and data["losses"] == []
    assert fit({}, **GPT)["error"] == "NameError: the notebook does not define `attend`"


def test_lightning_fit_needs_cuda_for_a_gpu_run(fit, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = fit({"attend": scaled_dot_product_attention}, **{**GPT, "accelerator": "gpu"})
    assert data["error"] == "CUDA is not available in the worker"


def _hidden_test_module(path: str):
    spec = importlib.util.spec_from_file_location(f"hidden_{Path(path).stem}", AUTOGRADER_DIR / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _library_parts(names: dict[str, str]) -> dict:
    from genlab import lm
    from genlab.nn import rnn, vae

    library = {"LSTMCell": rnn.LSTMCell, "lm_loss": lm.lm_loss, "tbptt_step": lm.tbptt_step,
               "reparameterize": vae.reparameterize, "kl_divergence": vae.kl_divergence, "elbo_loss": vae.elbo_loss}
    return {name: library[name] for name in names.values()}


@pytest.mark.parametrize("path", ["lab01_rnn/test_part4_tbptt_step.py", "lab04_vae/test_mixed_precision.py"])
def test_lightning_fit_runs_the_gpu_tests_arguments_on_a_cpu(fit, path):
    """The GPU-only hidden tests of labs 01 and 04 call lightning_fit with their GPU_FIT: the same
    run, on a CPU under bf16-mixed with the library's parts, trains (lab 01's with clipping)."""
    args = _hidden_test_module(path).GPU_FIT
    data = fit(_library_parts(args["parts"]), **{**args, "steps": 3, "accelerator": "cpu", "precision": "bf16-mixed"})
    assert data["error"] is None, data["error"]
    assert len(data["losses"]) == 3 and all(isinstance(x, float) for x in data["losses"])
    assert data["loss_dtype"] == "torch.float32" and data["output_dtype"] == "torch.bfloat16"
    assert data["params_finite"] is True


def test_contract_builds_a_module_argument_once_from_the_library():
    """An argument written {"__build__": ...} is built in the worker with its weights, and every
    call of the contract gets that same object: state kept on it is found; honest use passes."""
    from genlab.checks import contract

    run = probe("contract")
    state = {"weight": torch.randn(2, 3, generator=torch.Generator().manual_seed(0)), "bias": torch.zeros(2)}
    layer = {"__build__": "torch.nn:Linear", "kwargs": {"in_features": 3, "out_features": 2}, "state_dict": state}
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    seen_objects = []

    def apply(module, inputs):
        seen_objects.append(module)
        return module(inputs)

    args = (layer, x)
    seen = run({"apply": apply}, "apply", args=args)
    assert contract.judge(seen, list(args), "apply", ("module", "x")) is None
    assert len({id(m) for m in seen_objects}) == 1 and isinstance(seen_objects[0], torch.nn.Linear)
    assert torch.equal(seen_objects[0].weight, state["weight"]) and not seen_objects[0].training
    assert torch.allclose(seen["first"][0], x @ state["weight"].T)

    def counts_on_the_module(module, inputs):
        module.calls = getattr(module, "calls", 0) + 1
        return module(inputs) * module.calls

    seen = run({"f": counts_on_the_module}, "f", args=args)
    assert "keeps state between calls" in contract.judge(seen, list(args), "f", ("module", "x"))
