"""Probe: train genlab's GPT with the student's attention under Lightning precision="16-mixed".

Needs CUDA. Records the dtype of the logits inside autocast, the dtype of the loss, every
training loss, and whether the parameters stay finite. Returns plain data.
"""
import math


def _get(ns, name):
    return ns[name] if isinstance(ns, dict) else getattr(ns, name)


def run(ns, steps=20, seed=0):
    import lightning as L
    import torch

    from genlab.data import CharTextDataModule
    from genlab.models import GPT

    if not torch.cuda.is_available():
        return {"error": "CUDA is not available in the worker"}
    record = {"logits_dtype": None, "loss_dtype": None, "losses": []}

    class RecordingGPT(GPT):
        def training_step(self, batch, batch_idx):
            x, y = batch
            logits = self(x)
            loss = self.loss(logits, y)
            if record["logits_dtype"] is None:
                record["logits_dtype"] = str(logits.dtype)
                record["loss_dtype"] = str(loss.dtype)
            record["losses"].append(float(loss.detach()))
            return loss

    try:
        L.seed_everything(seed, verbose=False)
        data = CharTextDataModule(block_size=32, batch_size=8, seed=seed)
        model = RecordingGPT(vocab_size=data.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=64,
                             lr=1e-3, attention=_get(ns, "scaled_dot_product_attention"))
        trainer = L.Trainer(max_steps=steps, accelerator="gpu", devices=1, precision="16-mixed",
                            logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0)
        trainer.fit(model, datamodule=data)
    except Exception as exc:  # noqa: BLE001 - reported to the test as data
        text = str(exc).strip()
        return {**record, "error": f"{type(exc).__name__}: {text}" if text else type(exc).__name__}
    finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    record.update(error=None, params_finite=finite,
                  losses=[x if math.isfinite(x) else str(x) for x in record["losses"]])
    return record
