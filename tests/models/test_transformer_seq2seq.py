"""TransformerSeq2Seq: shapes, masking, greedy decoding, a tiny overfit, logging, figures."""
import inspect

import lightning as L
import pytest
import torch

from genlab.data import DatesDataModule, PairBatch, collate_pairs
from genlab.models import TransformerSeq2Seq
from genlab.models.transformer_seq2seq import exact_match, truncate_after_eos
from genlab.nn import (
    MultiHeadAttention,
    causal_mask,
    combine_masks,
    scaled_dot_product_attention,
    sinusoidal_positions,
)
from genlab.nn.attention import TorchMultiHeadAttention
from genlab.plots.transformer import save_seq2seq_figures

PAD, BOS, EOS = 0, 1, 2


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    args = dict(src_vocab_size=11, tgt_vocab_size=9, d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1)
    return TransformerSeq2Seq(**{**args, **kw})


def _batch():
    src = torch.tensor([[5, 6, 7, 8, EOS], [4, 9, EOS, PAD, PAD]])
    tgt = torch.tensor([[BOS, 3, 4, 5, EOS], [BOS, 6, EOS, PAD, PAD]])
    return PairBatch(src, torch.tensor([5, 3]), tgt, torch.tensor([5, 3]))


def test_shapes():
    model = _model()
    b = _batch()
    memory, src_mask = model.encode(b.src, b.src_lengths)
    assert memory.shape == (2, 5, 16) and src_mask.shape == (2, 1, 1, 5) and src_mask.dtype == torch.bool
    assert model(b.src, b.src_lengths, b.tgt[:, :-1]).shape == (2, 4, 9)
    w = model.cross_attention_weights(b.src, b.src_lengths, b.tgt[:, :-1])
    assert w.shape == (1, 2, 2, 4, 5)
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 2, 2, 4))
    assert (w[:, 1, :, :, 3:] == 0).all()  # no attention to source padding


def test_padding_invariance_of_encoder_and_decoder():
    model = _model().eval()
    b = _batch()
    src2 = b.src.clone()
    src2[1, 3:] = 7  # overwrite the padding of row 1 with real-looking tokens
    mem1, _ = model.encode(b.src, b.src_lengths)
    mem2, _ = model.encode(src2, b.src_lengths)
    assert torch.equal(mem1[1, :3], mem2[1, :3]) and torch.equal(mem1[0], mem2[0])
    out1 = model(b.src, b.src_lengths, b.tgt[:, :-1])
    out2 = model(src2, b.src_lengths, b.tgt[:, :-1])
    assert torch.equal(out1, out2)


def test_decoder_is_causal():
    model = _model().eval()
    b = _batch()
    tgt2 = b.tgt[:, :-1].clone()
    tgt2[:, 2:] = 8
    a, c = model(b.src, b.src_lengths, b.tgt[:, :-1]), model(b.src, b.src_lengths, tgt2)
    assert torch.equal(a[:, :2], c[:, :2]) and not torch.allclose(a[:, 2:], c[:, 2:])


def test_greedy_decode_stops_at_eos():
    model = _model()
    with torch.no_grad():
        model.out.bias.fill_(-100.0)
        model.out.bias[EOS] = 100.0  # the model always says <eos>
    b = _batch()
    out = model.greedy_decode(b.src, b.src_lengths, max_len=10)
    assert torch.equal(out, torch.full((2, 1), EOS))


def test_exact_match_and_truncation():
    pred = torch.tensor([[3, 4, EOS, 5], [3, 4, 5, EOS], [3, EOS, PAD, PAD]])
    target = torch.tensor([[3, 4, EOS], [3, 4, EOS], [3, EOS, PAD]])
    assert torch.equal(truncate_after_eos(pred, EOS, PAD)[0], torch.tensor([3, 4, EOS, PAD]))
    assert exact_match(pred, target, EOS, PAD).tolist() == [True, False, True]


def _reverse_pairs(n, seed=0):
    """Reverse a string of 1-4 symbols from {3..8}: target lengths vary, so <eos> placement matters."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        k = int(torch.randint(1, 5, (1,), generator=g))
        s = torch.randint(3, 9, (k,), generator=g)
        items.append((torch.cat([s, torch.tensor([EOS])]), torch.cat([torch.tensor([BOS]), s.flip(0), torch.tensor([EOS])])))
    return items


def test_tiny_overfit_then_greedy_decoding_reproduces_the_targets():
    model = _model(d_model=32, n_heads=4, lr=3e-3)
    batch = collate_pairs(_reverse_pairs(16), pad_id=PAD)
    opt = model.configure_optimizers()["optimizer"]
    for _ in range(150):
        loss = model._loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    model.eval()
    pred = model.greedy_decode(batch.src, batch.src_lengths, max_len=8)
    assert exact_match(pred, batch.tgt[:, 1:], EOS, PAD).all()
    # after its <eos>, every row holds only padding
    for row, n in zip(pred, batch.tgt_lengths - 1, strict=True):
        assert row[n - 1] == EOS and (row[n:] == PAD).all()


def test_validation_logs_exact_match_through_lightning():
    model = _model()
    data = torch.utils.data.DataLoader(_reverse_pairs(8), batch_size=4, collate_fn=collate_pairs)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    metrics = trainer.validate(model, data, verbose=False)[0]
    assert {"val_loss", "val_exact_match"} <= set(metrics)
    assert 0.0 <= metrics["val_exact_match"] <= 1.0


def test_fit_with_a_csv_logger_then_the_loss_curve_is_drawn(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    dm = DatesDataModule(n_train=64, n_val=16, n_test=16, batch_size=16)
    model = _model(src_vocab_size=dm.src_vocab_size, tgt_vocab_size=dm.tgt_vocab_size)
    trainer = L.Trainer(max_steps=4, val_check_interval=2, log_every_n_steps=1, logger=CSVLogger(tmp_path),
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu")
    trainer.fit(model, dm)
    assert "val_exact_match" in trainer.callback_metrics
    written = save_seq2seq_figures(model, dm, tmp_path / "figures")
    assert (tmp_path / "figures" / "loss.png") in written


def test_cpu_autocast_float16_forward_is_finite_and_loss_float32():
    model = _model()
    b = _batch()
    with torch.autocast("cpu", dtype=torch.float16):
        logits = model(b.src, b.src_lengths, b.tgt[:, :-1], b.tgt_lengths - 1)
        loss = model._loss(b)
    assert logits.dtype == torch.float16 and torch.isfinite(logits).all()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_linked_attributes_exist_on_dates_data_and_figures_are_written(tmp_path):
    dm = DatesDataModule(n_train=50, n_val=20, n_test=20, batch_size=8)
    params = inspect.signature(TransformerSeq2Seq.__init__).parameters
    kwargs = {name: getattr(dm, name) for name in TransformerSeq2Seq.linked_from_data}
    assert set(kwargs) <= set(params)
    torch.manual_seed(0)
    model = TransformerSeq2Seq(**kwargs, d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1)
    written = save_seq2seq_figures(model, dm, tmp_path)
    assert {p.name for p in written} >= {"translations.txt", "cross_attention.png"}
    assert "exact" in (tmp_path / "translations.txt").read_text()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_16_mixed_training_on_gpu_is_finite():
    model = _model(d_model=32, n_heads=4)
    data = torch.utils.data.DataLoader(_reverse_pairs(64), batch_size=8, collate_fn=collate_pairs)
    trainer = L.Trainer(accelerator="gpu", devices=1, precision="16-mixed", max_steps=20, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(model, data)
    assert torch.isfinite(trainer.callback_metrics["train_loss"])
    assert all(torch.isfinite(p).all() for p in model.parameters())


class _StudentStyleAttention(torch.nn.Module):
    """Lab 03's class as a student writes it: forward(query, key, value, mask=None) only, weights kept."""

    calls = 0

    def __init__(self, d_model, n_heads):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (torch.nn.Linear(d_model, d_model) for _ in range(4))
        self.last_weights = None

    def _split(self, x):
        return x.view(x.shape[0], x.shape[1], self.n_heads, self.d_head).transpose(1, 2)

    def forward(self, query, key, value, mask=None):
        type(self).calls += 1
        q, k, v = self._split(self.q_proj(query)), self._split(self.k_proj(key)), self._split(self.v_proj(value))
        out, self.last_weights = scaled_dot_product_attention(q, k, v, mask)
        return self.out_proj(out.transpose(1, 2).reshape(query.shape))


def test_injected_parts_are_the_ones_the_model_runs_and_give_the_same_function():
    """A student's attention layer, masks and positions (lab 03) wire into the model: each is called,
    and with genlab's own versions inside they compute what genlab's MultiHeadAttention model does."""
    called = set()

    def spy(name, fn):
        def wrapped(*args):
            called.add(name)
            return fn(*args)
        return wrapped

    injected = _model(attention_layer=_StudentStyleAttention, causal_mask=spy("causal", causal_mask),
                      combine_masks=spy("combine", combine_masks),
                      positions=spy("positions", sinusoidal_positions)).eval()
    reference = _model(attention=scaled_dot_product_attention).eval()
    reference.load_state_dict(injected.state_dict())
    b = _batch()
    out = injected(b.src, b.src_lengths, b.tgt[:, :-1], b.tgt_lengths - 1)
    torch.testing.assert_close(out, reference(b.src, b.src_lengths, b.tgt[:, :-1], b.tgt_lengths - 1))
    assert called == {"causal", "combine", "positions"} and _StudentStyleAttention.calls == 3  # enc self, dec self, cross
    weights = injected.cross_attention_weights(b.src, b.src_lengths, b.tgt[:, :-1])
    assert weights.shape == (1, 2, 2, 4, 5) and (weights[:, 1, :, :, 3:] == 0).all()


def test_torchs_own_layers_need_no_graded_part_and_train():
    """attention_layer=TorchMultiHeadAttention (what lab 02's notebook passes: the student build has
    no genlab MultiHeadAttention) builds every layer from torch's, and the model still learns."""
    model = _model(attention_layer=TorchMultiHeadAttention)
    layers = [m for m in model.modules() if isinstance(m, (MultiHeadAttention, TorchMultiHeadAttention))]
    assert len(layers) == 3 and all(isinstance(m, TorchMultiHeadAttention) for m in layers)
    assert all(isinstance(m, MultiHeadAttention) for m in _model().modules()
               if isinstance(m, (MultiHeadAttention, TorchMultiHeadAttention)))   # the default: genlab's
    b = _batch()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss = model._loss(b)
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.5 * first
    weights = model.cross_attention_weights(b.src, b.src_lengths, b.tgt[:, :-1])
    assert weights.shape == (1, 2, 2, 4, 5) and (weights[:, 1, :, :, 3:] == 0).all()


def test_a_position_table_of_the_wrong_shape_is_named():
    with pytest.raises(ValueError, match=r"position table for T=64, d=16 must be a float tensor of shape \(64, 16\)"):
        _model(positions=lambda T, d: torch.zeros(d, T))
