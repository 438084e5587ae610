"""One intra-op thread per test: these tensors are tiny, and on a shared 2-core machine
OpenMP threads that spin while waiting for a busy core make each op 10-100x slower."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
