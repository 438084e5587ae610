"""Mutants (realistic bugs), correct variants and cheats of lab 01's graded cells.

Each case rewrites one cell of ``solutions/01_rnn/rnn.ipynb`` (found by its nbgrader
``grade_id``); ``tests/labs/`` grades them all and runs their public checks. The notebook
itself is built by ``tests/lab01/build_notebook.py``.
"""
from __future__ import annotations

import nbformat

from autograder.runner.lab import REPO_ROOT
from tests.labs.harness import Cheat, Mutant, Variant

STREAMS, LSTM, LOSS, STEP, SAMPLE = "stream_batches", "lstm_cell", "lm_loss", "tbptt_step", "sample_next"
STREAMS_T, LSTM_T, LOSS_T = "part1_stream_batches", "part2_lstm_cell", "part3_lm_loss"
STEP_T, SAMPLE_T = "part4_tbptt_step", "part5_sample_next"

INPUTS = "inputs = ids[: batch_size * L].view(batch_size, L)"
TARGETS = "targets = ids[1 : batch_size * L + 1].view(batch_size, L)"


def _given_lstm_start() -> str:
    """The LSTMCell cell as the release gives it, up to ``forward``: the class line, its docstring
    and ``__init__`` with nn.LSTMCell's parameters. A case that rewrites the cell adds its own
    methods after it."""
    notebook = nbformat.read(REPO_ROOT / "solutions" / "01_rnn" / "rnn.ipynb", as_version=4)
    source = next(c.source for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == LSTM)
    return "\n" + source[:source.index("    def forward")].rstrip() + "\n"


LSTM_GIVEN = _given_lstm_start()
CROSS_ENTROPY = "F.cross_entropy(logits.float().reshape(B * T, V), targets.reshape(B * T))"

MUTANTS = [
    # --- part 1: stream_batches
    Mutant("streams_target_not_shifted", STREAMS, ((TARGETS, "targets = ids[: batch_size * L].view(batch_size, L)"),),
           (STREAMS_T,), ("not shifted",)),
    Mutant("streams_target_shifted_twice", STREAMS,
           (("L = (len(ids) - 1) // batch_size", "L = (len(ids) - 2) // batch_size"),
            (TARGETS, "targets = ids[2 : batch_size * L + 2].view(batch_size, L)")),
           (STREAMS_T,), ("two positions", "shift once")),
    Mutant("streams_strided_rows", STREAMS,
           ((INPUTS, "inputs = ids[: batch_size * L].view(L, batch_size).T"),
            (TARGETS, "targets = ids[1 : batch_size * L + 1].view(L, batch_size).T")),
           (STREAMS_T,), ("every B-th", "contiguous")),
    Mutant("streams_length_n_over_b", STREAMS, (("L = (len(ids) - 1) // batch_size", "L = len(ids) // batch_size"),),
           (STREAMS_T,), ("(N - 1) // B",)),
    Mutant("streams_overlapping_windows", STREAMS,
           (("for start in range(0, L, seq_len):", "for start in range(0, L - seq_len + 1):"),),
           (STREAMS_T,), ("overlap",)),
    Mutant("streams_drop_last_window", STREAMS,
           (("for start in range(0, L, seq_len):", "for start in range(0, L - seq_len + 1, seq_len):"),),
           (STREAMS_T,), ("last", "shorter")),
    # a list built in a default argument: every call appends to the same list (genlab.checks.contract)
    Mutant("streams_default_list_argument", STREAMS,
           (("def stream_batches(ids, batch_size, seq_len):", "def stream_batches(ids, batch_size, seq_len, windows=[]):"),
            ("        yield inputs[:, start : start + seq_len], targets[:, start : start + seq_len]\n",
             "        windows.append((inputs[:, start : start + seq_len], targets[:, start : start + seq_len]))\n"
             "    return windows\n")),
           (STREAMS_T,), ("keeps state between calls",)),
    # --- part 2: the LSTM cell
    Mutant("lstm_forget_input_swapped", LSTM, (("c_new = f * c + i * g", "c_new = i * c + f * g"),),
           (LSTM_T,), ("forget",)),
    Mutant("lstm_sigmoid_candidate", LSTM, (("g = torch.tanh(z_g)", "g = torch.sigmoid(z_g)"),),
           (LSTM_T,), ("candidate",)),
    Mutant("lstm_tanh_sigmoid_swapped", LSTM,
           (("i = torch.sigmoid(z_i)", "i = torch.tanh(z_i)"), ("f = torch.sigmoid(z_f)", "f = torch.tanh(z_f)"),
            ("g = torch.tanh(z_g)", "g = torch.sigmoid(z_g)"), ("o = torch.sigmoid(z_o)", "o = torch.tanh(z_o)")),
           (LSTM_T,), ("swapped",)),
    Mutant("lstm_no_tanh_on_output", LSTM, (("h_new = o * torch.tanh(c_new)", "h_new = o * c_new"),),
           (LSTM_T,), ("tanh(c')",)),
    Mutant("lstm_h_from_old_cell", LSTM, (("h_new = o * torch.tanh(c_new)", "h_new = o * torch.tanh(c)"),),
           (LSTM_T,), ("NEW cell state",)),
    Mutant("lstm_gate_order_ifog", LSTM, (("z_i, z_f, z_g, z_o = z.chunk(4, dim=1)", "z_i, z_f, z_o, z_g = z.chunk(4, dim=1)"),),
           (LSTM_T,), ("order",)),
    Mutant("lstm_no_hidden_bias", LSTM, ((" + h @ self.weight_hh.T + self.bias_hh", " + h @ self.weight_hh.T"),),
           (LSTM_T,), ("bias_hh",)),
    # promises no value check sees (genlab.checks.contract): the state is an input like x
    Mutant("lstm_detached_state", LSTM,
           ((" + h @ self.weight_hh.T", " + h.detach() @ self.weight_hh.T"),
            ("c_new = f * c + i * g", "c_new = f * c.detach() + i * g")),
           (LSTM_T,), ("no gradient reaches `h`, `c`",)),
    Mutant("lstm_cell_state_updated_in_place", LSTM, (("c_new = f * c + i * g", "c_new = c.mul_(f).add_(i * g)"),),
           (LSTM_T,), ("changed its input `c` in place",)),
    # --- part 3: the loss
    Mutant("loss_summed", LOSS, ((CROSS_ENTROPY, CROSS_ENTROPY[:-1] + ', reduction="sum")'),), (LOSS_T,), ("summed",)),
    Mutant("loss_mean_over_batch_only", LOSS, ((CROSS_ENTROPY, CROSS_ENTROPY[:-1] + ', reduction="sum") / B'),),
           (LOSS_T,), ("only over the batch",)),
    Mutant("loss_no_float32_cast", LOSS, (("logits.float().reshape", "logits.reshape"),), (LOSS_T,), ("float32",)),
    Mutant("loss_softmax_first", LOSS, (("logits.float().reshape(B * T, V)", "torch.softmax(logits.float(), -1).reshape(B * T, V)"),),
           (LOSS_T,), ("softmax was applied",)),
    Mutant("loss_targets_shifted_again", LOSS,
           ((CROSS_ENTROPY, "F.cross_entropy(logits[:, :-1].float().reshape(-1, V), targets[:, 1:].reshape(-1))"),),
           (LOSS_T,), ("shifted once more",)),
    Mutant("loss_stabilised_in_place", LOSS,
           ((f"return {CROSS_ENTROPY}",
             "logits = logits.float()\n    logits -= logits.max(dim=-1, keepdim=True).values  # for stability\n"
             "    return F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))"),),
           (LOSS_T,), ("changed its input `logits` in place",)),
    Mutant("loss_log_of_softmax_in_half", LOSS,
           ((f"return {CROSS_ENTROPY}",
             "probs = torch.softmax(logits, dim=-1)\n    picked = probs.gather(-1, targets.unsqueeze(-1))\n"
             "    return -torch.log(picked).mean().float()"),),
           (LOSS_T,), ("log(0)", "inf or NaN")),
    # --- part 4: truncated BPTT
    Mutant("step_no_detach", STEP, (("return loss, detach_hidden(new_hidden)", "return loss, new_hidden"),),
           (STEP_T,), ("crosses the truncation boundary", "still attached")),
    Mutant("step_detach_h_only", STEP,
           (("    return tuple(detach_hidden(h) for h in hidden)",
             "    return (hidden[0].detach(),) + tuple(hidden[1:])"),),
           (STEP_T,), ("detached h but not c",)),
    Mutant("step_state_reset_every_batch", STEP, (("logits, new_hidden = model(x, hidden)", "logits, new_hidden = model(x, None)"),),
           (STEP_T,), ("not carried",)),
    Mutant("step_detach_the_loss", STEP, (("loss = lm_loss(logits, y)", "loss = lm_loss(logits.detach(), y)"),),
           (STEP_T,), ("cut from the model",)),
    # --- part 5: sampling
    Mutant("sample_temperature_after_softmax", SAMPLE,
           (("logits = logits.float() / temperature", "logits = logits.float()"),
            ("probs = torch.softmax(logits, dim=-1)\n", "probs = torch.softmax(logits, dim=-1) / temperature\n")),
           (SAMPLE_T,), ("temperature has no effect",)),
    Mutant("sample_top_p_drops_crossing_token", SAMPLE,
           (("remove = mass_before >= top_p", "remove = sorted_probs.cumsum(dim=-1) > top_p"),),
           (SAMPLE_T,), ("crosses",)),
    Mutant("sample_ignores_generator", SAMPLE,
           (("torch.multinomial(probs, num_samples=1, generator=generator)", "torch.multinomial(probs, num_samples=1)"),),
           (SAMPLE_T,), ("generator",)),
    Mutant("sample_divides_by_zero_temperature", SAMPLE,
           (("    if temperature == 0:\n        return logits.argmax(dim=-1)\n", ""),), (SAMPLE_T,), ("argmax",)),
    Mutant("sample_in_place_temperature", SAMPLE,
           (("logits = logits.float() / temperature", "logits = logits.float()\n    logits /= temperature"),),
           (SAMPLE_T,), ("changed its input `logits` in place",)),
    Mutant("sample_leaves_autograd_off", SAMPLE,
           (("    if temperature == 0:\n", "    torch.set_grad_enabled(False)  # sampling needs no gradients\n"
                                          "    if temperature == 0:\n"),),
           (SAMPLE_T,), ("switched off",)),
    Mutant("sample_top_k_off_by_one", SAMPLE,
           (("kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]",
             "kth = torch.sort(logits, dim=-1, descending=True).values[:, top_k : top_k + 1]"),),
           (SAMPLE_T,), ("top-k", "top_k")),
]

VARIANTS = [
    Variant("streams_explicit_indices", STREAMS, r'''
def stream_batches(ids, batch_size, seq_len):
    L = (ids.numel() - 1) // batch_size
    windows = []
    for start in range(0, L, seq_len):
        stop = min(start + seq_len, L)
        x = torch.stack([ids[i * L + start : i * L + stop] for i in range(batch_size)])
        y = torch.stack([ids[i * L + start + 1 : i * L + stop + 1] for i in range(batch_size)])
        windows.append((x, y))
    return windows
''', "a list built with explicit per-stream slices"),
    Variant("streams_zip_of_splits", STREAMS, r'''
def stream_batches(ids, batch_size, seq_len):
    L = (len(ids) - 1) // batch_size
    rows = torch.stack([ids[i * L : i * L + L + 1] for i in range(batch_size)])  # (B, L + 1)
    xs = rows[:, :-1].split(seq_len, dim=1)
    ys = rows[:, 1:].split(seq_len, dim=1)
    return zip(xs, ys)
''', "tensor.split along time, returned as a zip"),
    Variant("lstm_per_gate_linear", LSTM, LSTM_GIVEN + r'''
    def gate(self, k, x, h):
        H = self.hidden_size
        rows = slice(k * H, (k + 1) * H)
        return (F.linear(x, self.weight_ih[rows], self.bias_ih[rows])
                + F.linear(h, self.weight_hh[rows], self.bias_hh[rows]))

    def forward(self, x, state=None):
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        h, c = state
        i = torch.sigmoid(self.gate(0, x, h))
        f = torch.sigmoid(self.gate(1, x, h))
        g = torch.tanh(self.gate(2, x, h))
        o = torch.sigmoid(self.gate(3, x, h))
        c = torch.addcmul(f * c, i, g)
        return o * c.tanh(), c
''', "one F.linear per gate on row slices, addcmul"),
    Variant("lstm_concatenated_input", LSTM, LSTM_GIVEN + r'''
    def forward(self, x, state=None):
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        h, c = state
        W = torch.cat([self.weight_ih, self.weight_hh], dim=1)  # (4H, I + H): one fused matmul
        z = torch.einsum("bk,gk->bg", torch.cat([x, h], dim=1), W) + (self.bias_ih + self.bias_hh)
        H = self.hidden_size
        i, f, o = (torch.sigmoid(z[:, k * H:(k + 1) * H]) for k in (0, 1, 3))
        g = torch.tanh(z[:, 2 * H:3 * H])
        c_new = f * c + i * g
        return o * torch.tanh(c_new), c_new
''', "[x, h] concatenated, one einsum over the stacked weights"),
    Variant("loss_log_softmax_gather", LOSS, r'''
def lm_loss(logits, targets):
    log_probs = torch.log_softmax(logits.to(torch.float32), dim=-1)  # (B, T, V)
    picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    return -picked.mean()
''', "log_softmax and gather, no F.cross_entropy"),
    Variant("loss_nll_per_row", LOSS, r'''
def lm_loss(logits, targets):
    V = logits.size(-1)
    per_token = F.nll_loss(F.log_softmax(logits.float().view(-1, V), dim=1), targets.flatten(), reduction="none")
    return per_token.sum() / targets.numel()
''', "nll_loss with reduction='none', divided by the count"),
    Variant("step_repackage_before", STEP, r'''
def repackage(hidden):
    """Detach a state at the start of a window (the PyTorch word-language-model example's way)."""
    if hidden is None:
        return None
    if isinstance(hidden, torch.Tensor):
        return hidden.detach()
    return tuple(repackage(h) for h in hidden)


def tbptt_step(model, batch, hidden):
    x, y = batch
    hidden = repackage(hidden)
    logits, hidden = model(x, hidden)
    return lm_loss(logits, y), hidden
''', "detaches the incoming state instead of the returned one"),
    Variant("step_loop_over_time", STEP, r'''
def tbptt_step(model, batch, hidden):
    x, y = batch
    outputs = []
    for t in range(x.shape[1]):  # one character at a time, the state carried inside the window
        logits_t, hidden = model(x[:, t : t + 1], hidden)
        outputs.append(logits_t)
    loss = lm_loss(torch.cat(outputs, dim=1), y)
    if isinstance(hidden, tuple):
        return loss, tuple(h.detach() for h in hidden)
    return loss, hidden.detach()
''', "a Python loop over time"),
    Variant("sample_inverse_cdf", SAMPLE, r'''
def sample_next(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    if top_k is not None:
        kth = probs.topk(min(top_k, probs.shape[-1]), dim=-1).values[:, -1:]
        probs = torch.where(probs >= kth, probs, torch.zeros_like(probs))
        probs = probs / probs.sum(-1, keepdim=True)
    if top_p is not None:
        sorted_p, order = probs.sort(dim=-1, descending=True, stable=True)
        keep = (sorted_p.cumsum(-1) - sorted_p) < top_p
        keep_vocab = torch.zeros_like(keep).scatter(-1, order, keep)
        probs = torch.where(keep_vocab, probs, torch.zeros_like(probs))
        probs = probs / probs.sum(-1, keepdim=True)
    u = torch.rand(probs.shape[0], 1, generator=generator, dtype=probs.dtype, device=probs.device)
    cdf = probs.cumsum(-1)
    index = (cdf < u * cdf[:, -1:]).sum(-1)  # the first token whose cdf reaches u
    return index.clamp(max=probs.shape[-1] - 1).long()
''', "inverse-CDF sampling in float64 on probabilities"),
    Variant("sample_gumbel_max_loop", SAMPLE, r'''
def sample_next(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    out = []
    for row in logits:  # one row at a time
        if temperature == 0:
            out.append(int(row.argmax()))
            continue
        z = row.float() / temperature
        if top_k is not None:
            threshold = torch.sort(z, descending=True).values[min(top_k, len(z)) - 1]
            z = torch.where(z >= threshold, z, torch.tensor(float("-inf")))
        if top_p is not None:
            p = torch.softmax(z, -1)
            order = torch.argsort(p, descending=True)
            total, allowed = 0.0, torch.zeros_like(p, dtype=torch.bool)
            for j in order.tolist():
                allowed[j] = True
                total += float(p[j])
                if total >= top_p:
                    break
            z = torch.where(allowed, z, torch.tensor(float("-inf")))
        u = torch.rand(z.shape, generator=generator).clamp_min(1e-12)
        out.append(int(torch.argmax(z - torch.log(-torch.log(u)))))  # the Gumbel-max trick
    return torch.tensor(out, dtype=torch.long)
''', "a Python loop over rows, Gumbel-max"),
]

CHEATS = [
    Cheat("streams_via_genlab", STREAMS, r'''
def stream_batches(ids, batch_size, seq_len):
    from genlab.lm import stream_batches as reference
    return list(reference(ids, batch_size, seq_len))
''', (STREAMS_T,)),
    Cheat("lstm_via_torch", LSTM, r'''
class LSTMCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        inner = nn.LSTMCell(input_size, hidden_size)
        self.weight_ih, self.weight_hh = inner.weight_ih, inner.weight_hh
        self.bias_ih, self.bias_hh = inner.bias_ih, inner.bias_hh

    def forward(self, x, state=None):
        return torch.lstm_cell(x, state, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
''', (LSTM_T,)),
    # the fused kernel under its operator name: the worker's operator watch sees it (lab.toml blocked_ops)
    Cheat("lstm_via_aten_operator", LSTM, LSTM_GIVEN + r'''
    def forward(self, x, state=None):
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        return torch.ops.aten.lstm_cell(x, list(state), self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
''', (LSTM_T,)),
    Cheat("lstm_via_genlab", LSTM, r'''
class LSTMCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        from genlab.nn.rnn import LSTMCell as Reference
        self.input_size, self.hidden_size = input_size, hidden_size
        inner = Reference(input_size, hidden_size)
        self.weight_ih, self.weight_hh = inner.weight_ih, inner.weight_hh
        self.bias_ih, self.bias_hh = inner.bias_ih, inner.bias_hh
        self.inner = [inner]

    def forward(self, x, state=None):
        return self.inner[0](x, state)
''', (LSTM_T,)),
    Cheat("loss_via_genlab", LOSS, r'''
def lm_loss(logits, targets):
    import genlab.lm
    return genlab.lm.lm_loss(logits, targets)
''', (LOSS_T,)),
    Cheat("step_via_genlab", STEP, r'''
def detach_hidden(hidden):
    from genlab.nn.rnn import detach_state
    return detach_state(hidden)


def tbptt_step(model, batch, hidden):
    from genlab.lm import tbptt_step as reference
    return reference(model, batch, hidden)
''', (STEP_T,)),
    Cheat("sample_via_genlab", SAMPLE, r'''
def sample_next(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    from genlab.decoding import sample_next as reference
    return reference(logits, temperature, top_k, top_p, generator)
''', (SAMPLE_T,)),
]
