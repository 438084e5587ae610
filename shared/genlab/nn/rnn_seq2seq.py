"""A recurrent encoder-decoder: a bidirectional GRU encoder and a GRU decoder with attention.

Shapes: ``B`` batch, ``S`` source length, ``T`` target length (with <bos> and <eos>), ``E``
embedding size, ``H`` encoder hidden size per direction, ``D`` decoder hidden size, ``V``
target vocabulary. ``memory`` is the encoder's states ``h_j``, ``(B, S, 2H)``; ``src_mask``
is bool ``(B, S)``, True for real source tokens.

One decoder step (Bahdanau et al., 2015), from the previous token ``y_{i-1}`` and state
``s_{i-1}``:

    c_i, α_i = attention(s_{i-1}, memory, memory, src_mask)     # the query is s_{i-1}
    s_i      = GRUCell([emb(y_{i-1}); c_i], s_{i-1})
    logits_i = out([s_i; c_i; emb(y_{i-1})])

Teacher forcing feeds the ground truth: the decoder reads ``tgt[:, :-1]`` (starting at <bos>)
and step i predicts ``tgt[:, i + 1]``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from genlab.nn.additive import make_attention

__all__ = ["BiGRUEncoder", "AttentionDecoder", "decoder_step", "teacher_forced_logits", "sequence_loss"]


class BiGRUEncoder(nn.Module):
    """Embedding + one bidirectional GRU layer over the real tokens of each source row.

    Padding never reaches the GRU (packed sequences), so extra pads change nothing.
    """

    def __init__(self, vocab_size: int, emb_size: int, hidden_size: int, pad_id: int = 0, dropout: float = 0.0):
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, emb_size, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(emb_size, hidden_size, batch_first=True, bidirectional=True)

    def forward(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """src ``(B, S)`` long, src_lengths ``(B,)`` (each >= 1).

        Returns ``memory (B, S, 2H)`` (zeros at padding) and ``summary (B, 2H)``: the forward
        direction's last state and the backward direction's first, concatenated.
        """
        if src.dim() != 2:
            raise ValueError(f"BiGRUEncoder: src must have shape (B, S), got {tuple(src.shape)}.")
        lengths = torch.as_tensor(src_lengths).detach().to("cpu", torch.long)
        if lengths.shape != (src.shape[0],) or bool((lengths < 1).any()) or bool((lengths > src.shape[1]).any()):
            raise ValueError(
                f"BiGRUEncoder: src_lengths must hold B={src.shape[0]} lengths in [1, {src.shape[1]}], "
                f"got {lengths.tolist()[:8]}."
            )
        x = self.dropout(self.embedding(src))
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, h_n = self.rnn(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        summary = torch.cat([h_n[0], h_n[1]], dim=-1)  # (B, 2H): forward last, backward first
        return memory, summary


class AttentionDecoder(nn.Module):
    """The parts of the attention decoder; ``decoder_step`` says how they are used.

    Attributes: ``embedding`` (V -> E), ``attention`` (any module with the
    ``AdditiveAttention`` call signature; or give its name, "additive", "dot" or "none", and
    ``attention_size``), ``cell`` (``GRUCell(E + M, D)``), ``out`` (``Linear(D + M + E, V)``),
    ``bridge`` (``Linear(M, D)``: the first state from the encoder's summary). ``M`` = memory
    size (2H).
    """

    def __init__(self, vocab_size: int, emb_size: int, hidden_size: int, memory_size: int,
                 attention: nn.Module | str = "additive", pad_id: int = 0, attention_size: int = 64):
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, emb_size, padding_idx=pad_id)
        self.attention = make_attention(attention, hidden_size, memory_size, attention_size)
        self.cell = nn.GRUCell(emb_size + memory_size, hidden_size)
        self.out = nn.Linear(hidden_size + memory_size + emb_size, vocab_size)
        self.bridge = nn.Linear(memory_size, hidden_size)

    def init_state(self, summary: Tensor) -> Tensor:
        """``s_0 = tanh(bridge(summary))``: ``(B, M) -> (B, D)``."""
        return torch.tanh(self.bridge(summary))


def decoder_step(decoder: AttentionDecoder, prev_token: Tensor, state: Tensor, memory: Tensor,
                 src_mask: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
    """One decoder step: the reference.

    prev_token ``(B,)`` long (``y_{i-1}``), state ``(B, D)`` (``s_{i-1}``), memory
    ``(B, S, M)``, src_mask bool ``(B, S)``. Returns ``logits (B, V)``, the new state
    ``s_i (B, D)`` and the attention weights ``(B, S)`` (None for attention without weights).
    """
    emb = decoder.embedding(prev_token)  # (B, E)
    context, weights = decoder.attention(state, memory, memory, src_mask)  # query: s_{i-1}
    new_state = decoder.cell(torch.cat([emb, context], dim=-1), state)  # s_i
    logits = decoder.out(torch.cat([new_state, context, emb], dim=-1))  # (B, V)
    return logits, new_state, weights


def teacher_forced_logits(decoder: AttentionDecoder, tgt: Tensor, state: Tensor, memory: Tensor,
                          src_mask: Tensor, teacher_forcing_ratio: float = 1.0,
                          generator: torch.Generator | None = None, step=None) -> tuple[Tensor, Tensor | None]:
    """Run the decoder over a target batch; the reference of the training loop.

    tgt ``(B, T)`` = <bos> y_1 ... <eos> <pad>...; state ``s_0 (B, D)``. At step ``i`` the
    input is ``tgt[:, i]`` (teacher forcing) with probability ``teacher_forcing_ratio``, per
    row, drawn with ``generator``; otherwise the model's own previous prediction.
    ``step``: a function with ``decoder_step``'s signature (default: ``decoder_step``).
    Returns ``logits (B, T - 1, V)`` (step i predicts ``tgt[:, i + 1]``) and the weights
    ``(B, T - 1, S)`` (None when the attention gives none).
    """
    if not 0.0 <= float(teacher_forcing_ratio) <= 1.0:
        raise ValueError(f"teacher_forcing_ratio must be in [0, 1], got {teacher_forcing_ratio}.")
    if tgt.dim() != 2 or tgt.shape[1] < 2:
        raise ValueError(f"tgt must have shape (B, T) with T >= 2 (<bos> ... <eos>), got {tuple(tgt.shape)}.")
    if step is None and float(teacher_forcing_ratio) == 1.0 and hasattr(decoder.attention, "project_keys"):
        return _fast_teacher_forcing(decoder, tgt, state, memory, src_mask)
    step = decoder_step if step is None else step
    logits, weights = [], []
    token = tgt[:, 0]
    for i in range(tgt.shape[1] - 1):
        step_logits, state, w = step(decoder, token, state, memory, src_mask)
        logits.append(step_logits)
        weights.append(w)
        if i + 1 < tgt.shape[1] - 1:
            token = tgt[:, i + 1]
            if teacher_forcing_ratio < 1.0:
                use_truth = torch.rand(tgt.shape[0], generator=generator, device="cpu") < teacher_forcing_ratio
                own = step_logits.detach().argmax(dim=-1)
                token = torch.where(use_truth.to(tgt.device), token, own)
    stacked = None if any(w is None for w in weights) else torch.stack(weights, dim=1)
    return torch.stack(logits, dim=1), stacked


def sequence_loss(logits: Tensor, tgt: Tensor, pad_id: int) -> Tensor:
    """Mean cross-entropy of ``logits (B, T - 1, V)`` against ``tgt[:, 1:]``, padding ignored.

    Computed in float32 whatever the logits' dtype; returns a 0-d float32 tensor.
    """
    if logits.dim() != 3 or tgt.dim() != 2 or logits.shape[:2] != (tgt.shape[0], tgt.shape[1] - 1):
        raise ValueError(f"sequence_loss: logits (B, T - 1, V) and tgt (B, T) do not fit: got {tuple(logits.shape)} "
                         f"and {tuple(tgt.shape)}.")
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1), ignore_index=pad_id)


def _fast_teacher_forcing(decoder: AttentionDecoder, tgt: Tensor, state: Tensor, memory: Tensor,
                          src_mask: Tensor) -> tuple[Tensor, Tensor]:
    """``teacher_forced_logits`` with ratio 1, computed faster: the keys are projected once,
    the embeddings looked up once, and the output layer applied once to every step."""
    attention = decoder.attention
    projected = attention.project_keys(memory)
    emb = decoder.embedding(tgt[:, :-1])  # (B, T-1, E)
    states, contexts, weights = [], [], []
    for i in range(emb.shape[1]):
        context, w = attention.attend(state, projected, memory, src_mask)
        state = decoder.cell(torch.cat([emb[:, i], context], dim=-1), state)
        states.append(state)
        contexts.append(context)
        weights.append(w)
    features = torch.cat([torch.stack(states, 1), torch.stack(contexts, 1), emb], dim=-1)
    return decoder.out(features), torch.stack(weights, dim=1)
