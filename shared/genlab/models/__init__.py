"""LightningModules for the labs, and the registry ``genlab fit <name>`` reads.

``REGISTRY[name] = (ModelClass, DataModuleClass)``; each model class names, in
``linked_from_data``, the datamodule attributes the CLI passes to its constructor.
"""
from genlab.data import CharTextDataModule, DatesDataModule
from genlab.models.gpt import GPT, GPTConfig, count_parameters, parameter_breakdown
from genlab.models.transformer_seq2seq import TransformerSeq2Seq

REGISTRY = {
    "gpt": (GPT, CharTextDataModule),
    "transformer": (TransformerSeq2Seq, DatesDataModule),
}

__all__ = ["REGISTRY", "GPT", "GPTConfig", "count_parameters", "parameter_breakdown", "TransformerSeq2Seq"]
