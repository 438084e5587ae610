"""benchmarks/ddp_scaling.py: the two DDP ranks split every global batch of the 1-process run."""
import pytest

from tests.benchmarks._load import load

ddp = load("ddp_scaling")


def test_ranks_split_each_global_batch():
    steps, batch = 5, 8
    single = ddp.rank_indices(1000, steps, batch, rank=0, world=1)
    r0, r1 = (ddp.rank_indices(1000, steps, batch, rank=r, world=2) for r in (0, 1))
    assert len(single) == steps * batch and len(r0) == len(r1) == steps * batch // 2
    for k in range(steps):
        assert r0[k * 4:(k + 1) * 4] + r1[k * 4:(k + 1) * 4] == single[k * batch:(k + 1) * batch]
    assert r0 != r1


def test_batch_must_divide_among_processes():
    with pytest.raises(ValueError, match="divisible"):
        ddp.rank_indices(100, 2, 7, rank=0, world=2)
