"""Probe: train a genlab LightningModule built with the student's parts, a few steps, under a
Lightning precision (by default ``"16-mixed"`` on a GPU), and report what happened.

``run(namespace, model, data, parts, model_kwargs=None, data_kwargs=None, from_data=None,
steps=20, seed=0, accelerator="gpu", precision="16-mixed", gradient_clip_val=None)``

* ``model``, ``data``: ``"module:Class"`` of the LightningModule and of its DataModule, e.g.
  ``"genlab.models.gpt:GPT"`` and ``"genlab.data:CharTextDataModule"``;
* ``parts``: ``{constructor argument: notebook name}``, the student's parts the model takes,
  e.g. ``{"attention": "scaled_dot_product_attention"}``;
* ``model_kwargs``, ``data_kwargs``: the other constructor arguments;
* ``from_data``: ``{constructor argument: DataModule attribute}``, e.g.
  ``{"vocab_size": "vocab_size"}``;
* ``gradient_clip_val``: the Trainer's gradient clipping (None: none), e.g. 1.0 as
  ``configs/rnn_lm.yaml`` trains ``RNNLanguageModel``.

Returns ``{"error": None or "Type: message", "losses": [float per step, or "nan"/"inf" as
text], "output_dtype": the dtype of the model's first output tensor in the first training
step (its forward runs under autocast), "loss_dtype": the dtype of the first loss that
``training_step`` returned, "params_finite": bool or None}``, dtypes written like
``"torch.float16"``. Whatever went wrong while building or training is reported in
``"error"``, with what was recorded before it; the verdict is the hidden test's.
"""
import importlib
import math


def _load(ref):
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def _first_tensor(value, torch):
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)):
        for item in value:
            found = _first_tensor(item, torch)
            if found is not None:
                return found
    return None


def run(namespace, model, data, parts, model_kwargs=None, data_kwargs=None, from_data=None,
        steps=20, seed=0, accelerator="gpu", precision="16-mixed", gradient_clip_val=None):
    import lightning as L
    import torch

    record = {"error": None, "losses": [], "output_dtype": None, "loss_dtype": None, "params_finite": None}
    if accelerator == "gpu" and not torch.cuda.is_available():
        return {**record, "error": "CUDA is not available in the worker"}

    class Recorder(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            if isinstance(loss, torch.Tensor):
                if record["loss_dtype"] is None:
                    record["loss_dtype"] = str(loss.dtype)
                value = float(loss.detach())
                record["losses"].append(value if math.isfinite(value) else str(value))

    def on_forward(module, args, output):
        tensor = _first_tensor(output, torch)
        if module.training and record["output_dtype"] is None and tensor is not None:
            record["output_dtype"] = str(tensor.dtype)

    built = None
    try:
        L.seed_everything(seed, verbose=False)
        datamodule = _load(data)(**dict(data_kwargs or {}))
        kwargs = dict(model_kwargs or {})
        kwargs.update({arg: getattr(datamodule, attr) for arg, attr in dict(from_data or {}).items()})
        missing = [name for name in dict(parts).values() if name not in namespace]
        if missing:
            raise NameError(f"the notebook does not define {', '.join(f'`{n}`' for n in missing)}")
        kwargs.update({arg: namespace[name] for arg, name in dict(parts).items()})
        built = _load(model)(**kwargs)
        built.register_forward_hook(on_forward)
        trainer = L.Trainer(max_steps=int(steps), accelerator=accelerator, devices=1, precision=precision,
                            logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                            gradient_clip_val=gradient_clip_val, callbacks=[Recorder()])
        trainer.fit(built, datamodule=datamodule)
    except Exception as exc:  # reported to the test as data
        text = str(exc).strip()
        record["error"] = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if built is not None:
        record["params_finite"] = all(bool(torch.isfinite(p).all()) for p in built.parameters())
    return record
