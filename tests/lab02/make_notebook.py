"""Build solutions/02_seq2seq/seq2seq.ipynb (the lab 02 solution notebook) with nbformat.

    .venv/bin/python tests/lab02/make_notebook.py && .venv/bin/genlab labs 02_seq2seq

Cells carry nbgrader metadata like lab 03's; graded cells hold ``### BEGIN SOLUTION`` /
``### END SOLUTION`` regions. No outputs are written.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "solutions" / "02_seq2seq" / "seq2seq.ipynb"

CELLS: list = []
_md_count = 0


def md(text: str) -> None:
    global _md_count
    _md_count += 1
    cell = nbformat.v4.new_markdown_cell(text.strip("\n"))
    cell.id = f"md-{_md_count:02d}"
    CELLS.append(cell)


def code(grade_id: str, source: str, *, solution: bool = False, tags: tuple[str, ...] = ()) -> None:
    cell = nbformat.v4.new_code_cell(source.strip("\n"))
    cell.id = hashlib.sha1(grade_id.encode()).hexdigest()[:8]
    cell.metadata["nbgrader"] = {"grade": False, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
                                 "solution": solution, "task": False}
    if tags:
        cell.metadata["tags"] = list(tags)
    CELLS.append(cell)


def check(grade_id: str, call: str) -> None:
    code(f"check_{grade_id}", call, tags=("check",))


# =============================================================================== intro
md(r"""
# Lab 02 — Sequence to sequence with Bahdanau attention (어텐션을 쓰는 시퀀스-투-시퀀스)

Attention was invented for translation. An **encoder** reads a source sentence, a **decoder**
writes the translation one token at a time, and at every step the decoder *looks back* over
all of the encoder's states to decide which source words matter for the word it writes now
(Bahdanau, Cho & Bengio, 2015). In this lab you build that model piece by piece, plug your
pieces into the library's `Seq2SeqAttention`, and train it on your CPU to rewrite dates written
by people as ISO dates:

```
"3 March 2021"                ->  2021-03-03
"03/03/21"                    ->  2021-03-03      (US order, two-digit year)
"Wednesday, March 3rd 2021"   ->  2021-03-03
"2021년 3월 3일"               ->  2021-03-03
```

Ten source formats, one target format: a small translation task that a real attention model
learns in about a minute, and whose alignments you can read with your own eyes.

| part | you write | graded |
|---|---|---|
| 1 | `padding_mask(lengths, max_len)` | yes |
| 2 | `AdditiveAttention`: $e_{ij} = v^\top \tanh(W s_{i-1} + U h_j)$, $\alpha_{ij} = \operatorname{softmax}_j(e_{ij})$ | yes |
| 3 | `decoder_step`, `teacher_forcing`, `sequence_loss`: one decoder step, the teacher-forced loop, the loss | yes |
| 4 | `greedy_decode`, `beam_search` | yes |
| 5 | `corpus_bleu` through sacrebleu | yes |
| 6 | train the translator with your parts; its alignments | no |
| 7 | one task, three architectures: no attention, Bahdanau, the Transformer of lab 03; greedy against beam | no |

**How this notebook is graded.** Write code only where it says `# YOUR CODE HERE` and keep the
names and signatures: hidden tests call them in a separate process, with inputs you have not
seen (other sizes, ragged batches, `float16`, tuple states). The read-only cell after each part
runs a public check and prints a ✓ line, or a hint naming what looks wrong. It warns about
everything the hidden tests require, but it is not the hidden tests. The training and plotting
cells are not graded.

Do not call the library's reference versions of the graded parts (`genlab.nn.masks.padding_mask`,
`genlab.nn.additive`, `genlab.nn.rnn_seq2seq.decoder_step`, `genlab.search`,
`genlab.metrics.translation`, ...) in your answers: the grader blocks them. For BLEU you are
*meant* to use sacrebleu.

**Run time.** The training sections take about 5 minutes on a 2-core laptop CPU, much less on
a GPU. With the environment variable `GENLAB_SMALL=1` set before Jupyter starts, every run
shrinks to a few seconds (the figures then show an untrained model).

### Glossary (용어)

| English | 한국어 |
|---|---|
| encoder / decoder | 인코더 / 디코더 |
| sequence-to-sequence (seq2seq) | 시퀀스-투-시퀀스 |
| hidden state | 은닉 상태 |
| context vector | 문맥 벡터 (컨텍스트 벡터) |
| bottleneck | 병목 |
| attention, attention weight | 어텐션, 어텐션 가중치 |
| alignment | 정렬 |
| additive (Bahdanau) attention | 덧셈(가산) 어텐션, 바다나우 어텐션 |
| energy, score | 에너지, 점수 |
| padding, padding mask | 패딩, 패딩 마스크 |
| teacher forcing | 교사 강요 (티처 포싱) |
| greedy decoding | 탐욕적 디코딩 |
| beam search, beam width | 빔 서치, 빔 너비 |
| hypothesis | 가설 (후보 문장) |
| log-probability | 로그 확률 |
| length normalisation | 길이 정규화 |
| BLEU (BiLingual Evaluation Understudy) | BLEU (이중 언어 평가 대역) 점수 |
| n-gram, brevity penalty | n-그램, 짧은 문장 페널티 |
| tokenisation | 토큰화 |
| exact match, character accuracy | 완전 일치율, 문자 정확도 |
""")

code("setup", r"""
%matplotlib inline
import math

import sacrebleu
import torch
import torch.nn as nn
import torch.nn.functional as F

from genlab import training
from genlab.checks import lab02 as checks
from genlab.search import num_rows, take_rows  # helpers for decoder states (part 4)
from genlab.training import SMALL, pick  # SMALL is True under GENLAB_SMALL=1: tiny training runs

torch.manual_seed(0)
print(f"torch {torch.__version__}, sacrebleu {sacrebleu.__version__}, small settings: {SMALL}, "
      f"CUDA: {torch.cuda.is_available()}")
""")

md(r"""
## 0. The encoder-decoder and its bottleneck

A recurrent **encoder** reads the source tokens $x_1 \dots x_S$ and produces one hidden state
per position, $h_1 \dots h_S$. Ours is a *bidirectional* GRU: one GRU reads left to right,
another right to left, and $h_j$ is the two states at position $j$ side by side, so $h_j$
describes token $j$ *in its context* on both sides.

The first encoder-decoders (Sutskever et al. 2014, Cho et al. 2014) then kept **only the last
state**: one fixed-size **context vector** $c$ that the decoder reads at every step while it
writes $y_1, y_2, \dots$. Everything the decoder will ever know about the source must squeeze
through that one vector. For a date that is barely possible; for a 40-word sentence it is
not, and translation quality of these models falls off sharply as sentences grow longer. This
is the **bottleneck**.

**Attention changes two things.**

1. The encoder passes **all** of its states $h_1 \dots h_S$ to the decoder, not just the last.
2. Before writing each output token, the decoder does extra work: it compares its current
   state with every $h_j$, turns the comparisons into weights, and reads a *new* context
   vector $c_i$ — a weighted average of the $h_j$ — made for this step alone.

With $i$ the decoder position and $j$ the encoder position, and $s_{i-1}$ the decoder state
that produced the previous word:

$$e_{ij} = a(s_{i-1}, h_j), \qquad \alpha_{ij} = \operatorname{softmax}_j(e_{ij}) = \frac{\exp e_{ij}}{\sum_{k} \exp e_{ik}}, \qquad c_i = \sum_j \alpha_{ij} h_j .$$

At every output step **all** encoder states are compared with the **previous** decoder state.
The weights $\alpha_{i\cdot}$ form a distribution over the source positions: the model's own
*alignment* between what it writes and what it reads. For dates we will be able to see it.
In section 7 you train the same network with and without attention and watch the difference.
""")

# =============================================================================== part 1
md(r"""
## 1. Padding masks

A batch holds sentences of different lengths, so they are padded to a common length with a
`<pad>` token. The encoder must not read the padding (genlab's encoder packs the sequences so
the GRU never sees it), and above all **attention must never attend to it**: a padded
position has no meaning, and any weight it receives is stolen from the real tokens.

A **padding mask** says which positions are real. In genlab, as in
`torch.nn.functional.scaled_dot_product_attention`, a mask is a `bool` tensor that is
**True where a token is real** (where attention is allowed):

```
lengths = [3, 1, 2], max_len = 4

                 t=0    t=1    t=2    t=3
sentence 0      True   True   True   False
sentence 1      True   False  False  False
sentence 2      True   True   False  False
```

Position $t$ of sentence $b$ is real exactly when $t < \text{lengths}[b]$. Build it without a
Python loop: `torch.arange(max_len)` gives the positions; compare them against the lengths
with broadcasting, `(1, max_len)` against `(B, 1)`.

### Common mistakes

* **Off by one:** `t <= length` marks one pad as real (a sentence of length 3 has positions
  0, 1, 2).
* **Inverted:** True on the padding. That is `nn.MultiheadAttention`'s `key_padding_mask`
  convention, the opposite of ours.
* **Using `lengths.max()` instead of `max_len`:** the batch may be padded further than its
  longest sentence (several batches padded alike, or extra padding), and then the shapes no
  longer line up.
* **Returning float or long** (`.float()`, `.int()`): a comparison already gives `torch.bool`;
  keep it, since `masked_fill` and `~mask` need bools.
""")

code("padding_mask", r'''
def padding_mask(lengths, max_len):
    """True for real tokens, False for padding.

    Args:
        lengths: long tensor (B,), the number of real tokens of each sequence (each >= 1).
        max_len: int, the padded length (>= lengths.max(); it may be larger).

    Returns:
        bool tensor (B, max_len): entry [b, t] is True when t < lengths[b].
    """
    ### BEGIN SOLUTION
    positions = torch.arange(max_len, device=lengths.device)  # (max_len,)
    return positions[None, :] < lengths[:, None]  # (B, max_len), bool
    ### END SOLUTION
''', solution=True)
check("padding_mask", "checks.check_padding_mask(padding_mask)")

# =============================================================================== part 2
md(r"""
## 2. Additive attention (Bahdanau)

The score function $a(s_{i-1}, h_j)$ of Bahdanau et al. is a tiny one-hidden-layer network:

$$e_{ij} = v^\top \tanh\!\left(W s_{i-1} + U h_j\right), \qquad \alpha_{ij} = \operatorname{softmax}_j(e_{ij}), \qquad c_i = \sum_j \alpha_{ij}\, h_j .$$

* $W$ (`attention_size × query_size`) maps the decoder state into an "attention space",
* $U$ (`attention_size × key_size`) maps each encoder state into the same space,
* the two are **added** (hence *additive* attention), squashed by $\tanh$,
* and $v$ (`attention_size`) turns each resulting vector into one number, the **energy** $e_{ij}$.

It is called with the decoder state as the **query** ($s_{i-1}$), the encoder states as
**keys** (what is compared) and as **values** (what is averaged). In the decoder keys and
values are the same tensor, but keep them separate in your code: the context is the weighted
sum of the **values**.

**Why it works.** The weights are positive and sum to one, so $c_i$ is an average of the
encoder states that the network can steer: a large $e_{ij}$ pulls $c_i$ towards $h_j$. Every
piece is differentiable, so the network *learns* where to look from the translation loss
alone: nobody tells it that `2021` in the output comes from `2021` in the input. And because
$W$ and $U$ project into a shared space, the query and the keys may have different sizes
(here the decoder state has 128 numbers and each $h_j$ has 2 × 64).

Compare the **multiplicative** (dot-product) form of Luong et al. and of lab 03,
$e_{ij} = (W s_{i-1})^\top h_j / \sqrt{d_k}$: cheaper (one matrix product), and on this task
about as good. The library has it as `attention="dot"`.

**Masking.** Padded positions must get weight **exactly 0**. Set their energies to the most
negative number the tensor's dtype can hold, *before* the softmax, so that $e^{e_{ij}}$
underflows to 0:

```python
scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
```

**Shapes.** `query` is `(B, d_q)`, `keys` `(B, S, d_k)`, `values` `(B, S, d_v)`, `mask`
`(B, S)`. Broadcasting does the "for every j": `W(query)` is `(B, d_a)`; add a source axis,
`[:, None, :]`, to get `(B, 1, d_a)`, and add `U(keys)`, `(B, S, d_a)`. Then `v(...)` is
`(B, S, 1)`: squeeze the last axis. Create the three layers as
`nn.Linear(..., bias=False)` named exactly `W`, `U`, `v` (the hidden tests load weights into
them by name).

### Common mistakes

1. **The mask inverted**, `masked_fill(mask, ...)`: all the weight goes to the padding.
2. **The mask applied after the softmax** (`weights * mask`) without renormalising: the
   weights of real positions no longer sum to 1, and the context shrinks.
3. **The softmax over the wrong axis.** `dim=0` normalises over the *batch* (each source
   position's weights sum to 1 across different sentences!). Use the source axis, `dim=-1`.
4. **The `-1e9` trap.** `masked_fill(~mask, -1e9)` works in float32, but the largest float16
   number is 65504, so under mixed precision the same line raises `value cannot be converted
   to type c10::Half without overflow`. `torch.finfo(scores.dtype).min` is right in every dtype.
5. **Averaging the keys instead of the values**, or forgetting the $\tanh$.
""")

code("additive_attention", r'''
class AdditiveAttention(nn.Module):
    """Bahdanau attention: e_j = vᵀ tanh(W s + U h_j), weights = softmax over the real positions.

    Create three layers, all without bias:
        self.W = nn.Linear(query_size, attention_size, bias=False)
        self.U = nn.Linear(key_size, attention_size, bias=False)
        self.v = nn.Linear(attention_size, 1, bias=False)
    """

    def __init__(self, query_size, key_size, attention_size):
        super().__init__()
        ### BEGIN SOLUTION
        self.W = nn.Linear(query_size, attention_size, bias=False)
        self.U = nn.Linear(key_size, attention_size, bias=False)
        self.v = nn.Linear(attention_size, 1, bias=False)
        ### END SOLUTION

    def forward(self, query, keys, values, mask=None):
        """Attend from one query per sentence over its source positions.

        Args:
            query: (B, d_q), the previous decoder state s_{i-1}.
            keys: (B, S, d_k), the encoder states h_j that the query is compared with.
            values: (B, S, d_v), what is averaged (in the decoder: the encoder states again).
            mask: optional bool (B, S), True for real tokens; every row has at least one.

        Returns:
            context: (B, d_v), the weighted sum of the values.
            weights: (B, S), each row sums to 1 over the real positions and is exactly 0 on
                padding. Both have the inputs' dtype (float16 inputs give float16 results).
        """
        ### BEGIN SOLUTION
        hidden = torch.tanh(self.W(query)[:, None, :] + self.U(keys))  # (B, S, d_a)
        scores = self.v(hidden).squeeze(-1)  # (B, S): the energies e_j
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)  # safe in float16
        weights = torch.softmax(scores, dim=-1)  # over the source positions
        context = (weights[:, :, None] * values).sum(dim=1)  # (B, d_v)
        return context, weights
        ### END SOLUTION
''', solution=True)
check("additive_attention", "checks.check_additive_attention(AdditiveAttention)")

# =============================================================================== part 3
md(r"""
## 3. The decoder step, and teacher forcing

The decoder is a GRU cell that runs once per output token. The library's `AttentionDecoder`
holds its parts; you write how they are used. From the previous token $y_{i-1}$ and the
previous state $s_{i-1}$, one step is:

$$
\begin{aligned}
c_i,\ \alpha_i &= \operatorname{attention}(s_{i-1},\ h,\ h) && \text{the query is the **previous** state}\\
s_i &= \operatorname{GRUCell}\big([\,\operatorname{emb}(y_{i-1});\ c_i\,],\ s_{i-1}\big) && \text{the new state}\\
\text{logits}_i &= \operatorname{out}\big([\,s_i;\ c_i;\ \operatorname{emb}(y_{i-1})\,]\big) && \text{scores for } y_i
\end{aligned}
$$

with `decoder.embedding`, `decoder.attention`, `decoder.cell` and `decoder.out`, and
$[a; b]$ meaning `torch.cat([a, b], dim=-1)`. The attention uses $s_{i-1}$, the state *before*
this step's update: to decide where to look for the next word, the decoder uses what it knew
after writing the previous one. The output layer sees the new state, the context and the
previous word, so it can copy from the context directly.

### Training against inference

At **inference** the decoder feeds itself: it starts from a `<bos>` ("beginning of sequence")
token, writes a token, feeds that token back as the next input, and so on until it writes
`<eos>`. At **training** time that would be slow and unstable: one early mistake derails every
later step, and the model learns from its own garbage. **Teacher forcing** feeds the
**ground truth** instead: step $i$ receives the true previous token, whatever the model
predicted. A whole sentence is then one pass over the target **shifted right**:

```
decoder input  (tgt[:, :-1]):  <bos>  2  0  2  1  -  0  3  -  0  3
must predict   (tgt[:, 1:]) :    2    0  2  1  -  0  3  -  0  3  <eos>
```

The targets in a batch are `<bos> y_1 … y_n <eos> <pad> …`. With `T` tokens per row there are
`T - 1` steps; step `i` reads `tgt[:, i]` and its logits are scored against `tgt[:, i + 1]`.
(The library's model can also mix in its own predictions with a *teacher-forcing ratio*
below 1, so training sees some of its own mistakes; our dates do not need it.)

`sequence_loss` is the mean cross-entropy of the logits against `tgt[:, 1:]`, **ignoring the
padding** (`ignore_index=pad_id`), and computed in float32 (`logits.float()`), as every loss
in genlab is: a float16 log-softmax over the vocabulary loses precision.

### Common mistakes

* **Attending with $s_i$** (the new state) instead of $s_{i-1}$: that is Luong's variant,
  and mixing the two (attend before *and* after the cell) is a different model.
* **The target not shifted:** feeding `tgt[:, i + 1]` at step `i` lets the decoder read the
  very token it must predict: the loss drops to almost 0 and the model learns nothing.
* **Not carrying the state:** every step must start from the state the previous step
  returned, not from $s_0$.
* In the loss: comparing against `tgt[:, :-1]`, or counting the padding.
""")

code("decoder_step", r'''
def decoder_step(decoder, prev_token, state, memory, src_mask):
    """One step of the attention decoder.

    decoder has: decoder.embedding (nn.Embedding), decoder.attention (an attention with the
    signature of your AdditiveAttention), decoder.cell (nn.GRUCell reading
    [embedding; context]) and decoder.out (nn.Linear from [new state; context; embedding]).

    Args:
        prev_token: long (B,), the previous tokens y_{i-1}.
        state: (B, D), the previous decoder state s_{i-1}.
        memory: (B, S, M), the encoder states h_j (keys and values of the attention).
        src_mask: bool (B, S), True for real source tokens.

    Returns:
        logits (B, V), the new state s_i (B, D), the attention weights (B, S).
    """
    ### BEGIN SOLUTION
    emb = decoder.embedding(prev_token)  # (B, E): y_{i-1}
    context, weights = decoder.attention(state, memory, memory, src_mask)  # the query is s_{i-1}
    new_state = decoder.cell(torch.cat([emb, context], dim=-1), state)  # s_i
    logits = decoder.out(torch.cat([new_state, context, emb], dim=-1))  # (B, V)
    return logits, new_state, weights
    ### END SOLUTION


def teacher_forcing(decoder, tgt, state, memory, src_mask):
    """Run the decoder over whole target sentences, feeding the ground truth.

    Args:
        tgt: long (B, T), rows <bos> y_1 ... y_n <eos> <pad> ...
        state: (B, D), the first decoder state s_0.
        memory, src_mask: as in decoder_step.

    Returns:
        logits (B, T - 1, V): logits[:, i] predicts tgt[:, i + 1] from tgt[:, :i + 1].
        weights (B, T - 1, S): the attention weights of every step.
    """
    ### BEGIN SOLUTION
    all_logits, all_weights = [], []
    for i in range(tgt.shape[1] - 1):  # the inputs are tgt[:, :-1], from <bos>
        logits, state, weights = decoder_step(decoder, tgt[:, i], state, memory, src_mask)
        all_logits.append(logits)
        all_weights.append(weights)
    return torch.stack(all_logits, dim=1), torch.stack(all_weights, dim=1)
    ### END SOLUTION


def sequence_loss(logits, tgt, pad_id):
    """Mean cross-entropy of logits (B, T - 1, V) against tgt[:, 1:], padding ignored.

    Returns a float32 scalar (0-d tensor), whatever the dtype of the logits.
    """
    ### BEGIN SOLUTION
    targets = tgt[:, 1:]  # what each step must predict
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=pad_id)
    ### END SOLUTION
''', solution=True)
check("decoder_step", "checks.check_decoder_step(decoder_step, teacher_forcing, sequence_loss)")

md(r"""
An untrained decoder knows nothing, so its loss should be close to $\ln V$ for a target
vocabulary of $V$ tokens (here the 11 characters `0`–`9` and `-`, plus the specials): that is
the cross-entropy of a uniform guess. A quick sanity check with your three functions:
""")

code("loss_at_init", r"""
from genlab.nn.rnn_seq2seq import AttentionDecoder

torch.manual_seed(0)
V = 14  # <pad>, <bos>, <eos>, 0-9 and -
toy = AttentionDecoder(V, emb_size=16, hidden_size=32, memory_size=24, attention=AdditiveAttention(32, 24, 16))
with torch.no_grad():
    toy.out.weight.mul_(0.01)  # near-uniform predictions, as at the start of training
tgt = torch.tensor([[1, 5, 3, 5, 4, 13, 3, 6, 13, 3, 6, 2]])  # <bos> 2021-03-03 <eos>
memory, mask = torch.randn(1, 9, 24), torch.ones(1, 9, dtype=torch.bool)
with torch.no_grad():
    logits, weights = teacher_forcing(toy, tgt, torch.zeros(1, 32), memory, mask)
print(f"logits {tuple(logits.shape)}, weights {tuple(weights.shape)}; "
      f"loss {sequence_loss(logits, tgt, 0):.3f} vs ln V = {math.log(V):.3f}")
""", tags=("plotting",))

# =============================================================================== part 4
md(r"""
## 4. Decoding: greedy and beam search

After training, the decoder writes on its own. A decoder is given to the search as a **step
function** and its state:

```python
logits, state = step(tokens, state)     # tokens: long (N,), logits: (N, V)
```

The state has one row per hypothesis being extended; it can be a tensor or a **tuple of
tensors** (for our model: the decoder state, the encoder memory and the mask). Rows are
independent, so you can pick, repeat and reorder them: `take_rows(state, index)` (imported in
the set-up cell) returns the rows `index` (a long tensor) of every tensor in the state, and
`num_rows(state)` counts them. Never index a state with `state[...]` directly: it may be a tuple.

### Greedy decoding

Start every row from `<bos>`; at each step take the most likely token
(`logits.argmax(dim=-1)`) and feed it back. A row that has produced `<eos>` is finished: from
then on its positions are `pad_id`. Stop when every row has finished, or after `max_len`
tokens. Return the generated tokens `(B, L)` without the `<bos>`.

Greedy is fast, but it commits to the best *next* token, which is not the same as the best
*sequence*: a token that looks good now can lead into a dead end.

### Beam search

Keep the `width` best **partial hypotheses** instead of one. The score of a hypothesis is the
sum of its tokens' **log-probabilities**, $\sum_t \log p(y_t \mid y_{<t}, x)$: the log of its
probability, computed without the underflow of multiplying many small numbers.

For each example:

1. start with one live hypothesis, `<bos>` with score 0;
2. extend every live hypothesis by every token (`score + log_softmax(logits)`), and keep the
   `width` best extensions of all;
3. an extension that ends in `<eos>` is **finished**: set it aside (it is never extended
   again, but it is **kept** until the end), with the score divided by its length:
   $\text{score} / L^{\alpha}$, $L$ = its generated tokens, `<eos>` included;
4. the others stay live; reorder the state with `take_rows` so that each survivor continues
   from the state of the hypothesis it extends;
5. stop when `width` hypotheses have finished (or after `max_len` steps), and return the
   finished one with the best score. If none finished, return the best live one, scored the
   same way.

**Why length normalisation.** Every token multiplies the probability by a number below 1,
so raw scores always prefer short outputs. Dividing by $L^\alpha$ compares the *average*
log-probability per token; $\alpha = 0$ switches it off, $\alpha = 1$ is the plain average
(production systems often use $\alpha \approx 0.6$–$0.7$).

With `width = 1` beam search is exactly greedy decoding. A batched beam search (all examples
at once, as in `genlab.search`) is faster; a loop over the examples is fine here.

### Common mistakes

* Adding **probabilities** (`softmax`) instead of log-probabilities (`log_softmax`).
* **Forgetting finished hypotheses**, or stopping as soon as the best one finishes: a
  finished short hypothesis can still be the best at the end.
* No length normalisation, or normalising the live hypotheses while ranking them (rank live
  ones by their raw total; normalise only the finished ones).
* **Not reordering the state**: a survivor must continue from *its* parent's state.
""")

code("decoding", r'''
def greedy_decode(step, state, bos_id, eos_id, max_len, pad_id=0):
    """Greedy decoding of a batch.

    Args:
        step: step(tokens (N,) long, state) -> (logits (N, V), new_state).
        state: the decoder state of B examples: a tensor or a tuple of tensors, B rows each.
        bos_id, eos_id, pad_id: the special token ids; max_len: the most tokens to generate.

    Returns:
        long (B, L), L <= max_len: the generated tokens (no <bos>); each row ends with its
        first <eos>, followed by pad_id.
    """
    ### BEGIN SOLUTION
    B = num_rows(state)
    tokens = torch.full((B,), bos_id, dtype=torch.long)
    finished = torch.zeros(B, dtype=torch.bool)
    out = []
    for _ in range(max_len):
        logits, state = step(tokens, state)
        tokens = logits.argmax(dim=-1).masked_fill(finished, pad_id)  # finished rows only pad
        out.append(tokens)
        finished = finished | (tokens == eos_id)
        if finished.all():
            break
    return torch.stack(out, dim=1)
    ### END SOLUTION


def beam_search(step, state, bos_id, eos_id, max_len, width, alpha=1.0, pad_id=0):
    """Beam search of `width` hypotheses per example, as described above.

    Args: as greedy_decode, plus width (>= 1) and alpha (the length-normalisation exponent).

    Returns:
        tokens: long (B, L), the best finished hypothesis of each example (no <bos>; first
            <eos>, then pad_id).
        scores: float (B,), its total log-probability divided by len(tokens) ** alpha.
    """
    ### BEGIN SOLUTION
    outputs, best_scores = [], []
    for b in range(num_rows(state)):
        rows = take_rows(state, torch.tensor([b]))  # one state row per live hypothesis
        live = [(0.0, [])]  # (total log-probability, tokens so far)
        finished = []  # (normalised score, tokens ending in <eos>)
        for _ in range(max_len):
            last = torch.tensor([seq[-1] if seq else bos_id for _, seq in live])
            logits, new_rows = step(last, rows)
            logp = torch.log_softmax(logits.float(), dim=-1)  # (live, V)
            totals = torch.tensor([score for score, _ in live])[:, None] + logp
            top, index = totals.flatten().topk(min(width, totals.numel()))  # the best extensions
            V = logp.shape[-1]
            keep, survivors = [], []
            for total, i in zip(top.tolist(), index.tolist()):
                parent, token = divmod(i, V)
                seq = live[parent][1] + [token]
                if token == eos_id:
                    finished.append((total / len(seq) ** alpha, seq))  # set aside, kept to the end
                else:
                    survivors.append((total, seq))
                    keep.append(parent)
            if len(finished) >= width or not survivors:
                break
            live = survivors
            rows = take_rows(new_rows, torch.tensor(keep))  # each survivor continues its parent's state
        if not finished:
            finished = [(total / len(seq) ** alpha, seq) for total, seq in live]
        score, seq = max(finished, key=lambda f: f[0])
        outputs.append(seq)
        best_scores.append(score)
    tokens = torch.full((len(outputs), max(len(s) for s in outputs)), pad_id, dtype=torch.long)
    for b, seq in enumerate(outputs):
        tokens[b, : len(seq)] = torch.tensor(seq)
    return tokens, torch.tensor(best_scores)
    ### END SOLUTION
''', solution=True)
check("decoding", "checks.check_decoding(greedy_decode, beam_search)")

# =============================================================================== part 5
md(r"""
## 5. BLEU

**BLEU** (*BiLingual Evaluation Understudy*, Papineni et al. 2002) is the standard number
for machine translation. It compares the n-grams (n = 1 … 4) of a hypothesis with those of a
reference:

$$\text{BLEU} = \text{BP} \cdot \exp\!\Big(\tfrac14 \sum_{n=1}^{4} \log p_n\Big), \qquad \text{BP} = \min\!\big(1,\ e^{\,1 - r/h}\big),$$

where $p_n$ is the share of the hypothesis' n-grams that also occur in the reference (each
reference n-gram can be matched only as often as it occurs), $h$ and $r$ are the hypothesis
and reference lengths, and the **brevity penalty** BP punishes outputs shorter than the
reference (precision alone would reward saying almost nothing). **Corpus BLEU** sums the
n-gram counts and the lengths over all sentences *first*, then applies the formula once.

Use **sacrebleu**, the reference implementation, and never compute BLEU on token ids: BLEU is
defined on text, and its result depends on how the text is split into tokens. Your function
decodes the ids to strings (up to the first `<eos>`, without `<pad>` and `<bos>`; genlab's
vocabularies always have `<pad>` = 0, `<bos>` = 1, `<eos>` = 2), then calls

```python
sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize).score
```

(`[references]`: a list of reference *streams*, here one reference per sentence.)

### Known traps, and the tokenisation for dates

* **Outputs shorter than four tokens get BLEU 0** under the default tokenizer, even when they
  are perfect (sacrebleu issue #114): with no 4-gram at all, $p_4$ is 0/0, taken as 0. Corpus
  BLEU on a whole test set hides it; sentence BLEU on short outputs does not.
* **`sentence_bleu` and `corpus_bleu` smooth differently** (#64): `sentence_bleu` smooths
  zero counts (by default with the "exp" method) so that single sentences get a non-zero
  score, and the mean of sentence BLEUs is **not** the corpus BLEU. Report corpus BLEU.
* **Tokenisation.** sacrebleu's default `13a` splits `2021-03-03` into 5 tokens, `2021 - 03 -
  03`: one wrong digit costs a whole year or month token. For 10-character dates we use
  `tokenize="char"`: every character is a token, so a date has 10 tokens and 7 four-grams,
  one wrong digit costs only the n-grams that contain it, and even a 4-character output has
  a 4-gram. For sentences in Korean, `ko-mecab` (morphemes) is the standard choice.

### BLEU's blind spot

BLEU counts matching n-grams; it knows nothing of meaning. "오늘 날씨가 어때" and "날씨가 오늘
어때" ask the same question ("how is the weather today?"): Korean marks each word's role with
its ending, so the order of 오늘 and 날씨가 is free. Against the reference "오늘 날씨가 어때" the
reordered sentence still has all its words, but its bigrams 날씨가 오늘 and 오늘 어때 do not occur
in the reference, and it scores far below 100. A paraphrase with other words
scores lower still. People often disagree with BLEU for exactly this reason; it is useful for
comparing systems on one test set, not for judging one translation.
""")

code("bleu", r'''
def corpus_bleu(pred_ids, ref_ids, itos, tokenize="char", sep=""):
    """Corpus BLEU (0-100) of generated token ids against reference token ids, by sacrebleu.

    Args:
        pred_ids: long (B, L), generated tokens (no <bos>), each row ending at its first <eos>.
        ref_ids: long (B, T), reference tokens (<bos> ... <eos> <pad> ...).
        itos: list of str, token id -> token; <pad> = 0, <bos> = 1, <eos> = 2.
        tokenize: sacrebleu's tokenizer ("char" for dates, "13a" for sentences).
        sep: how tokens are joined into text ("" for characters, " " for words).

    Returns:
        float, sacrebleu's corpus BLEU score between 0 and 100.
    """
    ### BEGIN SOLUTION
    def to_text(ids):
        texts = []
        for row in ids.tolist():
            tokens = []
            for i in row:
                if i == 2:  # <eos>: the sentence ends here
                    break
                if i not in (0, 1):  # drop <pad> and <bos>
                    tokens.append(itos[i])
            texts.append(sep.join(tokens))
        return texts

    hypotheses, references = to_text(pred_ids), to_text(ref_ids)
    return sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize).score
    ### END SOLUTION
''', solution=True)
check("bleu", "checks.check_bleu(corpus_bleu)")

code("bleu_blind_spot", r"""
reference = "오늘 날씨가 어때"
for hypothesis in ("오늘 날씨가 어때", "날씨가 오늘 어때", "지금 날씨 어때"):
    print(f"{hypothesis!r:>14}: sentence BLEU {sacrebleu.sentence_bleu(hypothesis, [reference]).score:5.1f}")
print("a perfect 1-token output, default tokenizer:", sacrebleu.corpus_bleu(["2021"], [["2021"]]).score,
      "| with tokenize='char':", sacrebleu.corpus_bleu(["2021"], [["2021"]], tokenize="char").score)
""", tags=("plotting",))

# =============================================================================== part 6
md(r"""
## 6. Train the translator with your parts

`genlab.models.seq2seq.Seq2SeqAttention` assembles a bidirectional GRU encoder and the
attention decoder. It takes **your** parts through its constructor: `AdditiveAttention`,
`decoder_step`, `teacher_forcing` and `sequence_loss` for training, `greedy_decode` and
`beam_search` for decoding (the validation exact match and `translate` use your greedy search).
Lightning runs the loop, the optimiser (AdamW, warm-up, cosine decay) and, on a GPU, mixed
precision. The settings are those of `genlab fit seq2seq`.

During validation the model decodes greedily and reports the **exact match** (the share of
dates that come out entirely right), the **character accuracy** (the share of characters in
the right place) and **BLEU** on characters. The clock callback records the validation exact
match against training time, for the comparison of section 7.
""")

code("clock", r"""
import time

import lightning as L


class AccuracyClock(L.Callback):
    # Records (seconds spent in training steps, validation exact match, step) at every validation.
    def __init__(self):
        self.points, self.seconds, self._start = [], 0.0, 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.seconds += time.perf_counter() - self._start

    def on_validation_end(self, trainer, module):
        if "val_exact_match" in trainer.callback_metrics:
            self.points.append((self.seconds, float(trainer.callback_metrics["val_exact_match"]), trainer.global_step))
""", tags=("training",))

code("train_bahdanau", r"""
from genlab.data import DatesDataModule
from genlab.models.seq2seq import Seq2SeqAttention

model_args, data_args, trainer_args = training.settings(
    "seq2seq", small_model=dict(hidden_size=16, decoder_size=32, attention_size=16),
    small_data=dict(n_train=512, n_val=64, n_test=64, batch_size=32))
print("model:", model_args, "\ndata:", data_args, "\ntrainer:", trainer_args)

L.seed_everything(0, verbose=False)
dates = DatesDataModule(**data_args)
for src, tgt in dates.pairs("train")[:6]:
    print(f"{src!r:>32} -> {tgt}")
model_args.pop("attention")
your_parts = dict(decoder_step=decoder_step, sequence_loss=sequence_loss, greedy_search=greedy_decode,
                  beam_search=beam_search)
model = Seq2SeqAttention(
    src_vocab_size=dates.src_vocab_size, tgt_vocab_size=dates.tgt_vocab_size,
    pad_id=dates.pad_id, bos_id=dates.bos_id, eos_id=dates.eos_id, **model_args,
    attention=AdditiveAttention(model_args["decoder_size"], 2 * model_args["hidden_size"],
                                model_args["attention_size"]),  # <- yours
    teacher_forcing=teacher_forcing, **your_parts,  # <- yours too: the loop, the loss, both searches
)
bahdanau_clock = AccuracyClock()
trainer = training.make_trainer("seq2seq", callbacks=[bahdanau_clock], **trainer_args)
trainer.fit(model, datamodule=dates)
test = trainer.test(model, datamodule=dates, verbose=False)[0]
print(f"held-out test ({len(dates.pairs('test'))} dates): exact match {test['test_exact_match']:.1%}, "
      f"character accuracy {test['test_char_accuracy']:.1%}, BLEU (characters) {test['test_bleu']:.1f}")
""", tags=("training",))

code("loss_curves", r"""
training.loss_figure(trainer, keys=["train_loss", "val_loss"], title="Bahdanau seq2seq on dates: loss")
""", tags=("plotting",))

code("translations", r"""
model = model.cpu().eval()  # your search functions build their tensors on the CPU
examples = ["3 March 2021", "Mar 3, 2021", "03/03/21", "Wednesday, March 3rd 2021", "2021년 3월 3일",
            "the 3rd of March, 2021", "25 December 1999", "1999년 12월 25일"]
for src, out in zip(examples, model.translate(examples, dates)):
    print(f"{src!r:>30} -> {out}")
""", tags=("training",))

md(r"""
### Where the decoder looks

Each row of a heatmap is one output character; the colours are its attention weights
$\alpha_{ij}$ over the source characters (they sum to 1 along the row). For
`"3 March 2021"` the year digits of the output read the year, the month digits read the word
`March`, the day digits read `3`. The alignment is *not* one diagonal: ISO puts the year
first, so the pattern bends. For `"03/03/21"` the two-digit year sits at the end of the
source, and the output's century `20` is not written anywhere: the decoder reads the two-digit
year `21` to decide between 19xx and 20xx (dates run from 1950 to 2049). For `"2021년 3월 3일"` the
order matches ISO and the alignment is almost diagonal, with the month and day reading the
digit before `월` and `일`. The `-` separators and `<eos>`, which have no counterpart in the
source, spread their attention or look at the source's `<eos>`. (Without a Hangul font on this
machine, 년 월 일 are labelled nyeon, wol, il.)
""")

code("alignment", r"""
from genlab.metrics.translation import truncate_after_eos
from genlab.models.seq2seq import encode_sources
from genlab.plots import seq2seq as seq2seq_plots

sources = ["3 March 2021", "03/03/21", "2021년 3월 3일"]
src, lengths = encode_sources(sources, dates)
with torch.no_grad():
    step, state = model.search_step(src, lengths)
    out = truncate_after_eos(greedy_decode(step, state, dates.bos_id, dates.eos_id, 12, dates.pad_id),
                             dates.eos_id, dates.pad_id)
    weights = model.alignment(src, lengths, out)  # (B, L, S)
panels = []
for b in range(len(sources)):
    row = out[b].tolist()
    n_out = row.index(dates.eos_id) + 1 if dates.eos_id in row else len(row)
    src_tokens = [dates.src_vocab.itos[i] for i in src[b, : lengths[b]].tolist()]
    out_tokens = [dates.tgt_vocab.itos[i] for i in row[:n_out]]
    panels.append((src_tokens, out_tokens, weights[b, :n_out, : lengths[b]]))
seq2seq_plots.alignment_figure(panels, title="attention weights: output character (rows) against source character")
""", tags=("plotting",))

# =============================================================================== part 7
md(r"""
## 7. One task, three architectures

The same date task, three encoder-decoders, each trained with the library's settings and timed
by the same clock (seconds spent in training steps, validations excluded):

* **no attention**: the same GRU encoder and decoder, but the decoder reads one fixed context
  vector, the encoder's final states (`attention="none"`): the 2014 bottleneck, run by your
  `decoder_step`, loss and searches (its attention gives no weights to stack, so the library's
  loop calls your `decoder_step` instead of your `teacher_forcing`);
* **Bahdanau attention**: your model from section 6;
* **the Transformer** of lab 03 (`genlab.models.TransformerSeq2Seq`): no recurrence,
  self-attention in both encoder and decoder, cross-attention between them (here with torch's
  own attention layers, `nn.MultiheadAttention`: in lab 03 you write them).

The bottleneck model has to memorise the whole date in one vector of 128 numbers and to
unpack it in a different order; it learns, but slowly. Attention gives the decoder direct
access to every source character, and the training curve shows what that is worth. The
Transformer gets there too, with steps that are cheaper on a GPU because nothing in it is
sequential.

The left panel is wall time, which on a shared or busy machine says as much about the other
programs running as about the models; the right panel, against training steps, does not
depend on the machine at all. (Our GRU decoder runs your Python `decoder_step` once per output
character; the Transformer's decoder handles all positions of a sentence in one call.)
""")

code("train_baselines", r"""
from genlab.models import TransformerSeq2Seq
from genlab.nn import TorchMultiHeadAttention

clocks = {"Bahdanau attention": bahdanau_clock}
L.seed_everything(0, verbose=False)
bottleneck = Seq2SeqAttention(
    src_vocab_size=dates.src_vocab_size, tgt_vocab_size=dates.tgt_vocab_size,
    pad_id=dates.pad_id, bos_id=dates.bos_id, eos_id=dates.eos_id, **model_args, attention="none", **your_parts)
clocks["no attention (one context vector)"] = AccuracyClock()
training.make_trainer("seq2seq", callbacks=[clocks["no attention (one context vector)"]], **trainer_args).fit(
    bottleneck, datamodule=dates)

t_model, _, t_trainer = training.settings("transformer", small_model=dict(d_model=32))
t_trainer.update(val_check_interval=trainer_args["val_check_interval"], limit_val_batches=trainer_args["limit_val_batches"])
L.seed_everything(0, verbose=False)
transformer = TransformerSeq2Seq(src_vocab_size=dates.src_vocab_size, tgt_vocab_size=dates.tgt_vocab_size,
                                 pad_id=dates.pad_id, bos_id=dates.bos_id, eos_id=dates.eos_id, **t_model,
                                 attention_layer=TorchMultiHeadAttention)  # torch's own: lab 03 writes genlab's
clocks["Transformer (lab 03)"] = AccuracyClock()
training.make_trainer("transformer", callbacks=[clocks["Transformer (lab 03)"]], **t_trainer).fit(
    transformer, datamodule=dates)
for name, clock in clocks.items():
    seconds, accuracy, steps = clock.points[-1]
    print(f"{name:>34}: validation exact match {accuracy:.1%} after {steps} steps, {seconds:.0f} s of training")
""", tags=("training",))

code("three_architectures", r"""
seq2seq_plots.accuracy_vs_time({name: clock.points for name, clock in clocks.items()}, target=0.995,
                               ylabel="validation exact match",
                               title="dates -> ISO: accuracy against training time" + (" (small mode: untrained)" if SMALL else ""))
""", tags=("plotting",))

md(r"""
### Greedy against beam search, on the hardest dates

A well-trained model is usually so sure of itself that greedy and beam search agree; the
differences hide where it is least sure. Below, every test date is decoded greedily with
**your** `greedy_decode`, by the Bahdanau model and by the bottleneck model; the 50 dates with
the lowest average log-probability per token are each model's "hardest", and those are decoded
again with **your** `beam_search` (width 4). Your `corpus_bleu` scores them. Beam search can
repair a wrong first choice; it cannot repair a model that does not know the answer.
""")

code("beam_vs_greedy", r"""
from genlab.metrics.translation import exact_match

test_batches = list(dates.test_dataloader())
src = torch.cat([F.pad(b.src, (0, dates.max_src_len - b.src.shape[1])) for b in test_batches])
lengths = torch.cat([b.src_lengths for b in test_batches])
tgt = torch.cat([F.pad(b.tgt, (0, dates.max_tgt_len - b.tgt.shape[1])) for b in test_batches])
itos = dates.tgt_vocab.itos


def accuracy(pred, idx):
    return exact_match(pred, tgt[idx], dates.eos_id, dates.pad_id, dates.bos_id).float().mean().item()


scores = {}
for name, translator in (("Bahdanau", model), ("no attention", bottleneck.cpu().eval())):
    with torch.no_grad():
        step, state = translator.search_step(src, lengths)
        greedy = greedy_decode(step, state, dates.bos_id, dates.eos_id, 12, dates.pad_id)
        bos = torch.full_like(greedy[:, :1], dates.bos_id)
        logits, _ = translator(src, lengths, torch.cat([bos, greedy], 1))
        logp = torch.log_softmax(logits.float(), -1).gather(-1, greedy[:, :, None]).squeeze(-1)
        real = (greedy != dates.pad_id).float()
        hardest = ((logp * real).sum(1) / real.sum(1)).argsort()[: pick(50, 8)]
        step, state = translator.search_step(src[hardest], lengths[hardest])
        beam, _ = beam_search(step, state, dates.bos_id, dates.eos_id, 12, width=4)
    everything = torch.arange(len(src))
    scores[f"{name}: all"] = {"greedy": accuracy(greedy, everything)}
    scores[f"{name}: {len(hardest)} hardest"] = {"greedy": accuracy(greedy[hardest], hardest),
                                                 "beam 4": accuracy(beam, hardest)}
    print(f"{name}: BLEU (characters) greedy {corpus_bleu(greedy, tgt, itos):.2f} on all test dates; on the hardest "
          f"greedy {corpus_bleu(greedy[hardest], tgt[hardest], itos):.2f}, beam {corpus_bleu(beam, tgt[hardest], itos):.2f}")
    for j, k in enumerate(hardest[:3].tolist()):
        print(f"   {dates.decode_source(src[k])!r:>30}: greedy {dates.decode_target(greedy[k])}, "
              f"beam {dates.decode_target(beam[j])}, expected {dates.decode_target(tgt[k])}")
seq2seq_plots.beam_vs_greedy(scores, title="exact match: greedy against beam search (width 4)"
                             + (" (small mode: untrained)" if SMALL else ""))
""", tags=("plotting",))

md(r"""
## 8. Summary

* An encoder-decoder without attention squeezes the source into one vector: the bottleneck.
  Attention passes **all** encoder states and lets the decoder compute a new context for every
  output step from $e_{ij} = a(s_{i-1}, h_j)$, $\alpha_{ij} = \operatorname{softmax}_j e_{ij}$,
  $c_i = \sum_j \alpha_{ij} h_j$.
* Bahdanau's $a$ is additive, $v^\top \tanh(W s_{i-1} + U h_j)$; the query is the **previous**
  decoder state.
* Padding gets weight exactly 0: fill masked energies with the dtype's minimum, never `-1e9`.
* Training feeds the ground truth (teacher forcing: the target shifted right, from `<bos>`);
  inference feeds back the model's own output, one token at a time.
* Greedy decoding commits to the best next token; beam search keeps `width` hypotheses, adds
  log-probabilities, keeps finished hypotheses and normalises by length.
* BLEU compares n-grams with a reference, on text, with a stated tokenisation: `char` for
  dates, and corpus BLEU rather than averaged sentence BLEU. It penalises a correct reordering
  such as 날씨가 오늘 어때.

Before you submit: restart the kernel, run all cells, and check every ✓.
""")


def build() -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    nb.cells = CELLS
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, OUT)
    return OUT


if __name__ == "__main__":
    print(f"wrote {build()}")
