"""The GRU encoder and the attention decoder against torch's own GRU and structural properties."""
import pytest
import torch

from genlab.nn.additive import make_attention
from genlab.nn.masks import padding_mask
from genlab.nn.rnn_seq2seq import AttentionDecoder, BiGRUEncoder, decoder_step, teacher_forced_logits

V_SRC, V_TGT, PAD, BOS, EOS = 11, 9, 0, 1, 2


def _encoder(seed=0):
    torch.manual_seed(seed)
    return BiGRUEncoder(V_SRC, 6, 5, PAD).double().eval()


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 4, 1])
    src = torch.randint(3, V_SRC, (3, 7), generator=g)
    src[padding_mask(lengths, 7).logical_not()] = PAD
    return src, lengths


def test_encoder_matches_an_unpadded_gru_run_per_sentence():
    enc = _encoder()
    src, lengths = _batch()
    memory, summary = enc(src, lengths)
    assert memory.shape == (3, 7, 10) and summary.shape == (3, 10)
    for b in range(3):
        n = int(lengths[b])
        x = enc.embedding(src[b:b + 1, :n])
        out, h_n = enc.rnn(x)  # torch's GRU on the real tokens only, no padding at all
        torch.testing.assert_close(memory[b, :n], out[0])
        torch.testing.assert_close(summary[b], torch.cat([h_n[0, 0], h_n[1, 0]]))
        assert bool((memory[b, n:] == 0).all())


def test_encoder_padding_invariance():
    enc = _encoder()
    src, lengths = _batch()
    memory, summary = enc(src, lengths)
    longer = torch.cat([src, torch.full((3, 5), PAD)], dim=1)
    memory2, summary2 = enc(longer, lengths)
    torch.testing.assert_close(memory2[:, :7], memory)
    torch.testing.assert_close(summary2, summary)


def test_encoder_rejects_bad_lengths():
    enc = _encoder()
    src, _ = _batch()
    with pytest.raises(ValueError, match="src_lengths"):
        enc(src, torch.tensor([7, 0, 2]))
    with pytest.raises(ValueError, match="src_lengths"):
        enc(src, torch.tensor([8, 2, 2]))


def _decoder(kind="additive", seed=1):
    torch.manual_seed(seed)
    return AttentionDecoder(V_TGT, 4, 6, 10, make_attention(kind, 6, 10, 5), PAD).double().eval()


def _memory(seed=2):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([5, 2, 3])
    memory = torch.randn(3, 5, 10, generator=g, dtype=torch.float64)
    mask = padding_mask(lengths, 5)
    memory[~mask] = 0
    tgt = torch.tensor([[BOS, 5, 6, 7, EOS], [BOS, 3, EOS, PAD, PAD], [BOS, 8, 8, EOS, PAD]])
    state = torch.randn(3, 6, generator=g, dtype=torch.float64)
    return memory, mask, tgt, state


def test_decoder_step_follows_the_bahdanau_equations():
    dec = _decoder()
    memory, mask, tgt, state = _memory()
    logits, new_state, weights = decoder_step(dec, tgt[:, 0], state, memory, mask)
    emb = dec.embedding.weight[tgt[:, 0]]
    context, want_w = dec.attention(state, memory, memory, mask)  # query: the previous state
    cell = torch.nn.GRUCell(14, 6).double()
    cell.load_state_dict(dec.cell.state_dict())
    want_state = cell(torch.cat([emb, context], -1), state)
    want_logits = torch.cat([want_state, context, emb], -1) @ dec.out.weight.T + dec.out.bias
    torch.testing.assert_close(weights, want_w)
    torch.testing.assert_close(new_state, want_state)
    torch.testing.assert_close(logits, want_logits)


@pytest.mark.parametrize("kind", ["additive", "dot", "none"])
def test_teacher_forcing_equals_the_step_loop_and_the_fast_path(kind):
    dec = _decoder(kind)
    memory, mask, tgt, state = _memory()
    logits, weights = teacher_forced_logits(dec, tgt, state, memory, mask)
    looped, s = [], state
    for i in range(tgt.shape[1] - 1):
        out, s, _ = decoder_step(dec, tgt[:, i], s, memory, mask)
        looped.append(out)
    torch.testing.assert_close(logits, torch.stack(looped, 1))
    assert logits.shape == (3, 4, V_TGT)
    if kind == "none":
        assert weights is None
    else:
        assert weights.shape == (3, 4, 5)
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4, dtype=torch.float64))
    slow, _ = teacher_forced_logits(dec, tgt, state, memory, mask, step=decoder_step)
    torch.testing.assert_close(slow, logits)


def test_teacher_forcing_is_causal_and_starts_from_bos():
    """logits[:, i] depends on tgt[:, :i + 1] only (the target is shifted right)."""
    dec = _decoder()
    memory, mask, tgt, state = _memory()
    logits, _ = teacher_forced_logits(dec, tgt, state, memory, mask)
    changed = tgt.clone()
    changed[:, 2:] = 4
    logits2, _ = teacher_forced_logits(dec, changed, state, memory, mask)
    torch.testing.assert_close(logits2[:, :2], logits[:, :2])
    assert not torch.allclose(logits2[:, 2:], logits[:, 2:])
    seen = []
    handle = dec.embedding.register_forward_hook(lambda m, args, out: seen.append(args[0].clone()))
    teacher_forced_logits(dec, tgt, state, memory, mask, step=decoder_step)
    handle.remove()
    assert torch.equal(torch.stack(seen, 1), tgt[:, :-1])


def test_ratio_zero_feeds_the_models_own_predictions():
    dec = _decoder()
    memory, mask, tgt, state = _memory()
    seen = []
    handle = dec.embedding.register_forward_hook(lambda m, args, out: seen.append(args[0].clone()))
    logits, _ = teacher_forced_logits(dec, tgt, state, memory, mask, teacher_forcing_ratio=0.0)
    handle.remove()
    fed = torch.stack(seen, 1)
    assert torch.equal(fed[:, 0], tgt[:, 0])
    assert torch.equal(fed[:, 1:], logits[:, :-1].argmax(-1))
    with pytest.raises(ValueError, match="teacher_forcing_ratio"):
        teacher_forced_logits(dec, tgt, state, memory, mask, teacher_forcing_ratio=1.5)


def test_gradients_flow_to_every_decoder_part():
    dec = _decoder()
    memory, mask, tgt, state = _memory()
    logits, _ = teacher_forced_logits(dec, tgt, state, memory, mask)
    logits.square().mean().backward()
    for name, p in dec.named_parameters():
        if name.startswith("bridge"):
            continue  # init_state is not part of the loop
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_sequence_loss_is_float32_cross_entropy_on_the_shifted_target():
    from genlab.nn.rnn_seq2seq import sequence_loss

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, V_TGT, generator=g)
    tgt = torch.tensor([[BOS, 5, 6, 7, EOS], [BOS, 3, EOS, PAD, PAD]])
    targets = tgt[:, 1:]
    logp = torch.log_softmax(logits.double(), -1).gather(-1, targets[..., None]).squeeze(-1)
    real = targets != PAD
    want = -(logp[real]).mean()
    got = sequence_loss(logits.half(), tgt, PAD)
    assert got.dtype == torch.float32 and got.dim() == 0
    torch.testing.assert_close(got.double(), want, atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(sequence_loss(logits, tgt, PAD).double(), want, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="do not fit"):
        sequence_loss(logits, tgt[:, :-1], PAD)
