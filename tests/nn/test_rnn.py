"""genlab.nn.rnn against torch's own recurrent modules and the properties of truncated BPTT."""
import pytest
import torch
from torch import nn

from genlab.nn.rnn import (
    CellStack,
    LSTMCell,
    detach_state,
    grad_fn_depth,
    lstm_gates,
    make_recurrent,
    map_state,
    state_output,
)


def _pair(B, H, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, H, generator=g, dtype=dtype), torch.randn(B, H, generator=g, dtype=dtype)


@pytest.mark.parametrize("n_in, H, B", [(1, 1, 1), (8, 16, 4), (5, 3, 7), (32, 64, 2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lstm_cell_matches_torch_with_the_same_weights(n_in, H, B, dtype):
    ref = nn.LSTMCell(n_in, H).to(dtype)
    cell = LSTMCell(n_in, H).to(dtype)
    cell.load_state_dict(ref.state_dict())
    x = torch.randn(B, n_in, dtype=dtype)
    state = _pair(B, H, dtype=dtype)
    atol = 1e-6 if dtype == torch.float32 else 1e-12
    for got, want in zip(cell(x, state), ref(x, state), strict=False):
        torch.testing.assert_close(got, want, atol=atol, rtol=0)
    for got, want in zip(cell(x), ref(x), strict=False):  # no state: zeros
        torch.testing.assert_close(got, want, atol=atol, rtol=0)


def test_lstm_cell_state_dict_round_trips_with_torch():
    cell = LSTMCell(4, 6)
    assert {k: v.shape for k, v in cell.state_dict().items()} == {k: v.shape for k, v in nn.LSTMCell(4, 6).state_dict().items()}
    ref = nn.LSTMCell(4, 6)
    ref.load_state_dict(cell.state_dict())
    x = torch.randn(3, 4)
    torch.testing.assert_close(ref(x)[0], cell(x)[0])


def test_lstm_cell_gradients_match_torch():
    ref, cell = nn.LSTMCell(5, 7), LSTMCell(5, 7)
    cell.load_state_dict(ref.state_dict())
    x = torch.randn(3, 5, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    h0, c0 = _pair(3, 7, seed=1)
    (cell(x, (h0, c0))[0].square().sum() + cell(x, (h0, c0))[1].sum()).backward()
    (ref(x2, (h0, c0))[0].square().sum() + ref(x2, (h0, c0))[1].sum()).backward()
    torch.testing.assert_close(x.grad, x2.grad)
    for (name, p), (_, q) in zip(cell.named_parameters(), ref.named_parameters(), strict=False):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_lstm_cell_unbatched_and_shape_errors():
    cell = LSTMCell(3, 4)
    h, c = cell(torch.randn(3))
    assert h.shape == c.shape == (4,)
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        cell(torch.randn(2, 5))
    with pytest.raises(ValueError, match="pair"):
        cell(torch.randn(2, 3), torch.zeros(2, 4))


def test_lstm_gates_are_in_range_and_in_torch_order():
    g = torch.Generator().manual_seed(0)
    n_in, H = 3, 5
    w_ih, w_hh, b = torch.randn(4 * H, n_in, generator=g), torch.randn(4 * H, H, generator=g), torch.randn(4 * H, generator=g)
    x, h = torch.randn(2, n_in, generator=g), torch.randn(2, H, generator=g)
    i, f, gg, o = lstm_gates(x, h, w_ih, w_hh, b, None)
    for gate in (i, f, o):
        assert ((gate > 0) & (gate < 1)).all()
    assert (gg.abs() < 1).all()
    z = x @ w_ih.T + h @ w_hh.T + b
    torch.testing.assert_close(f, torch.sigmoid(z[:, H:2 * H]))  # rows H..2H are the forget gate
    torch.testing.assert_close(gg, torch.tanh(z[:, 2 * H:3 * H]))


@pytest.mark.parametrize("cell_class, torch_class, kind", [(nn.LSTMCell, nn.LSTM, "lstm"), (nn.GRUCell, nn.GRU, "gru"),
                                                           (nn.RNNCell, nn.RNN, "rnn")])
def test_cell_stack_matches_torch_multi_layer_module(cell_class, torch_class, kind):
    torch.manual_seed(0)
    stack = CellStack(cell_class, 4, 6, num_layers=2)
    ref = torch_class(4, 6, num_layers=2, batch_first=True)
    for layer in range(2):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(stack.cells[layer], name).data.copy_(getattr(ref, f"{name}_l{layer}"))
    x = torch.randn(3, 9, 4)
    out, state = stack(x)
    want_out, want_state = ref(x)
    torch.testing.assert_close(out, want_out, atol=1e-6, rtol=1e-5)
    for got, want in zip(_as_tuple(state), _as_tuple(want_state), strict=False):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    # carrying the state across two halves equals one pass over the whole sequence
    out1, s1 = stack(x[:, :4])
    out2, s2 = stack(x[:, 4:], s1)
    torch.testing.assert_close(torch.cat([out1, out2], 1), out, atol=1e-6, rtol=1e-5)
    assert make_recurrent(kind, 4, 6).rnn.__class__ is torch_class


def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def test_make_recurrent_with_genlab_cell_equals_fused_lstm():
    torch.manual_seed(1)
    fused = make_recurrent("lstm", 3, 5)
    looped = make_recurrent(LSTMCell, 3, 5)
    looped.cells[0].load_state_dict({k.removesuffix("_l0"): v for k, v in fused.rnn.state_dict().items()})
    x = torch.randn(2, 7, 3)
    (a, (_, ca)), (b, (_, cb)) = fused(x), looped(x)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ca, cb, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="cell must be one of"):
        make_recurrent("transformer", 3, 5)
    with pytest.raises(TypeError, match="callable"):
        make_recurrent(3, 3, 5)


def test_detach_stops_gradients_at_the_truncation_boundary():
    """The gradient with respect to the previous window's inputs is exactly zero after detaching."""
    torch.manual_seed(0)
    rnn = make_recurrent("lstm", 3, 4)
    first = torch.randn(2, 5, 3, requires_grad=True)
    second = torch.randn(2, 5, 3, requires_grad=True)
    _, state = rnn(first)
    out, _ = rnn(second, detach_state(state))
    out.sum().backward()
    assert first.grad is None and second.grad is not None and second.grad.abs().sum() > 0
    first.grad = None
    out, _ = rnn(second, state)  # without the detach the gradient crosses
    out.sum().backward()
    assert first.grad is not None and first.grad.abs().sum() > 0


def test_grad_fn_depth_grows_without_detach_and_stays_bounded_with_it():
    torch.manual_seed(0)
    rnn = make_recurrent(LSTMCell, 2, 3)
    x = torch.randn(1, 4, 2)
    carried, detached, depths = None, None, []
    for _ in range(6):
        _, carried = rnn(x, carried)
        _, detached = rnn(x, detach_state(detached))
        depths.append((grad_fn_depth(carried), grad_fn_depth(detached)))
    grow = [d for d, _ in depths]
    assert grow == sorted(grow) and grow[-1] > 5 * grow[0] / 2
    assert len({d for _, d in depths}) == 1
    assert grad_fn_depth(detach_state(carried)) == 0
    assert grad_fn_depth(None) == 0
    leaf = torch.zeros(3, requires_grad=True)
    assert grad_fn_depth(leaf) == 0 and grad_fn_depth(leaf * 2) == 2
    assert grad_fn_depth((leaf * 2).exp(), limit=1) == 1


def test_grad_fn_depth_handles_a_long_chain_without_recursion():
    x = torch.zeros(1, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 1
    assert grad_fn_depth(y) == 5001


def test_state_helpers():
    h, c = torch.ones(2, 3, requires_grad=True) * 2, torch.ones(2, 3, requires_grad=True) * 3
    out = detach_state((h, c))
    assert isinstance(out, tuple) and all(t.grad_fn is None and not t.requires_grad for t in out)
    assert torch.equal(out[0], h) and state_output((h, c)) is h and state_output(h) is h
    assert map_state(lambda t: t + 1, None) is None
    assert torch.equal(map_state(lambda t: t + 1, [h])[0], h + 1)
    with pytest.raises(TypeError, match="hidden state"):
        detach_state("h")
