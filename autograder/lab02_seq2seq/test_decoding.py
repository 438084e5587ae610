"""Part 4: greedy_decode(step, state, bos_id, eos_id, max_len, pad_id=0) -> (B, L) and
beam_search(step, state, bos_id, eos_id, max_len, width, alpha=1.0, pad_id=0) -> (tokens, scores).

The decoders are built in the worker from tensors (probe lab02_decoding): a Markov table whose
best sequence greedy decoding misses, and small random RNNs whose logits depend on the whole
prefix. The answers come from one-example-at-a-time references (genlab.checks.lab02_bugs). The
RNNs' weights and states are drawn per submission (``submission.seed``); the tables are fixed.
The contract tests give the search the same RNN step, built in the worker (probe contract,
``__build__``).
"""
import random

import pytest
import torch

from autograder import kit
from genlab.checks import lab02_bugs as bugs

BOS, EOS, PAD = 1, 2, 0


def _rnn(seed, V=7, H=6, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return {"E": torch.randn(V, H, generator=g), "Wh": torch.randn(H, H, generator=g) / H ** 0.5,
            "O": torch.randn(H, V, generator=g) * scale}


def _rnn_case(submission, k, B, searches, V=7, scale=2.0, tuple_state=False):
    """An RNN and a start state h (B, 6), drawn per submission and redrawn until none of
    ``searches`` ((max_len, width, alpha), width None for greedy) generates <pad> (token 0) as a
    real token (a row is read up to its <eos>, or up to its trailing <pad> when it has none), and
    until the greedy rows of a batch end at different steps, one of them at its <eos> (what tells
    apart stopping at the first <eos> and padding after it)."""
    rng = random.Random(submission.seed * 1000 + k)
    for _ in range(1000):
        params = _rnn(rng.randrange(2**31), V=V, scale=scale)
        h = torch.randn(B, 6, generator=torch.Generator().manual_seed(rng.randrange(2**31)))
        step = _local_step("rnn", params, tuple_state)
        state = (h, torch.zeros(B, 2)) if tuple_state else h
        found = [bugs.greedy_oracle(step, state, BOS, EOS, max_len) if width is None else
                 [q for _, q in bugs.beam_oracle(step, state, BOS, EOS, max_len, width, alpha)]
                 for max_len, width, alpha in searches]
        ragged = all(B == 1 or (len({len(q) for q in seqs}) > 1 and any(EOS in q for q in seqs))
                     for seqs, (_, width, _) in zip(found, searches, strict=True) if width is None)
        if ragged and all(PAD not in seq for seqs in found for seq in seqs):
            return params, h
    raise RuntimeError("no RNN without <pad> outputs drawn")   # a broken test, not the student's fault


def _table(rows, V=8):
    """Log-probabilities from {prev: {next: p}}; the rest of each row spread unevenly (no ties)."""
    table = torch.zeros(V, V, dtype=torch.float64)
    for prev in range(V):
        probs = rows.get(prev, {EOS: 1.0})
        rest = [v for v in range(V) if v not in probs]
        left = max(1.0 - sum(probs.values()), 0.0)
        weights = [1.0 + 0.13 * i for i in range(len(rest))]
        for v in range(V):
            table[prev, v] = probs[v] if v in probs else left * weights[rest.index(v)] / sum(weights)
    return (table + 1e-9).log().float()


def _run(submission, fn, kind, params, state, max_len, width=None, alpha=None, tuple_state=False):
    data = submission.probe("lab02_decoding", fn=fn, kind=kind, params=params, state=state, bos_id=BOS, eos_id=EOS,
                            max_len=max_len, width=width, alpha=alpha, pad_id=PAD, tuple_state=tuple_state)
    if data["error"]:
        raise AssertionError(f"{fn} raised {data['error']}")
    return data["result"]


def _local_step(kind, params, tuple_state=False):
    if kind == "markov":
        return bugs.markov_step(params["table"])
    return bugs.rnn_step(params["E"], params["Wh"], params["O"], tuple_state)


def _greedy_case(submission, seed, B, max_len, tuple_state=False):
    params, h = _rnn_case(submission, seed, B, [(max_len, None, None)])
    got = _run(submission, "greedy_decode", "rnn", params, h, max_len, tuple_state=tuple_state)
    state = (h, torch.zeros(B, 2)) if tuple_state else h
    want = bugs.greedy_oracle(_local_step("rnn", params, tuple_state), state, BOS, EOS, max_len)
    return got, want


@pytest.mark.points(3)
def test_greedy_is_the_argmax_rollout(submission):
    """Long (B, L <= max_len); each row is the argmax rollout up to its first <eos>, then pad_id."""
    for seed, B, max_len in ((0, 5, 9), (1, 1, 4), (2, 3, 12)):
        got, want = _greedy_case(submission, seed, B, max_len)
        kit.fail_if(bugs.name_greedy_bug(got, want, EOS, PAD, max_len), f"greedy_decode (batch of {B}, max_len={max_len})")


@pytest.mark.points(2)
def test_greedy_with_a_tuple_state(submission):
    """The state may be a tuple of tensors (as the seq2seq model's is)."""
    got, want = _greedy_case(submission, 3, 4, 10, tuple_state=True)
    kit.fail_if(bugs.name_greedy_bug(got, want, EOS, PAD, 10), "greedy_decode with a tuple state (h, extra)")


@pytest.mark.points(3)
def test_beam_of_width_one_is_greedy(submission):
    """width=1 returns the greedy sequences."""
    for seed in (4, 5):
        params, h = _rnn_case(submission, seed, 3, [(10, None, None), (10, 1, 1.0)])
        result = _run(submission, "beam_search", "rnn", params, h, 10, width=1, alpha=1.0)
        tokens = kit.expect_tuple(result, 2, "beam_search", ("tokens", "scores"))[0]
        want = bugs.greedy_oracle(_local_step("rnn", params), h, BOS, EOS, 10)
        kit.expect_tensor(tokens, "beam_search's tokens", dtype=torch.long)
        if [bugs._cut(r, EOS, PAD) for r in tokens.tolist()] != want:
            raise AssertionError("with width=1 beam search should return exactly the greedy sequences: keep the one best "
                                 "extension at each step and stop when it ends in <eos>.")


def _beam_case(submission, rows, width, alpha, variants, V=8, max_len=8):
    params = {"table": _table(rows, V)}
    state = torch.zeros(1, 1)
    got = _run(submission, "beam_search", "markov", params, state, max_len, width=width, alpha=alpha)
    step = _local_step("markov", params)
    want = bugs.beam_oracle(step, state, BOS, EOS, max_len, width, alpha)
    alts = {v: bugs.beam_oracle(step, state, BOS, EOS, max_len, width, alpha, v) for v in variants}
    return got, want, alts


@pytest.mark.points(4)
def test_beam_finds_the_sequence_greedy_misses(submission):
    """A model whose most likely first token leads nowhere good: beam search (width 3) finds the better sequence."""
    rows = {BOS: {3: 0.45, 4: 0.35, 5: 0.2}, 3: {EOS: 0.25, 6: 0.28, 7: 0.27}, 4: {EOS: 0.85, 6: 0.1},
            6: {EOS: 0.95}, 7: {EOS: 0.9}}
    got, want, alts = _beam_case(submission, rows, 3, 0.0, ("probabilities", "forget_finished"))
    greedy = bugs.greedy_oracle(_local_step("markov", {"table": _table(rows)}), torch.zeros(1, 1), BOS, EOS, 8)
    assert want[0][1] != greedy[0]  # the case is built so; a broken test if not
    kit.fail_if(bugs.name_beam_bug(got, want, EOS, PAD, alts), "beam_search where greedy decoding is not the best")


@pytest.mark.points(3)
def test_finished_hypotheses_are_kept(submission):
    """A hypothesis that ends early with a good score wins over the ones that carry on."""
    rows = {BOS: {3: 0.55, 4: 0.45}, 3: {5: 0.52, 3: 0.46}, 4: {EOS: 0.88, 5: 0.1}, 5: {EOS: 0.15, 5: 0.83}}
    got, want, alts = _beam_case(submission, rows, 2, 0.0, ("probabilities", "forget_finished"))
    kit.fail_if(bugs.name_beam_bug(got, want, EOS, PAD, alts), "beam_search with an early finished hypothesis")


@pytest.mark.points(3)
def test_length_normalisation(submission):
    """alpha=1 prefers the longer sequence with the better average; alpha=0 the better total."""
    rows = {BOS: {3: 0.52, 4: 0.47}, 3: {EOS: 0.62, 3: 0.37}, 4: {5: 0.92}, 5: {6: 0.91}, 6: {EOS: 0.55}}
    for alpha in (1.0, 0.0):
        got, want, alts = _beam_case(submission, rows, 3, alpha, ("no_length_norm",) if alpha else ())
        kit.fail_if(bugs.name_beam_bug(got, want, EOS, PAD, alts), f"beam_search with alpha={alpha}")


@pytest.mark.points(3)
def test_batched_beam_with_a_recurrent_tuple_state(submission):
    """Several examples at once; the logits depend on the whole prefix, so each survivor needs its own state."""
    for seed, B, width in ((6, 3, 3), (7, 2, 4)):
        params, h = _rnn_case(submission, seed, B, [(7, width, 1.0)], tuple_state=True)
        got = _run(submission, "beam_search", "rnn", params, h, 7, width=width, alpha=1.0, tuple_state=True)
        step, state = _local_step("rnn", params, True), (h, torch.zeros(B, 2))
        want = bugs.beam_oracle(step, state, BOS, EOS, 7, width, 1.0)
        alts = {"probabilities": bugs.beam_oracle(step, state, BOS, EOS, 7, width, 1.0, "probabilities")}
        kit.fail_if(bugs.name_beam_bug(got, want, EOS, PAD, alts),
                    f"beam_search on {B} examples (width {width}) of a recurrent model with a tuple state")


@pytest.mark.points(2)
def test_scores_are_length_normalised_log_probabilities(submission):
    """The returned score is the sequence's total log-probability / len ** alpha (alpha = 0.5 here)."""
    params, h = _rnn_case(submission, 8, 2, [(6, 2, 0.5)], V=6, scale=1.5)
    got = _run(submission, "beam_search", "rnn", params, h, 6, width=2, alpha=0.5)
    step = _local_step("rnn", params)
    want = bugs.beam_oracle(step, h, BOS, EOS, 6, 2, 0.5)
    alts = {v: bugs.beam_oracle(step, h, BOS, EOS, 6, 2, 0.5, v) for v in ("probabilities", "no_length_norm")}
    kit.fail_if(bugs.name_beam_bug(got, want, EOS, PAD, alts), "beam_search's scores (alpha=0.5)")


def _built_step(params):
    """An RNN step as an argument of probe contract: built in the worker, one callable for every call."""
    return {"__build__": "genlab.checks.lab02_bugs:rnn_step", "kwargs": {"E": params["E"], "Wh": params["Wh"],
                                                                          "Wo": params["O"]}}


@pytest.mark.points(1)
def test_greedy_state_left_alone_and_no_state_kept(submission):
    """The state given comes back unchanged (in the worker, on the very tensor passed), the same
    state gives the same tokens after a search from another one, and autograd is left on."""
    params = _rnn(10)
    h = torch.randn(3, 6, generator=torch.Generator().manual_seed(110))
    kit.expect_contract(submission, "greedy_decode", (_built_step(params), h, BOS, EOS, 8), "greedy_decode",
                        names=("step", "state", "bos_id", "eos_id", "max_len"), kwargs={"pad_id": PAD},
                        check_grads=False)


@pytest.mark.points(1)
def test_beam_state_left_alone_and_no_state_kept(submission):
    """The state given comes back unchanged, the same state gives the same tokens and scores after a
    search from another one, and autograd is left on."""
    params = _rnn(11)
    h = torch.randn(2, 6, generator=torch.Generator().manual_seed(111))
    kit.expect_contract(submission, "beam_search", (_built_step(params), h, BOS, EOS, 7, 3, 1.0), "beam_search",
                        names=("step", "state", "bos_id", "eos_id", "max_len", "width", "alpha"),
                        kwargs={"pad_id": PAD}, check_grads=False)
