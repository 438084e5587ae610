"""Greedy and beam search against exhaustive enumeration, a one-example-at-a-time reference,
and hand-built models whose best sequence greedy search misses."""
import itertools
import math

import pytest
import torch

from genlab.search import beam_search, greedy_search

BOS, EOS, PAD = 1, 2, 0


def markov_step(table: torch.Tensor):
    """A model whose next-token log-probabilities depend on the previous token only:
    ``table[prev] (V,)``. The state is a dummy (N, 1) tensor."""
    def step(tokens, state):
        return table[tokens], state
    return step


def rnn_step(V=5, H=6, seed=0, scale=2.0):
    """A small random RNN: the logits depend on the whole prefix through the state."""
    g = torch.Generator().manual_seed(seed)
    E, Wh, Wo = (torch.randn(V, H, generator=g), torch.randn(H, H, generator=g) / H ** 0.5,
                 torch.randn(H, V, generator=g) * scale)

    def step(tokens, h):
        h = torch.tanh(E[tokens] + h @ Wh)
        return h @ Wo, h
    return step, H


def _logp(step, state, seq):
    """Total log-probability of ``seq`` (generated tokens) for one example."""
    total, tok = 0.0, torch.tensor([BOS])
    for t in seq:
        logits, state = step(tok, state)
        total += float(torch.log_softmax(logits.double(), -1)[0, t])
        tok = torch.tensor([t])
    return total


def reference_beam(step, state, width, max_len, alpha):
    """The documented algorithm for one example, with Python lists."""
    live = [(0.0, [], state)]
    finished = []
    for _ in range(max_len):
        cands = []
        for score, seq, st in live:
            tok = torch.tensor([seq[-1] if seq else BOS])
            logits, new = step(tok, st)
            logp = torch.log_softmax(logits.double(), -1)[0]
            cands += [(score + float(logp[v]), seq + [v], new) for v in range(logp.shape[0])]
        cands.sort(key=lambda c: -c[0])
        best = cands[:width]
        finished += [(s / len(q) ** alpha, q) for s, q, _ in best if q[-1] == EOS]
        live = [c for c in best if c[1][-1] != EOS]
        if len(finished) >= width or not live:
            break
    if not finished:
        s, q, _ = max(live, key=lambda c: c[0])
        finished = [(s / len(q) ** alpha, q)]
    return max(finished, key=lambda f: f[0])


def _rows(tokens):
    out = []
    for row in tokens.tolist():
        out.append(row[: row.index(EOS) + 1] if EOS in row else [t for t in row if t != PAD])
    return out


def test_greedy_takes_the_argmax_and_pads_after_eos():
    step, H = rnn_step(seed=3)
    state = torch.randn(4, H, generator=torch.Generator().manual_seed(1))
    out = greedy_search(step, state, BOS, EOS, max_len=8, pad_id=PAD)
    assert out.dtype == torch.long and out.shape[0] == 4 and out.shape[1] <= 8
    for b, row in enumerate(out.tolist()):
        tok, st, expect = torch.tensor([BOS]), state[b:b + 1], []
        for _ in range(8):
            logits, st = step(tok, st)
            tok = logits.argmax(-1)
            expect.append(int(tok))
            if expect[-1] == EOS:
                break
        assert row[: len(expect)] == expect
        assert all(t == PAD for t in row[len(expect):])


def test_beam_of_width_one_is_greedy():
    for seed in range(5):
        step, H = rnn_step(seed=seed)
        state = torch.randn(6, H, generator=torch.Generator().manual_seed(seed))
        greedy = greedy_search(step, state, BOS, EOS, 10, PAD)
        beam, _ = beam_search(step, state, BOS, EOS, 10, width=1, pad_id=PAD)
        assert _rows(beam) == _rows(greedy)


@pytest.mark.parametrize("width,alpha", [(2, 1.0), (3, 0.0), (4, 0.7)])
def test_batched_beam_equals_the_one_example_reference(width, alpha):
    step, H = rnn_step(V=6, seed=7)
    state = torch.randn(5, H, generator=torch.Generator().manual_seed(2))
    tokens, scores = beam_search(step, state, BOS, EOS, 7, width=width, alpha=alpha, pad_id=PAD)
    assert scores.dtype == torch.float32 and scores.shape == (5,)
    for b, row in enumerate(_rows(tokens)):
        want_score, want_seq = reference_beam(step, state[b:b + 1], width, 7, alpha)
        assert row == want_seq
        assert math.isclose(float(scores[b]), want_score, rel_tol=1e-4, abs_tol=1e-4)
        assert math.isclose(_logp(step, state[b:b + 1], row) / len(row) ** alpha, want_score, rel_tol=1e-4)


def test_a_wide_beam_finds_the_exhaustive_optimum():
    V, max_len = 4, 4
    step, H = rnn_step(V=V, seed=11, scale=1.0)
    state = torch.randn(2, H, generator=torch.Generator().manual_seed(3))
    tokens, scores = beam_search(step, state, BOS, EOS, max_len, width=V ** max_len, alpha=1.0, pad_id=PAD)
    for b, row in enumerate(_rows(tokens)):
        best = max(
            (seq for n in range(1, max_len + 1) for seq in itertools.product(range(V), repeat=n)
             if seq[-1] == EOS and EOS not in seq[:-1]),
            key=lambda seq: _logp(step, state[b:b + 1], list(seq)) / len(seq))
        assert row == list(best)


def _table(rows: dict[int, dict[int, float]], V: int = 6) -> torch.Tensor:
    """Log-probabilities from {prev: {next: p}}; unlisted tokens share what is left."""
    table = torch.zeros(V, V)
    for prev in range(V):
        probs = rows.get(prev, {EOS: 1.0})
        rest = [v for v in range(V) if v not in probs]
        left = max(1.0 - sum(probs.values()), 0.0)
        for v in range(V):
            table[prev, v] = probs.get(v, left / len(rest) if rest else 0.0) + 1e-9
    return table.log()


def test_beam_finds_the_sequence_greedy_misses():
    # greedy: <bos> 3 (0.5) then 4/5/<eos> at 0.3-0.35 each; beam: <bos> 4 (0.4) then <eos> (0.9)
    table = _table({BOS: {3: 0.5, 4: 0.4, 5: 0.1}, 3: {EOS: 0.3, 4: 0.35, 5: 0.35}, 4: {EOS: 0.9, 5: 0.1},
                    5: {EOS: 1.0}})
    step, state = markov_step(table), torch.zeros(1, 1)
    greedy = greedy_search(step, state, BOS, EOS, 5, PAD)
    beam, score = beam_search(step, state, BOS, EOS, 5, width=2, alpha=0.0, pad_id=PAD)
    assert _rows(greedy) == [[3, 4, EOS]]
    assert _rows(beam) == [[4, EOS]]
    assert math.isclose(float(score), math.log(0.4 * 0.9), rel_tol=1e-5)


def test_finished_hypotheses_are_kept_while_others_continue():
    # <bos> 4 <eos> (p 0.36) finishes at step 2; the other beam carries on and ends worse.
    table = _table({BOS: {3: 0.6, 4: 0.4}, 3: {5: 0.5, 3: 0.5}, 4: {EOS: 0.9, 5: 0.1}, 5: {EOS: 0.2, 5: 0.8}})
    tokens, score = beam_search(markov_step(table), torch.zeros(1, 1), BOS, EOS, 8, width=2, alpha=0.0, pad_id=PAD)
    assert _rows(tokens) == [[4, EOS]]
    assert math.isclose(float(score), math.log(0.36), rel_tol=1e-5)


def test_length_normalisation_changes_the_winner():
    # short: <bos> 3 <eos>     = 0.5 * 0.6             = 0.3    (total -1.20, mean -0.60)
    # long:  <bos> 4 5 6 <eos> = 0.5 * 0.9 * 0.9 * 0.5 = 0.2025 (total -1.60, mean -0.40)
    table = _table({BOS: {3: 0.5, 4: 0.5}, 3: {EOS: 0.6, 3: 0.4}, 4: {5: 0.9}, 5: {6: 0.9}, 6: {EOS: 0.5}}, V=7)
    step, state = markov_step(table), torch.zeros(1, 1)
    raw, raw_score = beam_search(step, state, BOS, EOS, 6, width=3, alpha=0.0, pad_id=PAD)
    normalised, norm_score = beam_search(step, state, BOS, EOS, 6, width=3, alpha=1.0, pad_id=PAD)
    assert _rows(raw) == [[3, EOS]] and math.isclose(float(raw_score), math.log(0.3), rel_tol=1e-5)
    assert _rows(normalised) == [[4, 5, 6, EOS]]
    assert math.isclose(float(norm_score), math.log(0.2025) / 4, rel_tol=1e-5)
    for alpha, rows in ((0.0, _rows(raw)), (1.0, _rows(normalised))):
        assert rows[0] == reference_beam(step, state, 3, 6, alpha)[1]


def test_state_can_be_a_tuple_and_nothing_finished_returns_the_best_live():
    table = _table({BOS: {3: 0.9, 4: 0.1}, 3: {3: 0.9, 4: 0.1}, 4: {4: 1.0}})  # <eos> never wins in 3 steps
    base = markov_step(table)

    def step(tokens, state):
        logits, _ = base(tokens, state[0])
        return logits, (state[0], state[1] + 1)

    state = (torch.zeros(2, 1), torch.zeros(2, 1))
    tokens, scores = beam_search(step, state, BOS, EOS, 3, width=2, alpha=1.0, pad_id=PAD)
    assert tokens.tolist() == [[3, 3, 3], [3, 3, 3]]
    assert torch.allclose(scores, torch.full((2,), math.log(0.9)), atol=1e-4)


def test_bad_arguments():
    step, H = rnn_step()
    state = torch.zeros(2, H)
    with pytest.raises(ValueError, match="width"):
        beam_search(step, state, BOS, EOS, 5, width=0)
    with pytest.raises(ValueError, match="max_len"):
        greedy_search(step, state, BOS, EOS, 0)
    with pytest.raises(ValueError, match="differ"):
        greedy_search(step, state, EOS, EOS, 3)
