"""Probe: train genlab's RNNLanguageModel built from the student's parts under
Lightning ``precision="16-mixed"`` on a GPU.

The model uses the student's ``LSTMCell`` (run step by step), ``lm_loss`` and ``tbptt_step``
on contiguous streams. Records every training loss and its dtype, the dtype of the logits
inside autocast, and whether the parameters stay finite. Needs CUDA. Returns plain data.
"""
import math


def run(namespace, steps=20, seed=0):
    import lightning as L
    import torch

    from genlab.data import CharTextDataModule
    from genlab.models.rnn_lm import RNNLanguageModel

    if not torch.cuda.is_available():
        return {"error": "CUDA is not available in the worker"}
    record = {"logits_dtype": None, "loss_dtype": None, "losses": []}

    class RecordingLM(RNNLanguageModel):
        def forward(self, x, hidden=None):
            logits, hidden = super().forward(x, hidden)
            if record["logits_dtype"] is None and self.training:
                record["logits_dtype"] = str(logits.dtype)
            return logits, hidden

        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            if record["loss_dtype"] is None:
                record["loss_dtype"] = str(loss.dtype)
            record["losses"].append(float(loss.detach()))
            return loss

    try:
        L.seed_everything(seed, verbose=False)
        data = CharTextDataModule(block_size=32, batch_size=8, mode="streams", seed=seed)
        model = RecordingLM(data.vocab_size, cell=namespace["LSTMCell"], embedding_dim=32, hidden_size=64, lr=2e-3,
                            loss_fn=namespace["lm_loss"], step_fn=namespace["tbptt_step"])
        trainer = L.Trainer(max_steps=steps, accelerator="gpu", devices=1, precision="16-mixed", logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            limit_val_batches=0, num_sanity_val_steps=0, gradient_clip_val=1.0)
        trainer.fit(model, datamodule=data)
    except Exception as exc:  # noqa: BLE001 - reported to the test as data
        text = str(exc).strip()
        return {**record, "error": f"{type(exc).__name__}: {text}" if text else type(exc).__name__}
    finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    record.update(error=None, params_finite=finite,
                  losses=[x if math.isfinite(x) else str(x) for x in record["losses"]])
    return record
