"""The figure writers of lab 03's models (``genlab fit gpt`` / ``transformer``)."""
from genlab.models import GPT
from genlab.plots.transformer import save_gpt_figures


def test_save_figures_writes_samples_and_attention(tmp_path):
    from genlab.data import CharTextDataModule

    dm = CharTextDataModule(block_size=16, batch_size=2)
    model = GPT(dm.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16)
    written = save_gpt_figures(model, dm, tmp_path)
    names = {p.name for p in written}
    assert {"samples.txt", "attention.png"} <= names
    text = (tmp_path / "samples.txt").read_text()
    assert text.count("temperature") == 3
    assert all(p.stat().st_size > 0 for p in written)
