"""The recall task: the key sits exactly N characters before the question, nothing else is predictable."""
import pytest
import torch
from torch import nn

from genlab.data.recall import RecallTask, recall_accuracy, train_recall


def test_the_key_sits_exactly_n_characters_before_the_question():
    task = RecallTask(max_distance=20)
    g = torch.Generator().manual_seed(0)
    d = torch.tensor([1, 5, 20, 13])
    x, answers = task.sample(d, g)
    assert x.shape == (4, 22) and x.dtype == answers.dtype == torch.long
    keys = set(task.vocab.encode(task.keys).tolist())
    for b in range(4):
        row = x[b].tolist()
        assert row[-1] == task.vocab.stoi["?"]
        key_positions = [t for t, i in enumerate(row) if i in keys]
        assert key_positions == [22 - 2 - int(d[b])]  # exactly one key, N fillers before the question
        assert row[key_positions[0]] == int(answers[b])
    text = task.render(x[0])
    assert text.endswith("?") and len(text) == 22


def test_batches_mix_distances_and_are_reproducible():
    task = RecallTask(max_distance=32)
    x1, a1, d1 = task.batch(512, torch.Generator().manual_seed(3))
    x2, a2, d2 = task.batch(512, torch.Generator().manual_seed(3))
    assert torch.equal(x1, x2) and torch.equal(a1, a2) and torch.equal(d1, d2)
    assert int(d1.min()) == 1 and int(d1.max()) <= 32 and (d1 > 16).any()
    assert (d1 <= 2).float().mean() > 0.1  # log-uniform: short gaps are common
    counts = torch.bincount(a1, minlength=task.vocab_size)[task.vocab.encode(task.keys)]
    assert (counts > 30).all()  # every key is used
    assert task.chance == pytest.approx(1 / 8)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="share"):
        RecallTask(keys="ab", fillers="bc")
    with pytest.raises(ValueError, match="distances"):
        RecallTask(max_distance=4).sample([5])
    with pytest.raises(ValueError, match="distances"):
        RecallTask(max_distance=4).sample([0])


class _LastTokenLookup(nn.Module):
    """Sees only a fixed position: it can answer for exactly one distance."""

    def __init__(self, V, position):
        super().__init__()
        self.emb, self.position = nn.Embedding(V, V), position

    def forward(self, x):
        out = self.emb(x[:, self.position])[:, None, :]
        return out.expand(x.shape[0], x.shape[1], -1)


def test_training_and_accuracy_by_distance():
    torch.manual_seed(0)
    task = RecallTask(max_distance=6)
    model = _LastTokenLookup(task.vocab_size, position=task.seq_len - 2 - 3)  # looks 3 back
    losses = train_recall(model, task, steps=150, batch_size=64, lr=0.1)
    assert losses[-1] < losses[0]
    acc = recall_accuracy(model, task, [1, 2, 3, 4, 5, 6], n_per_distance=200)
    assert acc.shape == (6,) and acc.dtype == torch.float32
    assert acc[2] > 0.95  # the one distance it can see
    assert (acc[[0, 1, 3, 4, 5]] < 0.35).all()  # the others are guesses (chance 1/8)
