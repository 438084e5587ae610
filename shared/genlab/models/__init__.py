"""LightningModules for the labs, one module per model family.

A model that declares ``fit_name`` is ``genlab fit <fit_name>``; ``genlab.training.registry()``
finds it here, so this file only re-exports the classes for convenience.
"""
from genlab.models.gpt import GPT, GPTConfig, count_parameters, parameter_breakdown
from genlab.models.transformer_seq2seq import TransformerSeq2Seq

__all__ = ["GPT", "GPTConfig", "count_parameters", "parameter_breakdown", "TransformerSeq2Seq"]
