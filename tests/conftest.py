"""Project-wide test settings.

GPU tests carry ``@pytest.mark.gpu`` and are skipped cleanly where CUDA is absent (CI never
has a GPU). Figures render off-screen. Each test runs torch on one intra-op thread: the
tensors are tiny, xdist already uses both cores, and OpenMP threads waiting for a busy core
made single ops 10-100x slower.
"""
import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (not available on this runner)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
