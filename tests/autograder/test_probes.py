"""Shared probes run in this process (as the worker runs them): what they report."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from autograder.runner.lab import SHARED_PROBES
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
