"""Seq2SeqAttention: shapes, losses, injected parts, decoding, precision, and real short runs
(dates, and an English-Korean TSV in the manythings.org/Tatoeba layout)."""
import math

import lightning as L
import pytest
import torch

from genlab.data import DatesDataModule, ParallelTextDataModule
from genlab.models.seq2seq import Seq2SeqAttention, encode_sources
from genlab.nn.rnn_seq2seq import decoder_step
from genlab.search import beam_search, greedy_search

# Tatoeba pairs as manythings.org/anki exports them: English, Korean, attribution.
EN_KO = [
    ("Hi.", "안녕."), ("Run!", "뛰어!"), ("Who?", "누구?"), ("Wait!", "기다려!"), ("Thanks.", "고마워."),
    ("I see.", "알겠어."), ("I won.", "내가 이겼어."), ("Help me.", "도와줘."), ("Come in.", "들어와."),
    ("I agree.", "동의해."), ("I'm sad.", "나는 슬퍼."), ("I'm tired.", "나는 피곤해."), ("Be quiet.", "조용히 해."),
    ("I'm a student.", "나는 학생이야."), ("I like tea.", "나는 차를 좋아해."), ("I like music.", "나는 음악을 좋아해."),
    ("I love you.", "사랑해."), ("How are you?", "어떻게 지내?"), ("It's raining.", "비가 와."),
    ("How is the weather today?", "오늘 날씨가 어때?"), ("It's cold today.", "오늘은 추워."),
    ("I'm hungry.", "나는 배고파."), ("I'm happy.", "나는 행복해."), ("Tom is a student.", "톰은 학생이야."),
    ("Tom likes tea.", "톰은 차를 좋아해."), ("Tom is tired.", "톰은 피곤해."), ("I read a book.", "나는 책을 읽어."),
    ("Tom reads a book.", "톰은 책을 읽어."), ("I'm a teacher.", "나는 선생님이야."), ("Tom is happy.", "톰은 행복해."),
]


def write_en_ko_tsv(path):
    """A small English-Korean file in the manythings.org layout (a third, ignored column)."""
    lines = [f"{en}\t{ko}\tCC-BY 2.0 (France) Attribution: tatoeba.org #{1000 + i}" for i, (en, ko) in
             enumerate(EN_KO)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _dates(n_train=256, batch_size=32):
    dm = DatesDataModule(n_train=n_train, n_val=64, n_test=64, batch_size=batch_size, seed=0)
    dm.setup()
    return dm


def _model(dm, **kwargs):
    torch.manual_seed(0)
    kwargs = {"emb_size": 16, "hidden_size": 16, "decoder_size": 24, "attention_size": 12, **kwargs}
    return Seq2SeqAttention(**{n: getattr(dm, n) for n in Seq2SeqAttention.linked_from_data}, **kwargs)


def _fit(model, dm, steps, **trainer_kwargs):
    trainer = L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0,
                        val_check_interval=steps, check_val_every_n_epoch=None, **trainer_kwargs)
    trainer.fit(model, datamodule=dm)
    return trainer


@pytest.mark.parametrize("attention", ["additive", "dot", "none"])
def test_forward_shapes_and_float32_loss(attention):
    dm = _dates()
    model = _model(dm, attention=attention)
    batch = next(iter(dm.train_dataloader()))
    logits, weights = model(batch.src, batch.src_lengths, batch.tgt)
    B, T = batch.tgt.shape
    assert logits.shape == (B, T - 1, dm.tgt_vocab_size)
    if attention == "none":
        assert weights is None
    else:
        assert weights.shape == (B, T - 1, batch.src.shape[1])
        real = torch.arange(batch.src.shape[1])[None, :] < batch.src_lengths[:, None]
        assert bool((weights.masked_select(~real[:, None, :].expand_as(weights)) == 0).all())
    loss = model.loss(logits, batch.tgt)
    assert loss.dtype == torch.float32 and loss.dim() == 0
    assert math.isclose(float(loss.detach()), math.log(dm.tgt_vocab_size), rel_tol=0.25)  # untrained: about ln V


def test_loss_ignores_padding_and_predicts_the_shifted_target():
    dm = _dates()
    model = _model(dm)
    batch = next(iter(dm.train_dataloader()))
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt)
    want = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.tgt[:, 1:].reshape(-1),
                                             ignore_index=dm.pad_id)
    torch.testing.assert_close(model.loss(logits, batch.tgt), want)


def test_padding_invariance_of_the_whole_model():
    dm = _dates()
    model = _model(dm).eval()
    batch = next(iter(dm.val_dataloader()))
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt)
    src = torch.cat([batch.src, torch.full((batch.src.shape[0], 6), dm.pad_id)], dim=1)
    logits2, _ = model(src, batch.src_lengths, batch.tgt)
    torch.testing.assert_close(logits2, logits)


def test_an_injected_decoder_step_is_what_trains():
    calls = []

    def my_step(decoder, prev_token, state, memory, src_mask):
        calls.append(prev_token.shape[0])
        return decoder_step(decoder, prev_token, state, memory, src_mask)

    dm = _dates()
    model = _model(dm, decoder_step=my_step)
    reference = _model(dm)
    batch = next(iter(dm.train_dataloader()))
    got, _ = model(batch.src, batch.src_lengths, batch.tgt)
    want, _ = reference(batch.src, batch.src_lengths, batch.tgt)
    torch.testing.assert_close(got, want)  # same seed, same weights, same function
    assert len(calls) == batch.tgt.shape[1] - 1
    model.greedy_decode(batch.src, batch.src_lengths, max_len=3)
    assert len(calls) > batch.tgt.shape[1] - 1  # decoding uses it too


def test_decoding_matches_genlab_search_and_beam_one_is_greedy():
    dm = _dates()
    model = _model(dm).eval()
    batch = next(iter(dm.val_dataloader()))
    step, state = model.search_step(batch.src, batch.src_lengths)
    direct = greedy_search(step, state, dm.bos_id, dm.eos_id, 12, dm.pad_id)
    assert torch.equal(model.greedy_decode(batch.src, batch.src_lengths, max_len=12), direct)
    beam1, _ = model.beam_decode(batch.src, batch.src_lengths, width=1, max_len=12)
    assert torch.equal(beam1, direct[:, : beam1.shape[1]])
    tokens, scores = beam_search(step, state, dm.bos_id, dm.eos_id, 12, 4, 1.0, dm.pad_id)
    tokens2, scores2 = model.beam_decode(batch.src, batch.src_lengths, width=4, max_len=12)
    assert torch.equal(tokens, tokens2) and torch.allclose(scores, scores2)


def test_training_on_dates_learns_and_logs_every_metric():
    torch.set_num_threads(2)
    L.seed_everything(0, verbose=False)
    dm = _dates(n_train=2000, batch_size=64)
    model = _model(dm, emb_size=32, hidden_size=32, decoder_size=64, attention_size=32, lr=6e-3, warmup_steps=20)
    trainer = _fit(model, dm, 150, gradient_clip_val=1.0)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert {"train_loss", "val_loss", "val_exact_match", "val_char_accuracy", "val_bleu"} <= set(metrics)
    assert metrics["val_loss"] < 0.5 and metrics["val_char_accuracy"] > 0.8, metrics
    test = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert {"test_exact_match", "test_char_accuracy", "test_bleu"} <= set(test)
    out = model.translate(["3 March 2021", "2021년 3월 3일"], dm)
    assert all(isinstance(s, str) for s in out)


def test_teacher_forcing_ratio_below_one_trains():
    dm = _dates()
    model = _model(dm, teacher_forcing_ratio=0.5)
    trainer = _fit(model, dm, 3, limit_val_batches=1)
    assert math.isfinite(float(trainer.callback_metrics["train_loss"]))
    with pytest.raises(ValueError, match="teacher_forcing_ratio"):
        _model(dm, teacher_forcing_ratio=2.0)
    with pytest.raises(ValueError, match="attention"):
        _model(dm, attention="luong")


def test_float16_emulated_on_cpu_stays_finite():
    dm = _dates()
    model = _model(dm)
    batch = next(iter(dm.train_dataloader()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, weights = model(batch.src, batch.src_lengths, batch.tgt)
        loss = model.loss(logits, batch.tgt)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    half = _model(dm).half()
    logits16, weights16 = half(batch.src, batch.src_lengths, batch.tgt)
    assert logits16.dtype == torch.float16
    assert torch.isfinite(logits16).all() and torch.isfinite(weights16).all()
    assert torch.isfinite(half.loss(logits16, batch.tgt))


@pytest.mark.gpu
def test_16_mixed_on_gpu_stays_finite():
    dm = _dates()
    model = _model(dm)
    trainer = L.Trainer(max_steps=20, accelerator="gpu", devices=1, precision="16-mixed", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=1,
                        num_sanity_val_steps=0, val_check_interval=20, check_val_every_n_epoch=None)
    trainer.fit(model, datamodule=dm)
    assert math.isfinite(float(trainer.callback_metrics["train_loss"]))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_english_korean_tsv_run(tmp_path):
    """The README's Tatoeba-style run, shrunk: word tokens, BLEU with sacrebleu's 13a tokenizer."""
    path = write_en_ko_tsv(tmp_path / "kor.txt")
    dm = ParallelTextDataModule(path, tokens="word", lowercase=True, batch_size=8, val_fraction=0.2,
                                test_fraction=0.1, seed=0)
    model = _model(dm, bleu_tokenize="13a", lr=1e-2)
    trainer = _fit(model, dm, 30)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert "val_bleu" in metrics and 0.0 <= metrics["val_bleu"] <= 100.0
    out = model.translate(["I like tea."], dm, width=3)
    assert isinstance(out[0], str)
    src, lengths = encode_sources(["i like tea ."], dm)
    assert src.shape == (1, 5) and int(lengths[0]) == 5


def test_registered_for_genlab_fit_with_figures(tmp_path):
    from genlab import training
    from genlab.plots.seq2seq import save_run_figures

    entry = training.entry("seq2seq")
    assert entry.model_class is Seq2SeqAttention and entry.config_path.is_file()
    config = training.load_config("seq2seq")
    assert set(config["model"]) <= set(Seq2SeqAttention.__init__.__code__.co_varnames)
    dm = _dates()
    model = _model(dm)
    written = save_run_figures(model, dm, tmp_path)
    assert {p.name for p in written} == {"translations.txt", "alignment.png"}
    assert "beam 4" in (tmp_path / "translations.txt").read_text(encoding="utf-8")


def test_every_injected_part_is_the_one_the_model_runs():
    """teacher_forcing, sequence_loss, greedy_search and beam_search (a student's, lab 02) replace
    genlab's in training, decoding and translation; with genlab's own inside, the results are equal."""
    from genlab.nn.rnn_seq2seq import sequence_loss, teacher_forced_logits

    dm = _dates()
    called = set()

    def spy(name, fn):
        def wrapped(*args, **kwargs):
            called.add(name)
            return fn(*args, **kwargs)
        return wrapped

    def teacher_forcing(decoder, tgt, state, memory, src_mask):   # lab 02's signature: no ratio
        return teacher_forced_logits(decoder, tgt, state, memory, src_mask, step=decoder_step)

    injected = _model(dm, decoder_step=decoder_step, teacher_forcing=spy("teacher_forcing", teacher_forcing),
                      sequence_loss=spy("sequence_loss", sequence_loss), greedy_search=spy("greedy", greedy_search),
                      beam_search=spy("beam", beam_search)).eval()
    plain = _model(dm).eval()
    plain.load_state_dict(injected.state_dict())
    batch = next(iter(dm.val_dataloader()))
    with torch.no_grad():
        for model in (injected, plain):
            logits, weights = model(batch.src, batch.src_lengths, batch.tgt)
            model.results = (logits, weights, model.loss(logits, batch.tgt),
                             model.greedy_decode(batch.src, batch.src_lengths),
                             model.beam_decode(batch.src, batch.src_lengths, width=2)[0])
    for got, want in zip(injected.results, plain.results, strict=True):
        torch.testing.assert_close(got, want)
    assert called == {"teacher_forcing", "sequence_loss", "greedy", "beam"}
    assert injected.translate(["3 March 2021"], dm) == plain.translate(["3 March 2021"], dm)


def test_a_teacher_forcing_part_needs_a_ratio_of_one():
    with pytest.raises(ValueError, match="teacher_forcing_ratio=1.0"):
        _model(_dates(), teacher_forcing=lambda *a: None, teacher_forcing_ratio=0.5)
