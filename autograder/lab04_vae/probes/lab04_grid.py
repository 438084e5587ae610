"""Probe: call the student's latent_grid with a linear decoder that records every z it is given.

``run(ns, n, weight, bias, image_shape, quantile_range=None)``: the decoder maps ``z (M, 2)``
float32 to logits ``z @ weight.T + bias`` viewed as ``(M, *image_shape)``. Returns
``{"error": str | None, "grid": tensor | None, "grid_type": str, "calls": [z tensors]}``.
"""
import torch
from torch import nn


class RecordingDecoder(nn.Module):
    def __init__(self, weight, bias, image_shape):
        super().__init__()
        self.linear = nn.Linear(2, weight.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            self.linear.bias.copy_(bias)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.calls = []

    def forward(self, z):
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[-1] != 2:
            got = f"shape {tuple(z.shape)}" if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"the decoder takes a batch of 2-D latents, shape (M, 2); it got {got}. "
                             "Stack the grid's points into an (n*n, 2) tensor.")
        if z.dtype != torch.float32:
            raise ValueError(f"the decoder's weights are float32 but z is {z.dtype}; make z float32 (.float()).")
        self.calls.append(z.detach().clone())
        return self.linear(z).view(z.shape[0], *self.image_shape)


def run(ns, n, weight, bias, image_shape, quantile_range=None):
    fn = ns["latent_grid"] if isinstance(ns, dict) else ns.latent_grid
    decoder = RecordingDecoder(weight, bias, image_shape)
    args = (decoder, n) if quantile_range is None else (decoder, n, tuple(quantile_range))
    try:
        grid = fn(*args)
    except Exception as exc:  # noqa: BLE001 - reported to the test as data
        text = str(exc).strip()
        return {"error": f"{type(exc).__name__}: {text}" if text else type(exc).__name__,
                "grid": None, "grid_type": "", "calls": decoder.calls}
    is_tensor = isinstance(grid, torch.Tensor)
    return {"error": None, "grid": grid.detach().cpu() if is_tensor else None,
            "grid_type": "tensor" if is_tensor else type(grid).__name__, "calls": decoder.calls}
