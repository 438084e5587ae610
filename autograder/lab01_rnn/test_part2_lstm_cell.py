"""Part 2: LSTMCell(input_size, hidden_size).forward(x, state) -> (h, c), equal to nn.LSTMCell.

The weights and inputs compared with nn.LSTMCell are drawn per submission (``submission.seed``).
"""
import pytest
import torch
from torch import nn

from autograder import kit
from genlab.checks import lab01_bugs as bugs

NAME = "LSTMCell"




def _torch_cell(n_in, H, seed, dtype=torch.float32, scale=0.7):
    torch.manual_seed(seed)
    ref = nn.LSTMCell(n_in, H)
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.randn_like(p) * scale)
    return ref.to(dtype)


def _student_cell(submission, n_in, H, ref, dtype=torch.float32):
    cell = kit.call(submission.function(NAME), n_in, H, context=f"{NAME}({n_in}, {H})")
    if dtype == torch.float64:
        cell = kit.call(cell.double, context=f"{NAME}({n_in}, {H}).double()")
    have = kit.call(cell.state_dict, context=f"{NAME}({n_in}, {H}).state_dict()")
    want = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in have.items()} if isinstance(have, dict) else {}
    if got != want:
        raise AssertionError(f"{NAME}({n_in}, {H}) should have exactly nn.LSTMCell's parameters {want}; found {got}. "
                             "Keep the parameters created in __init__.")
    state = {k: v.detach().clone() for k, v in ref.state_dict().items()}
    kit.call(cell.load_state_dict, state, context="loading nn.LSTMCell's weights with load_state_dict",
             hints={"RuntimeError": "keep the four parameters weight_ih, weight_hh, bias_ih, bias_hh created in "
                                    "__init__, with their shapes."})
    return cell, state


def _inputs(B, n_in, H, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, n_in, generator=g, dtype=dtype)
    return x, (torch.randn(B, H, generator=g, dtype=dtype), torch.randn(B, H, generator=g, dtype=dtype))


@pytest.mark.points(1)
@pytest.mark.parametrize("n_in, H, B", [(3, 4, 2), (10, 16, 5), (1, 1, 1), (32, 8, 3)])
def test_matches_nn_lstmcell_with_the_same_weights(submission, n_in, H, B):
    ref = _torch_cell(n_in, H, seed=kit.input_seed(submission, n_in * 100 + H))
    cell, weights = _student_cell(submission, n_in, H, ref)
    x, state = _inputs(B, n_in, H, seed=kit.input_seed(submission, B))
    got = kit.call(cell, x, state, context=f"{NAME}({n_in}, {H}) on x {tuple(x.shape)} with a given (h, c)",
                   hint=bugs.LSTM_SPLIT_HINT)
    kit.fail_if(bugs.name_lstm_bug(got, x, state, weights), f"sizes n_in={n_in}, H={H}, B={B}")
    with torch.no_grad():
        want_h, want_c = ref(x, state)
    kit.expect_close(got[0], want_h, "h compared with nn.LSTMCell", atol=1e-5)
    kit.expect_close(got[1], want_c, "c compared with nn.LSTMCell", atol=1e-5)


@pytest.mark.points(1)
def test_state_none_means_zeros(submission):
    ref = _torch_cell(5, 6, seed=3)
    cell, weights = _student_cell(submission, 5, 6, ref)
    x, _ = _inputs(4, 5, 6, seed=4)
    got = kit.call(cell, x, context=f"{NAME}(5, 6) called with x only (state=None)")
    kit.fail_if(bugs.name_lstm_bug(got, x, None, weights), "state=None (zeros)")


@pytest.mark.points(1)
def test_float64(submission):
    ref = _torch_cell(7, 5, seed=kit.input_seed(submission, 5), dtype=torch.float64)
    cell, weights = _student_cell(submission, 7, 5, ref, dtype=torch.float64)
    x, state = _inputs(3, 7, 5, seed=kit.input_seed(submission, 6), dtype=torch.float64)
    got = kit.call(cell, x, state, context=f"{NAME}(7, 5).double() on float64 inputs")
    kit.fail_if(bugs.name_lstm_bug(got, x, state, weights, atol=1e-10), "float64 inputs")


@pytest.mark.points(2)
def test_gradients_match_nn_lstmcell(submission):
    """Gradients of h and c with respect to x and to every parameter, through the student's cell."""
    n_in, H, B = 4, 6, 3
    ref = _torch_cell(n_in, H, seed=kit.input_seed(submission, 9), scale=0.5)
    cell, weights = _student_cell(submission, n_in, H, ref)
    x, state = _inputs(B, n_in, H, seed=kit.input_seed(submission, 10))
    g = torch.Generator().manual_seed(kit.input_seed(submission, 11))
    for index, name in ((0, "h"), (1, "c")):
        upstream = torch.randn(B, H, generator=g)
        data = kit.call(submission.probe, "gradients", fn=cell, args=(x, state), wrt=[0], output_index=index,
                        grad_output=upstream, context=f"backpropagating through {name}")
        xr = x.clone().requires_grad_(True)
        ref.zero_grad(set_to_none=True)
        out = ref(xr, state)[index]
        out.backward(upstream)
        got_x = data["grads"][0]
        if got_x is None:
            raise AssertionError(f"no gradient reached x through {name}: build the gates from x with differentiable "
                                 "torch operations (no .detach(), .item() or torch.no_grad()).")
        hint = bugs.name_lstm_bug(kit.call(cell, x, state, context=NAME), x, state, weights)
        kit.expect_close(got_x, xr.grad, f"the gradient of {name} with respect to x", atol=1e-5, hint=hint)
        for pname, p in ref.named_parameters():
            got = data["parameter_grads"].get(pname)
            if got is None:
                raise AssertionError(f"no gradient reached {pname} through {name}: use self.{pname} in forward.")
            kit.expect_close(got, p.grad, f"the gradient of {name} with respect to {pname}", atol=1e-5, hint=hint)


@pytest.mark.points(2)
def test_inputs_left_alone_gradients_reach_h_and_c_and_no_state_is_kept(submission):
    """x, h and c come back unchanged (in the worker, on the very tensors passed), gradients reach
    x, h, c and every parameter through h' (no .detach() of the state: the gradient through time
    runs through it), and the same inputs give the same (h', c') after a call on other inputs."""
    ref = _torch_cell(3, 4, seed=12)
    cell, _ = _student_cell(submission, 3, 4, ref)
    x, (h, c) = _inputs(2, 3, 4, seed=13)
    args, what = (x, h, c), f"{NAME}.forward"
    kit.expect_contract(submission, cell, args, what, ("x", "h", "c"), adapter="genlab.checks.lab01:FlatStateCell")
