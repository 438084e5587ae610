"""genlab.lm: corpus streams, the LM loss and one truncated-BPTT step, against oracles and properties."""
import math

import pytest
import torch
from torch import nn

from genlab.data import CharTextDataModule
from genlab.lm import IGNORE_INDEX, lm_loss, perplexity, stream_batches, tbptt_step
from genlab.nn.rnn import grad_fn_depth, make_recurrent

# ------------------------------------------------------------------ stream_batches

@pytest.mark.parametrize("N, B, T", [(101, 4, 5), (100, 4, 5), (50, 1, 7), (23, 5, 2), (9, 4, 10)])
def test_streams_are_contiguous_and_shifted_by_one(N, B, T):
    ids = torch.arange(1000, 1000 + N)  # id = 1000 + position, so positions are readable
    batches = list(stream_batches(ids, B, T))
    L = (N - 1) // B
    assert sum(x.shape[1] for x, _ in batches) == L
    for k, (x, y) in enumerate(batches):
        assert x.dtype == y.dtype == torch.long and x.shape == y.shape and x.shape[0] == B
        assert torch.equal(y, x + 1)  # the next token of every position
        assert torch.equal(x[:, 0] - 1000, torch.arange(B) * L + k * T)  # row i reads stream i, window k
        if k > 0:
            assert torch.equal(x[:, 0], batches[k - 1][1][:, -1])  # continues where the last window stopped
    expected_widths = [T] * (L // T) + ([L % T] if L % T else [])
    assert [x.shape[1] for x, _ in batches] == expected_widths
    # every input position of every stream is used exactly once
    used = torch.cat([x.reshape(-1) for x, _ in batches]).sort().values - 1000
    assert torch.equal(used, torch.arange(B * L))


def test_streams_equal_the_datamodule_batches():
    dm = CharTextDataModule(block_size=32, batch_size=6, mode="streams")
    dm.setup()
    ids = dm.vocab.encode(dm.text("val"))
    ours = list(stream_batches(ids, 6, 32))
    theirs = list(dm.val_dataloader())
    assert len(theirs) >= 3
    for (x, y), (x2, y2) in zip(ours, theirs, strict=False):  # the datamodule drops the last partial window
        assert torch.equal(x, x2) and torch.equal(y, y2)


def test_streams_do_not_modify_the_input_and_reject_bad_arguments():
    ids = torch.arange(40)
    before = ids.clone()
    assert len(list(stream_batches(ids, 3, 4))) == 4
    assert torch.equal(ids, before)
    with pytest.raises(ValueError, match="too short"):
        list(stream_batches(torch.arange(3), 4, 2))
    with pytest.raises(ValueError, match="1-D"):
        list(stream_batches(torch.arange(12).view(3, 4), 2, 2))
    with pytest.raises(ValueError, match="integer"):
        list(stream_batches(torch.rand(10), 2, 2))
    with pytest.raises(ValueError, match="seq_len"):
        list(stream_batches(torch.arange(10), 2, 0))


# ------------------------------------------------------------------ lm_loss

def _logits(B=3, T=5, V=11, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, V, generator=g) * scale, torch.randint(V, (B, T), generator=g)


def test_lm_loss_is_the_mean_negative_log_likelihood():
    logits, y = _logits()
    want = -torch.log_softmax(logits.double(), -1).gather(-1, y.unsqueeze(-1)).mean()
    got = lm_loss(logits, y)
    assert got.dtype == torch.float32 and got.dim() == 0
    torch.testing.assert_close(got.double(), want, atol=1e-6, rtol=0)
    assert math.isclose(perplexity(got), math.exp(float(want)), rel_tol=1e-5)


def test_lm_loss_of_a_uniform_model_is_log_v_and_its_perplexity_is_v():
    V = 103
    loss = lm_loss(torch.zeros(2, 4, V), torch.randint(V, (2, 4)))
    assert math.isclose(float(loss), math.log(V), rel_tol=1e-6)
    assert math.isclose(perplexity(loss), V, rel_tol=1e-5)
    assert perplexity(1e6) == math.inf


def test_lm_loss_is_float32_for_half_logits_and_under_autocast():
    logits, y = _logits(scale=30.0)
    got = lm_loss(logits.half(), y)
    assert got.dtype == torch.float32 and torch.isfinite(got)
    torch.testing.assert_close(got, lm_loss(logits.half().float(), y))
    layer = nn.Linear(8, 11)
    with torch.autocast("cpu", dtype=torch.float16):
        out = layer(torch.randn(3, 5, 8) * 100)
        assert out.dtype == torch.float16
        loss = lm_loss(out, y)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_lm_loss_ignores_the_ignore_index_and_checks_shapes():
    logits, y = _logits()
    y2 = y.clone()
    y2[:, :2] = IGNORE_INDEX
    want = -torch.log_softmax(logits[:, 2:].double(), -1).gather(-1, y[:, 2:].unsqueeze(-1)).mean()
    torch.testing.assert_close(lm_loss(logits, y2).double(), want, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"\(B, T, V\)"):
        lm_loss(logits.reshape(-1, 11), y.reshape(-1))


# ------------------------------------------------------------------ tbptt_step

class TinyLM(nn.Module):
    def __init__(self, kind="lstm", V=7, H=5):
        super().__init__()
        self.emb, self.rnn, self.head = nn.Embedding(V, 4), make_recurrent(kind, 4, H), nn.Linear(H, V)

    def forward(self, x, hidden=None):
        out, hidden = self.rnn(self.emb(x), hidden)
        return self.head(out), hidden


def _windows(V=7, B=2, T=6, n=3, seed=0):
    ids = torch.randint(V, (B * T * n + 1,), generator=torch.Generator().manual_seed(seed))
    return list(stream_batches(ids, B, T))


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_tbptt_step_returns_the_loss_and_the_detached_final_state(kind):
    torch.manual_seed(0)
    model = TinyLM(kind)
    w0, w1, _ = _windows()
    loss0, h0 = tbptt_step(model, w0, None)
    logits, want_h = model(w0[0])
    torch.testing.assert_close(loss0, lm_loss(logits, w0[1]))
    for got, want in zip(h0 if isinstance(h0, tuple) else (h0,), want_h if isinstance(want_h, tuple) else (want_h,), strict=False):
        torch.testing.assert_close(got, want)
        assert got.grad_fn is None and not got.requires_grad
    loss1, _ = tbptt_step(model, w1, h0)
    torch.testing.assert_close(loss1, lm_loss(model(w1[0], h0)[0], w1[1]))  # the state is really carried
    assert not torch.allclose(loss1, lm_loss(model(w1[0])[0], w1[1]))


def test_no_gradient_crosses_the_truncation_boundary():
    torch.manual_seed(0)
    model = TinyLM("lstm")
    w0, w1, _ = _windows()
    emb_out = []

    def keep(module, inputs, output):
        output.retain_grad()
        emb_out.append(output)

    model.emb.register_forward_hook(keep)
    loss0, h0 = tbptt_step(model, w0, None)
    # even an attached incoming state is cut: pass the raw (attached) state of window 0
    _, attached = model(w0[0])
    loss1, _ = tbptt_step(model, w1, attached)
    loss1.backward()
    assert emb_out[1].grad is None  # the second forward (window 0 again, attached) got no gradient
    assert emb_out[2].grad is not None and emb_out[2].grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())


def test_the_graph_does_not_grow_over_a_hundred_windows():
    torch.manual_seed(0)
    model = TinyLM("lstm")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    windows = _windows(T=4, n=100)
    hidden, depths = None, []
    for w in windows:
        loss, hidden = tbptt_step(model, w, hidden)
        opt.zero_grad()
        loss.backward()
        opt.step()
        depths.append(grad_fn_depth(hidden))
    assert max(depths) == 0
