"""Part 3: decoder_step(decoder, prev_token, state, memory, src_mask) -> (logits, new_state, weights),
teacher_forcing(decoder, tgt, state, memory, src_mask) -> (logits (B, T-1, V), weights (B, T-1, S)),
sequence_loss(logits, tgt, pad_id) -> float32 scalar.

The decoder is genlab's AttentionDecoder with dot-product attention (not part 2's), built in the
worker by the recorded_inputs probe, which also records what its embedding, attention and GRU cell
receive; the contract tests build the same decoder in the worker (probe contract, ``__build__``).
The decoder's weights and the random inputs are drawn per submission (``submission.seed``); the
target sentences are fixed.
"""
import pytest
import torch

from autograder import kit
from genlab.checks import lab02_bugs as bugs

V, E, D, M = 11, 5, 7, 6
PAD, BOS, EOS = 0, 1, 2




def _decoder_state(seed):
    from genlab.nn.rnn_seq2seq import AttentionDecoder

    torch.manual_seed(seed)
    decoder = AttentionDecoder(V, E, D, M, attention="dot", pad_id=PAD)
    with torch.no_grad():
        for p in decoder.parameters():
            p.normal_(0, 0.5)
    return {k: v.detach().clone() for k, v in decoder.state_dict().items()}


KWARGS = {"vocab_size": V, "emb_size": E, "hidden_size": D, "memory_size": M, "attention": "dot", "pad_id": PAD}


def _spec(sd):
    return {"class": "genlab.nn.rnn_seq2seq:AttentionDecoder", "state_dict": sd, "kwargs": KWARGS}


def _built(sd):
    """The decoder as an argument of probe contract: built in the worker, one object for every call."""
    return {"__build__": "genlab.nn.rnn_seq2seq:AttentionDecoder", "state_dict": sd, "kwargs": KWARGS}


def _inputs(seed, lengths, S):
    g = torch.Generator().manual_seed(seed)
    B = len(lengths)
    mask = torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]
    memory = torch.randn(B, S, M, generator=g)
    memory[~mask] = 0.0
    state = torch.randn(B, D, generator=g)
    return memory, mask, state


TGT = torch.tensor([[BOS, 4, 5, 6, 7, 3, EOS], [BOS, 8, EOS, PAD, PAD, PAD, PAD], [BOS, 9, 10, 3, EOS, PAD, PAD]])


def _probe(submission, fn, sd, args, record=("embedding", "attention", "cell", "out")):
    data = submission.probe("recorded_inputs", fn=fn, module=_spec(sd), args=args, record=list(record))
    if data["error"]:
        raise AssertionError(f"{fn} raised {data['error']}.{bugs.explain_decoder_error(data['error'])}")
    return data


@pytest.mark.points(2)
def test_decoder_step_shapes(submission):
    """logits (B, V), new state (B, D), weights (B, S)."""
    sd = _decoder_state(kit.input_seed(submission, 0))
    memory, mask, state = _inputs(kit.input_seed(submission, 1), [5, 2, 1], 5)
    data = _probe(submission, "decoder_step", sd, ["<module>", TGT[:, 0], state, memory, mask])
    result = kit.expect_tuple(data["result"], 3, "decoder_step", ("logits", "new_state", "weights"))
    for got, name, shape in zip(result, ("logits", "new_state", "weights"), ((3, V), (3, D), (3, 5)), strict=True):
        kit.expect_tensor(got, f"decoder_step's {name}", shape=shape, dtype=torch.float32)


@pytest.mark.points(4)
def test_decoder_step_follows_the_equations(submission):
    """c_i from attention(s_{i-1}); s_i = GRUCell([emb(y_{i-1}); c_i], s_{i-1}); logits = out([s_i; c_i; emb])."""
    for seed, lengths, S, prev in ((2, [5, 2, 1], 5, TGT[:, 3]), (3, [1], 1, torch.tensor([7])),
                                   (4, [4, 4], 6, torch.tensor([BOS, 9]))):
        sd = _decoder_state(kit.input_seed(submission, seed))
        memory, mask, state = _inputs(kit.input_seed(submission, seed + 10), lengths, S)
        data = _probe(submission, "decoder_step", sd, ["<module>", prev, state, memory, mask])
        kit.fail_if(bugs.name_decoder_step_bug(data["result"], sd, prev, state, memory, mask),
                    f"decoder_step (batch of {len(lengths)}, source length {S})")


@pytest.mark.points(3)
def test_the_query_is_the_previous_state(submission):
    """The attention is called once per step, with s_{i-1} (the state given) as the query."""
    sd = _decoder_state(kit.input_seed(submission, 5))
    memory, mask, state = _inputs(kit.input_seed(submission, 6), [5, 3, 2], 5)
    data = _probe(submission, "decoder_step", sd, ["<module>", TGT[:, 1], state, memory, mask])
    calls = data["calls"]["attention"]
    if not calls:
        raise AssertionError("decoder_step never called decoder.attention: compute the context with "
                             "decoder.attention(state, memory, memory, src_mask).")
    query = calls[0]["args"][0] if calls[0]["args"] else calls[0]["kwargs"].get("query")
    if not isinstance(query, torch.Tensor) or not torch.equal(query, state):
        raise AssertionError("the attention's query must be the previous decoder state s_{i-1} (the `state` argument), "
                             "used before the GRU cell updates it.")
    if len(calls) > 1:
        raise AssertionError(f"decoder_step called the attention {len(calls)} times; attend once, with the previous "
                             "state s_{i-1} as the query, and use that context both in the GRU cell and in the output "
                             "layer. Attending again with the new state s_i is Luong's decoder, not Bahdanau's.")
    keys = calls[0]["args"][1] if len(calls[0]["args"]) > 1 else None
    if not isinstance(keys, torch.Tensor) or not torch.equal(keys, memory):
        raise AssertionError("the attention's keys (and values) must be the encoder states `memory`.")


def _fed(data, B):
    fed = [c["args"][0] for c in data["calls"]["embedding"] if c["args"]]
    if fed and all(isinstance(f, torch.Tensor) and f.shape == (B,) for f in fed):
        return torch.stack(fed, 1)
    return None


@pytest.mark.points(4)
def test_teacher_forcing_feeds_the_ground_truth(submission):
    """Step i's input is tgt[:, i]: <bos> first, never the token being predicted, never the model's own guess."""
    sd = _decoder_state(kit.input_seed(submission, 7))
    memory, mask, state = _inputs(kit.input_seed(submission, 8), [5, 2, 4], 5)
    data = _probe(submission, "teacher_forcing", sd, ["<module>", TGT, state, memory, mask])
    fed = _fed(data, 3)
    if fed is None:
        raise AssertionError("teacher_forcing should call decoder_step once per step, which embeds one token per "
                             "sentence (a (B,) tensor) with decoder.embedding.")
    if fed.shape[1] != TGT.shape[1] - 1:
        raise AssertionError(f"the decoder ran {fed.shape[1]} steps for targets of length T = {TGT.shape[1]}; it must "
                             "run T - 1 steps, reading tgt[:, 0] ... tgt[:, T - 2].")
    kit.fail_if(bugs.name_teacher_forcing_bug(data["result"], sd, TGT, state, memory, mask, fed), "teacher_forcing")


@pytest.mark.points(3)
def test_teacher_forcing_logits(submission):
    """Logits (B, T-1, V) and weights (B, T-1, S) of the whole loop, against float64; also T = 2."""
    cases = ((9, TGT, [5, 2, 4], 5), (10, torch.tensor([[BOS, EOS], [BOS, EOS]]), [1, 3], 3))
    for seed, tgt, lengths, S in cases:
        sd = _decoder_state(kit.input_seed(submission, seed))
        memory, mask, state = _inputs(kit.input_seed(submission, seed + 10), lengths, S)
        data = _probe(submission, "teacher_forcing", sd, ["<module>", tgt, state, memory, mask])
        kit.fail_if(bugs.name_teacher_forcing_bug(data["result"], sd, tgt, state, memory, mask, _fed(data, len(lengths))),
                    f"teacher_forcing on targets of length {tgt.shape[1]}")


@pytest.mark.points(2)
def test_teacher_forcing_carries_the_state(submission):
    """Each step's GRU cell starts from the state the previous step produced."""
    sd = _decoder_state(kit.input_seed(submission, 11))
    memory, mask, state = _inputs(kit.input_seed(submission, 12), [5, 2, 4], 5)
    data = _probe(submission, "teacher_forcing", sd, ["<module>", TGT, state, memory, mask])
    cells = data["calls"]["cell"]
    if len(cells) < 2:
        raise AssertionError("teacher_forcing should run the GRU cell once per step (through decoder_step).")
    for i in range(1, len(cells)):
        hx = cells[i]["args"][1] if len(cells[i]["args"]) > 1 else None
        if not isinstance(hx, torch.Tensor) or not torch.equal(hx, cells[i - 1]["output"]):
            raise AssertionError(f"step {i} did not start from the state step {i - 1} produced: keep the new state that "
                                 "decoder_step returns and pass it to the next step.")


@pytest.mark.points(3)
def test_sequence_loss(submission):
    """Mean cross-entropy against tgt[:, 1:], padding ignored, float32 even for float16 logits."""
    fn = submission.function("sequence_loss")
    g = torch.Generator().manual_seed(kit.input_seed(submission, 13))
    logits = torch.randn(3, TGT.shape[1] - 1, V, generator=g) * 2
    for dtype in (torch.float32, torch.float16):
        x = logits.to(dtype)
        got = kit.call(fn, x, TGT, PAD, context=f"sequence_loss on {str(dtype).replace('torch.', '')} logits")
        kit.fail_if(bugs.name_loss_bug(got, x.float(), TGT, PAD), f"sequence_loss on {dtype} logits")
    other = torch.tensor([[BOS, 3, 3, EOS, PAD], [BOS, 5, EOS, PAD, PAD]])
    x = torch.randn(2, 4, V, generator=g)
    got = kit.call(fn, x, other, PAD, context="sequence_loss")
    kit.fail_if(bugs.name_loss_bug(got, x, other, PAD), "sequence_loss on another batch")


@pytest.mark.points(1)
def test_sequence_loss_gradient_skips_padding(submission):
    """The loss's gradient reaches the logits of real target tokens only."""
    g = torch.Generator().manual_seed(14)
    logits = torch.randn(3, TGT.shape[1] - 1, V, generator=g)
    data = submission.probe("gradients", fn="sequence_loss", args=[logits, TGT, PAD], wrt=[0])
    grad = data["grads"][0]
    real = TGT[:, 1:] != PAD
    if not isinstance(grad, torch.Tensor) or float(grad[real].abs().sum()) == 0.0:
        raise AssertionError("no gradient reached the logits: compute the loss from them with torch operations "
                             "(no .item(), .detach() or torch.no_grad()).")
    if float(grad[~real].abs().sum()) != 0.0:
        raise AssertionError("the logits at padded target positions received a gradient: ignore the padding "
                             "(ignore_index=pad_id).")


@pytest.mark.points(1)
def test_decoder_step_inputs_state_and_gradients(submission):
    """The inputs come back unchanged, no state is kept between calls, and gradients reach the
    previous state and the encoder's memory through the logits."""
    sd = _decoder_state(15)
    memory, mask, state = _inputs(16, [4, 2], 4)
    kit.expect_contract(submission, "decoder_step", (_built(sd), torch.tensor([BOS, 5]), state, memory, mask),
                        "decoder_step", names=("decoder", "prev_token", "state", "memory", "src_mask"))


@pytest.mark.points(1)
def test_teacher_forcing_inputs_state_and_gradients(submission):
    """tgt, the first state, the memory and the mask come back unchanged, no state is kept between
    calls (a default list argument keeps the last call's logits), and gradients reach s_0 and the memory."""
    sd = _decoder_state(17)
    memory, mask, state = _inputs(18, [5, 2, 4], 5)
    kit.expect_contract(submission, "teacher_forcing", (_built(sd), TGT, state, memory, mask), "teacher_forcing",
                        names=("decoder", "tgt", "state", "memory", "src_mask"))


@pytest.mark.points(1)
def test_sequence_loss_inputs_state_and_gradients(submission):
    """The logits and tgt come back unchanged (tgt[:, 1:] is a view: writing into it writes into tgt),
    no state is kept between calls, and gradients reach the logits."""
    logits = torch.randn(3, TGT.shape[1] - 1, V, generator=torch.Generator().manual_seed(19))
    kit.expect_contract(submission, "sequence_loss", (logits, TGT, PAD), "sequence_loss",
                        names=("logits", "tgt", "pad_id"))
