"""LightningModules for the labs, one module per model family.

A model that declares ``fit_name`` is ``genlab fit <fit_name>``; ``genlab.training.registry()``
finds it here, so this file only re-exports the classes for convenience.
"""
from genlab.models.gan import GAN, DigitsGAN, discriminator_first_step
from genlab.models.gpt import GPT, GPTConfig, count_parameters, parameter_breakdown
from genlab.models.rnn_lm import RNNLanguageModel, count_rnn_lm_parameters, hidden_size_for_budget
from genlab.models.seq2seq import Seq2SeqAttention
from genlab.models.transformer_seq2seq import TransformerSeq2Seq
from genlab.models.vae import VAE

__all__ = [
    "GAN",
    "DigitsGAN",
    "discriminator_first_step",
    "GPT",
    "GPTConfig",
    "count_parameters",
    "parameter_breakdown",
    "RNNLanguageModel",
    "count_rnn_lm_parameters",
    "hidden_size_for_budget",
    "Seq2SeqAttention",
    "TransformerSeq2Seq",
    "VAE",
]
