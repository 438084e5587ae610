"""Probe: call the student's ``sample_next`` with fresh ``torch.Generator``s.

``calls`` is a list of dicts with ``logits`` and optional ``temperature``, ``top_k``,
``top_p``, ``seed``, ``global_seed`` (the global RNG is reseeded first, to show that the
result does not depend on it). Returns one ``{"error", "samples"}`` per call.
"""


def run(namespace, calls):
    from genlab.checks.lab01 import observe_sampling

    fn = namespace["sample_next"]
    return [observe_sampling(fn, c["logits"], c.get("temperature", 1.0), c.get("top_k"), c.get("top_p"),
                             c.get("seed", 0), c.get("global_seed")) for c in calls]
