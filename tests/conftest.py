"""Project-wide test settings.

GPU tests carry ``@pytest.mark.gpu`` and are skipped cleanly where CUDA is absent (CI never
has a GPU). Figures render off-screen, and threads are capped to the two cores CI has.
"""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (not available on this runner)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
