"""TransformerSeq2Seq: shapes, masking, greedy decoding, a tiny overfit, logging, figures."""
import inspect

import lightning as L
import pytest
import torch

from genlab.data import DatesDataModule, PairBatch, collate_pairs
from genlab.models import TransformerSeq2Seq
from genlab.models.transformer_seq2seq import exact_match, truncate_after_eos
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
