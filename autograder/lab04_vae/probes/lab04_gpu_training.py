"""Probe: train genlab's VAE with the student's three loss parts under Lightning precision="16-mixed".

Needs CUDA. Records every training loss, the dtypes of the decoder's logits and of the loss,
and whether the parameters stay finite. Returns plain data.
"""
import math


def _get(ns, name):
    return ns[name] if isinstance(ns, dict) else getattr(ns, name)


def run(ns, steps=20, seed=0):
    import lightning as L
    import torch

    from genlab.data import DigitsDataModule
    from genlab.models.vae import VAE

    if not torch.cuda.is_available():
        return {"error": "CUDA is not available in the worker"}
    record = {"logits_dtype": None, "loss_dtype": None, "losses": []}

    class RecordingVAE(VAE):
        def training_step(self, batch, batch_idx):
            x = self.prepare(batch[0])
            x_logits, mu, logvar = self(x)
            loss = self.elbo_loss(x, x_logits, mu, logvar, beta=1.0)
            if record["logits_dtype"] is None:
                record["logits_dtype"] = str(x_logits.dtype)
                record["loss_dtype"] = str(loss.dtype)
            record["losses"].append(float(loss.detach()))
            return loss

    try:
        L.seed_everything(seed, verbose=False)
        data = DigitsDataModule(batch_size=64, seed=seed)
        model = RecordingVAE(image_shape=data.image_shape, lr=1e-3,
                             reparameterize=_get(ns, "reparameterize"), kl_divergence=_get(ns, "kl_divergence"),
                             elbo_loss=_get(ns, "elbo_loss"))
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
