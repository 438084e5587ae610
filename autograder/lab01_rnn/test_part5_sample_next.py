"""Part 5: sample_next(logits, temperature, top_k, top_p, generator) -> (B,) long token ids."""
import pytest
import torch

from autograder import kit
from genlab.checks import lab01 as checks
from genlab.checks import lab01_bugs as bugs

NAME = "sample_next"


def _run(submission, calls, what):
    """Run ``calls`` (dicts of sample_next arguments) in the worker; their samples, checked for errors."""
    submission.function(NAME)
    results = kit.call(submission.probe, "lab01_sample", calls=calls, context=f"{NAME} ({what})")
    out = []
    for call, result in zip(calls, results, strict=False):
        shown = {k: v for k, v in call.items() if k in ("temperature", "top_k", "top_p")}
        if result.get("error"):
            raise AssertionError(f"{NAME}(logits, **{shown}) raised {checks.sampling_error_hint(result['error'], call.get('top_p'))}")
        out.append(result["samples"])
    return out


def _rows(row, n):
    return torch.as_tensor(row, dtype=torch.float32).expand(n, -1).clone()


def _random_row(V, seed, scale=1.5):
    return torch.randn(V, generator=torch.Generator().manual_seed(seed)) * scale


def _judge(samples, logits, what, **kw):
    kit.fail_if(bugs.name_sampling_bug(samples, logits, **kw), f"{what}")


@pytest.mark.points(1)
def test_one_long_token_id_per_row(submission):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 13, generator=g)
    (samples,) = _run(submission, [dict(logits=logits, seed=1)], "7 rows of 13 logits")
    kit.expect_tensor(samples, "the samples", shape=(7,), dtype=torch.long,
                      hint="Return one token id per row as torch.long; torch.multinomial(probs, 1) gives (B, 1): "
                           "squeeze the last axis.")
    if bool((samples < 0).any()) or bool((samples >= 13).any()):
        raise AssertionError("sample_next returned ids outside 0..V-1.")


@pytest.mark.points(1)
def test_logits_left_alone_and_no_state_between_calls(submission):
    """The logits come back unchanged (in the worker, on the very tensor passed: no in-place
    `logits /= temperature` or masked_fill_), autograd is left on, and the same logits give the
    same samples after a call on other logits. Every row has one token far above the others, so
    every draw is that token whatever the generator (the samples themselves are judged elsewhere)."""
    submission.function(NAME)
    kit.expect_contract(submission, NAME, (checks.sampling_contract_logits(submission.seed),), NAME,
                        names=("logits",), kwargs=checks.SAMPLING_CONTRACT_KWARGS, check_grads=False)


@pytest.mark.points(2)
def test_temperature_zero_is_greedy(submission):
    """T = 0 is the argmax of each row (no division by zero); a tiny T gives the same."""
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(6, 20, generator=g) * 3
    for T in (0, 0.0, 1e-4):
        (samples,) = _run(submission, [dict(logits=logits, temperature=T, seed=3)], f"temperature={T}")
        _judge(samples, logits, f"temperature={T} (the T → 0 limit)", temperature=0)


@pytest.mark.points(2)
def test_frequencies_follow_the_softmax_at_t1(submission):
    """20,000 draws from one row at T = 1, against softmax(x) by a chi-square test."""
    logits = _rows(_random_row(10, seed=4), 20_000)
    (samples,) = _run(submission, [dict(logits=logits, temperature=1.0, seed=5)], "T = 1, 20,000 draws")
    _judge(samples, logits, "T = 1 (chi-square against softmax(x))", temperature=1.0)


@pytest.mark.points(2)
def test_temperature_divides_the_logits(submission):
    """T = 0.5 and T = 2 against softmax(x / T) (applying T after the softmax has no effect)."""
    logits = _rows(_random_row(10, seed=6), 20_000)
    calls = [dict(logits=logits, temperature=T, seed=7) for T in (0.5, 2.0)]
    for T, samples in zip((0.5, 2.0), _run(submission, calls, "T = 0.5 and T = 2"), strict=False):
        _judge(samples, logits, f"T = {T} (chi-square against softmax(x / T))", temperature=T)


@pytest.mark.points(2)
def test_top_k_keeps_exactly_the_k_largest(submission):
    logits = _rows(_random_row(12, seed=8, scale=1.0), 12_000)
    calls = [dict(logits=logits, temperature=1.0, top_k=k, seed=9) for k in (1, 3, 7)]
    for k, samples in zip((1, 3, 7), _run(submission, calls, "top_k = 1, 3, 7"), strict=False):
        _judge(samples, logits, f"top_k={k}", temperature=1.0, top_k=k)
        support = set(torch.unique(samples).tolist())
        if len(support) != k:
            raise AssertionError(f"with top_k={k} exactly {k} distinct tokens should be sampled (12,000 draws), "
                                 f"got {len(support)}. Keep the k largest logits, set the others to -inf.")


@pytest.mark.points(3)
def test_top_p_keeps_the_minimal_nucleus(submission):
    """Probabilities [0.5, 0.25, 0.15, 0.1]: p = 0.7 keeps 2 tokens, p = 0.76 keeps 3, p = 0.4 keeps 1;
    the token that crosses p is in the nucleus."""
    probs = torch.tensor([0.15, 0.5, 0.1, 0.25])  # shuffled, so sorting matters
    logits = _rows(probs.log(), 8_000)
    cases = ((0.7, {1, 3}), (0.76, {1, 3, 0}), (0.4, {1}), (0.999, {0, 1, 2, 3}))
    calls = [dict(logits=logits, temperature=1.0, top_p=p, seed=10) for p, _ in cases]
    for (p, want), samples in zip(cases, _run(submission, calls, "top_p on a known distribution"), strict=False):
        got = set(torch.unique(samples).tolist()) if isinstance(samples, torch.Tensor) else None
        if got != want:
            hint = bugs.name_sampling_bug(samples, logits, temperature=1.0, top_p=p)
            size = "one token" if len(want) == 1 else f"{len(want)} tokens"
            raise AssertionError(f"with probabilities 0.5, 0.25, 0.15, 0.1 and top_p={p} the nucleus is {size} "
                                 f"(keep a token while the mass before it is < p), but {len(got or ())} distinct "
                                 f"tokens were sampled. {hint or ''}".rstrip())
        _judge(samples, logits, f"top_p={p}", temperature=1.0, top_p=p)


@pytest.mark.points(1)
def test_top_p_with_ties_keeps_only_as_many_as_needed(submission):
    """Probabilities [0.4, 0.2, 0.2, 0.2], p = 0.55: the nucleus is the top token and ONE of the tied ones."""
    logits = _rows(torch.tensor([0.2, 0.4, 0.2, 0.2]).log(), 6_000)
    (samples,) = _run(submission, [dict(logits=logits, temperature=1.0, top_p=0.55, seed=11)], "tied probabilities")
    kit.expect_tensor(samples, "the samples", shape=(6_000,))
    support = set(torch.unique(samples).tolist())
    if 1 not in support or len(support) != 2:
        raise AssertionError(f"with probabilities 0.4, 0.2, 0.2, 0.2 and top_p=0.55 the smallest nucleus has 2 tokens "
                             f"(0.4 + 0.2 ≥ 0.55): the top one and one of the three tied tokens; got {len(support)} "
                             "distinct tokens. Keep tokens in sorted order while the mass before them is < p; tied "
                             "tokens after the crossing one are left out.")


@pytest.mark.points(1)
def test_top_p_is_chosen_after_the_temperature(submission):
    """The nucleus comes from softmax(x / T): at T = 3 the same p keeps more tokens."""
    logits = _rows(torch.tensor([3.0, 1.5, 1.0, 0.0, -1.0]), 10_000)
    (samples,) = _run(submission, [dict(logits=logits, temperature=3.0, top_p=0.6, seed=12)], "T = 3 with top_p = 0.6")
    _judge(samples, logits, "T = 3 with top_p = 0.6", temperature=3.0, top_p=0.6)


@pytest.mark.points(2)
def test_the_generator_is_honoured(submission):
    """Same seed, same samples, whatever the global RNG; another seed, other samples."""
    logits = _rows(_random_row(9, seed=13), 300)
    calls = [dict(logits=logits, seed=21, global_seed=0), dict(logits=logits, seed=21, global_seed=1),
             dict(logits=logits, seed=22, global_seed=0)]
    a, b, c = _run(submission, calls, "three generators")
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)):
        raise AssertionError("the same generator seed gave different samples after the global RNG was reseeded: draw "
                             "with the generator you are given, torch.multinomial(probs, 1, generator=generator).")
    if torch.equal(a, c):
        raise AssertionError("two different generator seeds gave the same samples: the generator is ignored.")


@pytest.mark.points(1)
def test_rows_are_sampled_independently(submission):
    """Each row follows its own distribution (two rows peaked on different tokens)."""
    peaked = torch.full((2, 6), -6.0)
    peaked[0, 1] = 6.0
    peaked[1, 4] = 6.0
    logits = peaked.repeat(500, 1)
    (samples,) = _run(submission, [dict(logits=logits, temperature=1.0, seed=14)], "two different rows")
    kit.expect_tensor(samples, "the samples", shape=(1000,))
    if (samples[0::2] == 1).float().mean() < 0.95 or (samples[1::2] == 4).float().mean() < 0.95:
        raise AssertionError("each row must be sampled from its own logits: rows peaked on different tokens gave the "
                             "wrong tokens (sample along the last axis, one draw per row).")
