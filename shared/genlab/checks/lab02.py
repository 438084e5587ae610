"""Public checks for lab 02 (seq2seq with Bahdanau attention). Each prints one ✓ line or raises
AssertionError with a hint.

They use small fixed inputs and independent answers (``genlab.checks.lab02_bugs``: float64
formulas, one-example-at-a-time searches, sacrebleu), and they warn about everything the
hidden tests require: dtypes, shapes, padding, float16, gradients, tuple states, and the
promises of ``genlab.checks.contract`` (inputs left unchanged, no state kept between calls,
gradients reach the inputs, autograd left on). The hidden tests use other inputs.

Every answer comes from an ``@oracle`` of ``lab02_bugs`` called on these checks' own fixed
inputs (never on a student's outputs), so the student build can answer from its recording.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from genlab.checks import kit
from genlab.checks import lab02_bugs as bugs

__all__ = ["check_padding_mask", "check_additive_attention", "check_decoder_step", "check_decoding", "check_bleu",
           "checked_step", "date_itos", "make_decoder"]


def _call_explained(what: str, fn: Callable, table, *args):
    """``kit.call`` that adds this lab's hint for a known error message."""
    try:
        return kit.call(what, fn, *args)
    except AssertionError as exc:
        raise AssertionError(f"{exc}{bugs.explain_error(str(exc), table)}") from None


# ---------------------------------------------------------------- 1. padding mask

def check_padding_mask(fn: Callable) -> None:
    """Shapes, dtype, ragged lengths (one of length 1), a padded length beyond the longest row."""
    kit.check_contract(fn, (torch.tensor([3, 1, 4, 2]), 6), "padding_mask", ("lengths", "max_len"), check_grads=False)
    for lengths, max_len, dtype in (([3, 1, 2], 3, torch.long), ([5, 2, 1, 4], 7, torch.long), ([1], 1, torch.long),
                                    ([2, 4, 1], 5, torch.int32)):
        lengths = torch.tensor(lengths, dtype=dtype)
        got = _call_explained(f"padding_mask(lengths={lengths.tolist()}, max_len={max_len})", fn, bugs.PADDING_ERRORS,
                              lengths, max_len)
        kit.fail_if(bugs.name_padding_mask_bug(got, lengths.long(), max_len),
                    f"padding_mask(lengths={lengths.tolist()}, max_len={max_len})")
    kit.ok("padding_mask: bool (B, max_len), True exactly at t < lengths[b], padding beyond the longest row too, "
           "lengths left unchanged")


# ---------------------------------------------------------------- 2. additive attention

def _attention_state(d_q: int, d_k: int, d_a: int, seed: int) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"W.weight": torch.randn(d_a, d_q, generator=g) * 0.5, "U.weight": torch.randn(d_a, d_k, generator=g) * 0.5,
            "v.weight": torch.randn(1, d_a, generator=g)}


def _build_attention(cls, d_q: int, d_k: int, d_a: int, state: dict) -> nn.Module:
    attn = kit.call(f"AdditiveAttention({d_q}, {d_k}, {d_a})", cls, d_q, d_k, d_a)
    for name, shape in (("W", (d_a, d_q)), ("U", (d_a, d_k)), ("v", (1, d_a))):
        layer = getattr(attn, name, None)
        if not isinstance(layer, nn.Linear) or tuple(layer.weight.shape) != shape:
            raise AssertionError(
                f"AdditiveAttention({d_q}, {d_k}, {d_a}) needs self.{name} = nn.Linear("
                f"{ {'W': 'query_size, attention_size', 'U': 'key_size, attention_size', 'v': 'attention_size, 1'}[name]}"
                f", bias=False) (weight of shape {shape}); found {kit.describe(getattr(layer, 'weight', layer))}.")
        if layer.bias is not None:
            raise AssertionError(f"self.{name} should have no bias (bias=False): e_j = vᵀ tanh(W s + U h_j) has none.")
    extra = [n for n, _ in attn.named_parameters() if n not in state]
    if extra:
        raise AssertionError(f"AdditiveAttention should have exactly the parameters W, U and v; it also has {extra}.")
    attn.load_state_dict(state)
    return attn


def check_additive_attention(cls: type) -> None:
    """Parameters, the formula with and without a mask, padding, float16 and gradients."""
    d_q, d_k, d_v, d_a = 6, 4, 3, 5
    state = _attention_state(d_q, d_k, d_a, seed=2)
    attn = _build_attention(cls, d_q, d_k, d_a, state)
    g = torch.Generator().manual_seed(3)
    query, keys = torch.randn(3, d_q, generator=g), torch.randn(3, 5, d_k, generator=g)
    values = torch.randn(3, 5, d_v, generator=g)
    mask = bugs.padding_mask_formula(torch.tensor([5, 2, 1]), 5)  # (3, 5)
    what = "AdditiveAttention.forward"
    kit.check_contract(attn, (query, keys, values, mask), what, ("query", "keys", "values", "mask"), check_grads=False)
    for m, where in ((mask, "with a mask (lengths 5, 2, 1)"), (None, "without a mask")):
        out = kit.expect_tuple(_call_explained(what, attn, bugs.ATTENTION_ERRORS, query, keys, values, m), 2, what,
                               ("context", "weights"))
        kit.fail_if(bugs.name_additive_bug(*out, state, query, keys, values, m), f"{what} {where}")
    context, weights = attn(query, keys, values, mask)
    kit.expect_tensor(context, "the context", dtype=torch.float32)
    if bool((weights.masked_select(~mask) != 0).any()):
        raise AssertionError("padded positions must get weight exactly 0 (fill the masked scores with "
                             "torch.finfo(scores.dtype).min before the softmax).")
    garbage_k, garbage_v = keys.clone(), values.clone()
    garbage_k[~mask], garbage_v[~mask] = 100.0, -1000.0
    moved = kit.call(what, attn, query, garbage_k, garbage_v, mask)[0]
    if not kit.close(moved, context, atol=1e-6):
        raise AssertionError("changing the keys/values at padded positions changed the context: padding must have "
                             "no influence at all.")
    half = kit.call(f"{what} on float16", _half_call, cls, d_q, d_k, d_a, state, query, keys, values, mask)
    c16, w16 = kit.expect_tuple(half, 2, f"{what} on float16", ("context", "weights"))
    kit.expect_tensor(c16, "the float16 context", dtype=torch.float16, hint="float16 inputs give float16 outputs.")
    kit.expect_finite(c16, "the float16 context", "fill masked scores with torch.finfo(scores.dtype).min, not -1e9.")
    kit.expect_finite(w16, "the float16 weights", "fill masked scores with torch.finfo(scores.dtype).min, not -1e9.")
    if bool((w16.masked_select(~mask) != 0).any()) or not kit.close(c16.float(), context, atol=2e-2, rtol=2e-2):
        raise AssertionError("in float16 the result should match float32 up to rounding, with padding at exactly 0.")
    kit.check_contract(attn, (query, keys, values, mask), what, ("query", "keys", "values", "mask"))
    leaf = keys.clone().requires_grad_(True)
    context = kit.call(what, attn, query, leaf, values, mask)[0]
    if context.requires_grad:
        context.sum().backward()
    if leaf.grad is not None and bool((leaf.grad[~mask] != 0).any()):
        raise AssertionError("the keys at padded positions received a gradient: they must not influence the output.")
    kit.ok("AdditiveAttention: vᵀ tanh(W s + U h_j), softmax over real positions, padding exactly 0, float16, "
           "gradients to W, U and v")


def _half_call(cls, d_q, d_k, d_a, state, query, keys, values, mask):
    attn = cls(d_q, d_k, d_a)
    attn.load_state_dict(state)
    attn = attn.half()
    return attn(query.half(), keys.half(), values.half(), mask)


# ---------------------------------------------------------------- 3. decoder step

def make_decoder(V: int = 9, E: int = 4, D: int = 6, M: int = 8, seed: int = 0):
    """A small ``AttentionDecoder`` with dot-product attention and random weights (float32)."""
    from genlab.nn.rnn_seq2seq import AttentionDecoder

    torch.manual_seed(seed)
    decoder = AttentionDecoder(V, E, D, M, attention="dot", pad_id=0)
    with torch.no_grad():
        for p in decoder.parameters():
            p.normal_(0, 0.6)
    return decoder.eval()


def _decoder_inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    mask = bugs.padding_mask_formula(torch.tensor([5, 2, 1]), 5)  # (3, 5)
    memory = torch.randn(3, 5, 8, generator=g)
    memory[~mask] = 0.0
    tgt = torch.tensor([[1, 5, 6, 7, 2], [1, 3, 2, 0, 0], [1, 8, 2, 0, 0]])
    state = torch.randn(3, 6, generator=g)
    return memory, mask, tgt, state


def _record(module: nn.Module, calls: list):
    return module.register_forward_pre_hook(lambda m, args: calls.append(tuple(a.detach().clone() if isinstance(
        a, Tensor) else a for a in args)))


def _call_decoder(what: str, fn: Callable, *args):
    return _call_explained(what, fn, bugs.DECODER_ERRORS, *args)


def check_decoder_step(decoder_step: Callable, teacher_forcing: Callable, sequence_loss: Callable) -> None:
    """One step against the equations, the teacher-forced loop and what it feeds, and the loss."""
    decoder = make_decoder()
    sd = {k: v.detach().clone() for k, v in decoder.state_dict().items()}
    memory, mask, tgt, state = _decoder_inputs()
    contracts = [
        (decoder_step, (decoder, tgt[:, 0], state, memory, mask), "decoder_step",
         ("decoder", "prev_token", "state", "memory", "src_mask")),
        (teacher_forcing, (decoder, tgt, state, memory, mask), "teacher_forcing",
         ("decoder", "tgt", "state", "memory", "src_mask")),
        (sequence_loss, (torch.randn(3, 4, 9, generator=torch.Generator().manual_seed(5)), tgt, 0), "sequence_loss",
         ("logits", "tgt", "pad_id")),
    ]
    for fn, args, what, names in contracts:
        kit.check_contract(fn, args, what, names, check_grads=False)
    queries: list = []
    hook = _record(decoder.attention, queries)
    try:
        with torch.no_grad():
            result = _call_decoder("decoder_step", decoder_step, decoder, tgt[:, 0], state, memory, mask)
    finally:
        hook.remove()
    if queries and (not isinstance(queries[0][0], Tensor) or not torch.equal(queries[0][0], state)):
        raise AssertionError("decoder_step: the attention's query must be the previous state s_{i-1} (the `state` "
                             "argument), given before the GRU cell runs.")
    kit.fail_if(bugs.name_decoder_step_bug(result, sd, tgt[:, 0], state, memory, mask), "decoder_step")
    fed: list = []
    hook = _record(decoder.embedding, fed)
    try:
        with torch.no_grad():
            out = _call_decoder("teacher_forcing", teacher_forcing, decoder, tgt, state, memory, mask)
    finally:
        hook.remove()
    cells: list = []
    hook = decoder.cell.register_forward_hook(lambda m, args, output: cells.append((args[1].clone(), output.clone())))
    try:
        with torch.no_grad():
            teacher_forcing(decoder, tgt, state, memory, mask)
    finally:
        hook.remove()
    for i in range(1, len(cells)):
        if not torch.equal(cells[i][0], cells[i - 1][1]):
            raise AssertionError(f"teacher_forcing: step {i} did not start from the state step {i - 1} produced: keep "
                                 "the new state that decoder_step returns and pass it to the next step.")
    tokens = torch.stack([f[0] for f in fed], 1) if fed and all(isinstance(f[0], Tensor) and f[0].shape == (3,)
                                                                 for f in fed) else None
    kit.fail_if(bugs.name_teacher_forcing_bug(out, sd, tgt, state, memory, mask, tokens), "teacher_forcing")
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 4, 9, generator=g) * 3
    for dtype in (torch.float32, torch.float16):
        got = kit.call("sequence_loss", sequence_loss, logits.to(dtype), tgt, 0)
        kit.fail_if(bugs.name_loss_bug(got, logits.to(dtype).float(), tgt, 0), f"sequence_loss on {dtype} logits")
    for fn, args, what, names in contracts:
        kit.check_contract(fn, args, what, names)
    kit.ok("decoder_step follows Bahdanau (query s_{i-1}); teacher_forcing feeds tgt[:, :-1] from <bos>; "
           "sequence_loss is float32 against tgt[:, 1:] without padding; inputs left unchanged, gradients flow")


# ---------------------------------------------------------------- 4. decoding

def checked_step(step: Callable) -> Callable:
    """``step`` that refuses a state whose rows do not match the tokens (a state not reordered)."""
    def wrapped(tokens, state):
        rows = state[0].shape[0] if isinstance(state, (tuple, list)) else state.shape[0]
        if not isinstance(tokens, Tensor) or tokens.dim() != 1 or tokens.dtype != torch.long:
            raise ValueError(f"step(tokens, state) needs tokens as a long tensor (N,), got {kit.describe(tokens)}.")
        if tokens.shape[0] != rows:
            raise ValueError(f"step got {tokens.shape[0]} tokens but a state with {rows} rows: {bugs.REORDER_HINT}")
        return step(tokens, state)
    return wrapped


def _rnn(V=6, H=5, seed=0, tuple_state=False, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    E, Wh, Wo = torch.randn(V, H, generator=g), torch.randn(H, H, generator=g) / H ** 0.5, torch.randn(H, V, generator=g)
    return bugs.rnn_step(E, Wh, Wo * scale, tuple_state)


def _table(rows: dict, V: int = 7) -> Tensor:
    """Log-probabilities from {prev: {next: p}}; the rest of each row is spread unevenly."""
    table = torch.zeros(V, V, dtype=torch.float64)
    for prev in range(V):
        probs = rows.get(prev, {2: 1.0})
        rest = [v for v in range(V) if v not in probs]
        left = max(1.0 - sum(probs.values()), 0.0)
        weights = [1.0 + 0.1 * i for i in range(len(rest))]
        for v in range(V):
            table[prev, v] = probs[v] if v in probs else left * weights[rest.index(v)] / sum(weights)
    return (table + 1e-9).log().float()


GREEDY_TRAP = {1: {3: 0.5, 4: 0.4, 5: 0.1}, 3: {2: 0.3, 4: 0.35, 5: 0.33}, 4: {2: 0.9, 5: 0.1}, 5: {2: 1.0}}
KEEP_FINISHED = {1: {3: 0.6, 4: 0.4}, 3: {5: 0.5, 3: 0.48}, 4: {2: 0.9, 5: 0.1}, 5: {2: 0.2, 5: 0.78}}
LENGTH_NORM = {1: {3: 0.5, 4: 0.49}, 3: {2: 0.6, 3: 0.39}, 4: {5: 0.9}, 5: {6: 0.9}, 6: {2: 0.5}}


def check_decoding(greedy_decode: Callable, beam_search: Callable) -> None:
    """Greedy against the argmax rollout; beam search against a one-example reference on models
    built so that greedy misses the best sequence, a finished hypothesis must be kept, and the
    length normalisation decides the winner; tuple states; beam 1 = greedy."""
    step, h = _rnn(seed=7), torch.randn(3, 5, generator=torch.Generator().manual_seed(7))
    kit.check_contract(greedy_decode, (step, h, 1, 2, 8), "greedy_decode", ("step", "state", "bos_id", "eos_id", "max_len"),
              kwargs={"pad_id": 0}, check_grads=False)
    kit.check_contract(beam_search, (step, h, 1, 2, 7, 3, 1.0), "beam_search",
              ("step", "state", "bos_id", "eos_id", "max_len", "width", "alpha"), kwargs={"pad_id": 0},
              check_grads=False)
    for seed, tuple_state in ((0, False), (1, True)):
        step = _rnn(seed=seed, tuple_state=tuple_state)
        h = torch.randn(4, 5, generator=torch.Generator().manual_seed(seed))
        state = (h, torch.zeros(4, 2)) if tuple_state else h
        greedy = bugs.greedy_oracle(step, state, 1, 2, 8)
        got = kit.call("greedy_decode", greedy_decode, checked_step(step), state, 1, 2, 8, 0)
        kit.fail_if(bugs.name_greedy_bug(got, greedy, 2, 0, 8), f"greedy_decode{' (a tuple state)' if tuple_state else ''}")
        beam1 = kit.call("beam_search", beam_search, checked_step(step), state, 1, 2, 8, 1, 1.0, 0)
        if not (isinstance(beam1, (tuple, list)) and len(beam1) == 2 and isinstance(beam1[0], Tensor)):
            raise AssertionError(f"beam_search should return (tokens, scores), got {kit.describe(beam1)}.")
        if not kit.same([bugs._cut(r, 2, 0) for r in beam1[0].tolist()], greedy):
            kit.fail_if("beam_search with width=1 should give exactly the greedy sequences: keep the single best "
                        "extension at each step and stop when it ends in <eos>.")
    cases = [
        ("a model whose greedy choice is not the best sequence", GREEDY_TRAP, 2, 0.0,
         ("probabilities", "forget_finished")),
        ("a hypothesis that finishes early and must be kept", KEEP_FINISHED, 2, 0.0,
         ("probabilities", "forget_finished")),
        ("length normalisation deciding the winner (alpha=1)", LENGTH_NORM, 3, 1.0, ("no_length_norm",)),
        ("length normalisation off (alpha=0)", LENGTH_NORM, 3, 0.0, ()),
    ]
    for where, rows, width, alpha, variants in cases:
        step, state = bugs.markov_step(_table(rows)), torch.zeros(1, 1)
        want = bugs.beam_oracle(step, state, 1, 2, 8, width, alpha)
        alts = {v: bugs.beam_oracle(step, state, 1, 2, 8, width, alpha, v) for v in variants}
        got = kit.call("beam_search", beam_search, checked_step(step), state, 1, 2, 8, width, alpha, 0)
        kit.fail_if(bugs.name_beam_bug(got, want, 2, 0, alts), f"beam_search on {where}")
    step = _rnn(V=7, seed=5, tuple_state=True)
    state = (torch.randn(3, 5, generator=torch.Generator().manual_seed(6)), torch.zeros(3, 2))
    want = bugs.beam_oracle(step, state, 1, 2, 7, 3, 1.0)
    got = kit.call("beam_search", beam_search, checked_step(step), state, 1, 2, 7, 3, 1.0, 0)
    kit.fail_if(bugs.name_beam_bug(got, want, 2, 0, {"probabilities": bugs.beam_oracle(step, state, 1, 2, 7, 3, 1.0,
                                                                                         "probabilities")}),
                "beam_search on a batch of 3 with a recurrent state (a tuple)")
    kit.ok("greedy_decode and beam_search: argmax rollout, log-probabilities, finished hypotheses kept, "
           "length normalisation, tuple states, beam 1 = greedy")


# ---------------------------------------------------------------- 5. BLEU

def date_itos() -> list[str]:
    """The dates' target vocabulary: <pad>, <bos>, <eos>, digits and '-'."""
    return ["<pad>", "<bos>", "<eos>", *"0123456789-"]


def _encode(texts, itos, bos=False, after_eos=0, width=14, sep=""):
    rows = []
    for t in texts:
        tokens = t.split(sep) if sep else list(t)
        row = ([1] if bos else []) + [itos.index(x) for x in tokens] + [2]
        rows.append(row + [after_eos] * (width - len(row)))
    return torch.tensor(rows)


def check_bleu(corpus_bleu: Callable) -> None:
    """Dates with characters as tokens, and words with sacrebleu's 13a, against sacrebleu."""
    itos = date_itos()
    preds = _encode(["2021-03-03", "1999-12-24", "2000-10", "2049-12-31"], itos, after_eos=5)
    refs = _encode(["2021-03-03", "1999-12-25", "2000-01-01", "2049-12-31"], itos, bos=True)
    kit.check_contract(corpus_bleu, (preds, refs, itos, "char", ""), "corpus_bleu",
              ("pred_ids", "ref_ids", "itos", "tokenize", "sep"), check_grads=False)
    got = kit.call("corpus_bleu", corpus_bleu, preds, refs, itos, "char", "")
    kit.fail_if(bugs.name_bleu_bug(got, preds, refs, itos, "char", ""), "corpus_bleu on dates (tokenize='char')")
    words = ["<pad>", "<bos>", "<eos>", "the", "weather", "is", "nice", "today", "how", "?"]
    preds = _encode(["how is the weather today ?", "the weather is nice", "today"], words, after_eos=3, width=9,
                    sep=" ")
    refs = _encode(["how is the weather today ?", "the weather is nice today", "today the weather is nice"], words,
                   bos=True, width=9, sep=" ")
    got = kit.call("corpus_bleu", corpus_bleu, preds, refs, words, "13a", " ")
    kit.fail_if(bugs.name_bleu_bug(got, preds, refs, words, "13a", " "), "corpus_bleu on words (tokenize='13a')")
    kit.ok("corpus_bleu: decoded up to <eos>, specials dropped, sacrebleu's corpus BLEU with the tokenizer you chose")
