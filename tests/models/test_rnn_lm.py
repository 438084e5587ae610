"""RNNLanguageModel: cells, weight tying, truncated BPTT in the module, evaluation, generation."""
import math

import lightning as L
import pytest
import torch
from torch import nn

from genlab.data import CharTextDataModule
from genlab.decoding import sample_next
from genlab.lm import lm_loss, tbptt_step
from genlab.models.rnn_lm import RNNLanguageModel, count_rnn_lm_parameters, hidden_size_for_budget
from genlab.nn.rnn import LSTMCell, grad_fn_depth

TEXT = ("the students opened their books. she found the printer was out of toner. "
        "she bought more toner and installed the toner. she finally printed her essay. ") * 12


def _tiny(**kw):
    torch.manual_seed(0)
    args = dict(vocab_size=30, embedding_dim=8, hidden_size=12, lr=1e-2)
    return RNNLanguageModel(**{**args, **kw})


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", LSTMCell, nn.GRUCell])
def test_forward_shapes_and_state_for_every_cell(cell):
    model = _tiny(cell=cell, num_layers=2, dropout=0.1)
    x = torch.randint(30, (3, 7))
    logits, hidden = model(x)
    assert logits.shape == (3, 7, 30)
    parts = hidden if isinstance(hidden, tuple) else (hidden,)
    assert all(p.shape == (2, 3, 12) for p in parts)
    model.eval()
    a, h = model(x[:, :4])
    b, _ = model(x[:, 4:], h)
    torch.testing.assert_close(torch.cat([a, b], 1), model(x)[0], atol=1e-5, rtol=1e-4)  # carrying = one pass


def test_genlab_lstm_cell_gives_the_same_model_as_torch_lstm():
    fused, looped = _tiny(cell="lstm"), _tiny(cell=LSTMCell)
    state = fused.state_dict()
    state = {k.replace("rnn.rnn.", "rnn.cells.0.").removesuffix("_l0"): v for k, v in state.items()}
    looped.load_state_dict(state)
    x = torch.randint(30, (2, 9))
    torch.testing.assert_close(fused(x)[0], looped(x)[0], atol=1e-5, rtol=1e-4)
    assert looped.hparams.cell == "LSTMCell" and fused.hparams.cell == "lstm"


@pytest.mark.parametrize("cell, E, H, layers, tie", [("lstm", 8, 12, 1, False), ("gru", 5, 7, 2, False),
                                                     ("rnn", 16, 16, 3, True), ("lstm", 64, 256, 1, False)])
def test_parameter_formula_equals_the_module(cell, E, H, layers, tie):
    model = RNNLanguageModel(30, cell=cell, embedding_dim=E, hidden_size=H, num_layers=layers, tie_weights=tie)
    assert count_rnn_lm_parameters(30, cell, E, H, layers, tie) == sum(p.numel() for p in model.parameters())
    H_fit = hidden_size_for_budget(25_000, 30, cell, E)
    assert abs(count_rnn_lm_parameters(30, cell, E, H_fit) - 25_000) <= abs(
        count_rnn_lm_parameters(30, cell, E, H_fit + 1) - 25_000)


def test_weight_tying_shares_the_matrix_and_needs_equal_sizes():
    model = _tiny(embedding_dim=12, tie_weights=True)
    assert model.head.weight is model.embedding.weight
    with pytest.raises(ValueError, match="embedding_dim equal to hidden_size"):
        _tiny(embedding_dim=8, tie_weights=True)


def test_bad_inputs_are_clear_errors():
    model = _tiny()
    with pytest.raises(ValueError, match="integer token ids"):
        model(torch.randn(2, 3))
    _, h = model(torch.randint(30, (2, 3)))
    with pytest.raises(ValueError, match="hidden=None"):
        model(torch.randint(30, (3, 3)), h)


# ------------------------------------------------------------------ training with a Trainer

def _data(tmp_path, mode="streams", batch_size=4, block_size=16):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return CharTextDataModule(path=path, block_size=block_size, batch_size=batch_size, mode=mode,
                              val_fraction=0.2, test_fraction=0.1)


class Recorder:
    """A step_fn that records what the model handed it, then runs genlab's tbptt_step."""

    def __init__(self):
        self.calls = []  # (epoch, batch_idx, hidden was None, incoming grad_fn depth)

    def __call__(self, model, batch, hidden):
        self.calls.append((model.current_epoch, model.trainer.fit_loop.epoch_loop.batch_idx, hidden is None,
                           grad_fn_depth(hidden)))
        return tbptt_step(model, batch, hidden, loss_fn=model.loss_fn)


def _trainer(tmp_path, **kw):
    args = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=str(tmp_path),
                gradient_clip_val=1.0)
    return L.Trainer(**{**args, **kw})


def test_state_is_carried_detached_and_reset_at_each_epoch(tmp_path):
    data = _data(tmp_path)
    recorder = Recorder()
    model = RNNLanguageModel(data.vocab_size, embedding_dim=8, hidden_size=12, step_fn=recorder)
    _trainer(tmp_path, max_epochs=3, limit_val_batches=0).fit(model, datamodule=data)
    batches = len(data.train_dataloader())
    assert len(recorder.calls) == 3 * batches and batches >= 3
    for epoch, batch_idx, was_none, depth in recorder.calls:
        assert was_none == (batch_idx == 0), (epoch, batch_idx)  # zeros exactly at each epoch's start
        assert depth == 0  # what is carried in is detached
    assert grad_fn_depth(model._train_hidden) == 0


def test_training_lowers_the_loss_and_logs_perplexity(tmp_path):
    data = _data(tmp_path)
    torch.manual_seed(0)
    model = RNNLanguageModel(data.vocab_size, embedding_dim=16, hidden_size=32, lr=1e-2)
    trainer = _trainer(tmp_path, max_epochs=12, val_check_interval=1.0)
    before = _val_loss_by_hand(model, data)
    trainer.fit(model, datamodule=data)
    metrics = trainer.callback_metrics
    val = float(metrics["val_loss"])
    assert val < before - 0.5
    assert math.isclose(float(metrics["val_ppl"]), math.exp(val), rel_tol=1e-4)
    assert math.isclose(val, _val_loss_by_hand(model, data), rel_tol=1e-4)  # from zeros, token-weighted
    assert "train_ppl" in metrics


def _val_loss_by_hand(model, data):
    """Mean loss over every validation token, the state carried from zeros through the windows."""
    model.eval()
    total, count, hidden = 0.0, 0, None
    with torch.no_grad():
        for x, y in data.val_dataloader():
            logits, hidden = model(x, hidden)
            total += float(lm_loss(logits, y)) * y.numel()
            count += y.numel()
    model.train()
    return total / count


def test_evaluation_starts_from_zeros_and_leaves_the_training_state_alone(tmp_path):
    data = _data(tmp_path)
    seen = []

    class Spy(RNNLanguageModel):
        def validation_step(self, batch, batch_idx):
            seen.append((batch_idx, self._eval_hidden is None))
            super().validation_step(batch, batch_idx)

    model = Spy(data.vocab_size, embedding_dim=8, hidden_size=12)
    trainer = _trainer(tmp_path, max_steps=6, val_check_interval=3, check_val_every_n_epoch=None)
    trainer.fit(model, datamodule=data)
    assert [s for s in seen if s[0] == 0] and all(was_none == (i == 0) for i, was_none in seen)
    assert model._train_hidden is not None


def test_windows_mode_is_refused(tmp_path):
    data = _data(tmp_path, mode="windows")
    model = RNNLanguageModel(data.vocab_size, embedding_dim=8, hidden_size=12)
    with pytest.raises(ValueError, match="mode='streams'"):
        _trainer(tmp_path, max_steps=1).fit(model, datamodule=data)


def test_custom_loss_and_step_are_used(tmp_path):
    data = _data(tmp_path)
    calls = {"loss": 0}

    def my_loss(logits, targets):
        calls["loss"] += 1
        return lm_loss(logits, targets)

    model = RNNLanguageModel(data.vocab_size, embedding_dim=8, hidden_size=12, loss_fn=my_loss)
    _trainer(tmp_path, max_steps=2, limit_val_batches=1, val_check_interval=2).fit(model, datamodule=data)
    assert calls["loss"] >= 3  # two training steps through tbptt_step, one validation window


# ------------------------------------------------------------------ generation and inspection

def test_generate_primes_then_samples_reproducibly():
    model = _tiny()
    prompt = torch.randint(30, (2, 5))
    a = model.generate(prompt, 12, generator=torch.Generator().manual_seed(1))
    b = model.generate(prompt, 12, generator=torch.Generator().manual_seed(1))
    assert a.shape == (2, 17) and torch.equal(a, b) and torch.equal(a[:, :5], prompt)
    greedy = model.generate(prompt, 6, temperature=0)
    model.eval()
    ids, hidden = prompt, None
    logits, hidden = model(ids)
    for _ in range(6):  # greedy by hand: argmax, feed back with the carried state
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], 1)
        logits, hidden = model(nxt, hidden)
    assert torch.equal(greedy, ids)
    used = []

    def sampler(logits, temperature, top_k, top_p, generator):
        used.append((logits.shape, temperature, top_k, top_p))
        return sample_next(logits, temperature, top_k, top_p, generator)

    model.generate(prompt, 3, temperature=0.7, top_k=5, top_p=0.9, sampler=sampler)
    assert used == [((2, 30), 0.7, 5, 0.9)] * 3


def test_sample_text_checks_the_prime():
    from genlab.data.vocab import Vocab

    vocab = Vocab(sorted(set(TEXT)))
    model = RNNLanguageModel(len(vocab), embedding_dim=8, hidden_size=12)
    text = model.sample_text(vocab, "she ", 20, generator=torch.Generator().manual_seed(0))
    assert text.startswith("she ") and len(text) == 24
    with pytest.raises(ValueError, match="does not know"):
        model.sample_text(vocab, "ZZ", 5)
    with pytest.raises(ValueError, match="non-empty"):
        model.sample_text(vocab, "", 5)


@pytest.mark.parametrize("cell", ["lstm", LSTMCell])
def test_gate_trace_reproduces_the_lstm_outputs(cell):
    model = _tiny(cell=cell)
    model.eval()
    ids = torch.randint(30, (10,))
    trace = model.gate_trace(ids)
    out, _ = model.rnn(model.embedding(ids.view(1, -1)))
    torch.testing.assert_close(trace["h"], out[0], atol=1e-5, rtol=1e-4)
    for gate in "ifo":
        assert ((trace[gate] > 0) & (trace[gate] < 1)).all()
    with pytest.raises(ValueError, match="LSTM"):
        _tiny(cell="gru").gate_trace(ids)


def test_state_gradient_norms_match_autograd_through_the_unrolled_model():
    model = _tiny(cell="rnn")
    ids = torch.randint(30, (12,))
    norms = model.state_gradient_norms(ids)
    assert norms.shape == (11,) and (norms >= 0).all() and norms[-1] > 0
    assert all(p.grad is None for p in model.parameters())  # nothing left behind
    # the last state feeds the last prediction directly: compare with a hand computation
    model.eval()
    _, hidden = model(ids[:10].view(1, -1))
    h = hidden.detach().requires_grad_(True)
    logits, _ = model(ids[10].view(1, 1), h)
    lm_loss(logits, ids[11].view(1, 1)).backward()
    assert math.isclose(float(norms[-2]), float(h.grad[-1].norm()), rel_tol=1e-4)


def test_run_figures_and_lab_figures_are_written_with_labels(tmp_path):
    from genlab.data.vocab import Vocab
    from genlab.plots import rnn as rnn_plots

    class Data:
        vocab = Vocab(sorted(set(TEXT + "TRN.\"")))

    model = RNNLanguageModel(len(Data.vocab), embedding_dim=8, hidden_size=12)
    written = rnn_plots.save_run_figures(model, Data(), tmp_path)
    assert {p.name for p in written} == {"samples.txt", "gates.png"}  # no CSV log: no loss.png
    assert "temperature 1.5" in (tmp_path / "samples.txt").read_text(encoding="utf-8")
    gru = RNNLanguageModel(len(Data.vocab), cell="gru", embedding_dim=8, hidden_size=12)
    assert [p.name for p in rnn_plots.save_run_figures(gru, Data(), tmp_path / "gru")] == ["samples.txt"]
    figures = [
        rnn_plots.gradient_through_time_figure({"a": torch.rand(5), "b": torch.rand(5)}),
        rnn_plots.memory_figure([1, 2, 4], {"RNN": [1.0, 0.5, 0.1]}, 0.125, context={"RNN": 3}),
        rnn_plots.loss_vs_time_figure({"LSTM": ([1, 2], [2.0, 1.5])}),
        rnn_plots.temperature_figure(torch.randn(10), list("abcdefghij")),
    ]
    for fig in figures:
        for ax in fig.axes[:1]:
            assert ax.get_xlabel() and ax.get_ylabel() and (ax.get_title() or fig._suptitle is not None)
