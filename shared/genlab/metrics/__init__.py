"""Evaluation metrics shared by the labs and the training modules.

One module per task family: ``translation`` (exact match, character accuracy, BLEU through
sacrebleu) and ``coverage`` (mode coverage of 2-D GAN samples).
"""
