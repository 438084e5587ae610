"""Probe: run the student's attention (or multi-head attention) inside CPU float16 autocast.

Runs in the worker beside the submission and returns plain data; the hidden test decides.
"""
import torch


def _get(ns, name):
    return ns[name] if isinstance(ns, dict) else getattr(ns, name)


def run(ns, part="attention", q=None, k=None, v=None, mask=None, state=None, n_heads=None, x=None):
    """part="attention": sdpa(q, k, v, mask) under autocast; part="mha": the student's
    MultiHeadAttention(d, n_heads) loaded with ``state`` on x (self-attention with ``mask``)."""
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            if part == "attention":
                out, weights = _get(ns, "scaled_dot_product_attention")(q, k, v, mask)
            else:
                d = x.shape[-1]
                mha = _get(ns, "MultiHeadAttention")(d, n_heads)
                mha.load_state_dict(state, strict=False)
                out, weights = mha(x, x, x, mask=mask), None
    except Exception as exc:  # noqa: BLE001 - reported to the test as data
        text = str(exc).strip()
        return {"error": f"{type(exc).__name__}: {text}" if text else type(exc).__name__}
    result = {"error": None, "out_dtype": str(out.dtype), "out": out.detach().float()}
    if isinstance(weights, torch.Tensor):
        result["weights_dtype"] = str(weights.dtype)
        result["weights"] = weights.detach().float()
    return result
