"""Build ``solutions/01_rnn/rnn.ipynb`` (the nbgrader source of lab 01) from the cells below.

    .venv/bin/python tests/lab01/build_notebook.py     # writes the solution notebook
    .venv/bin/genlab labs 01_rnn                       # regenerates labs/01_rnn/ from it

Edit the notebook here, not in Jupyter, so that the cells keep their nbgrader metadata.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "solutions" / "01_rnn" / "rnn.ipynb"

cells = []


def md(text: str) -> None:
    cells.append(nbformat.v4.new_markdown_cell(text.strip("\n")))


def code(grade_id: str, source: str, *, solution: bool = False, tags: tuple[str, ...] = ()) -> None:
    meta = {"nbgrader": {"grade": False, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
                         "solution": solution, "task": False}}
    if tags:
        meta["tags"] = list(tags)
    cells.append(nbformat.v4.new_code_cell(source.strip("\n"), metadata=meta))


def graded(grade_id: str, source: str, check: str) -> None:
    code(grade_id, source, solution=True)
    code(f"check_{grade_id}", check, tags=("check",))


# =====================================================================================
md(r"""
# Lab 01 — A recurrent language model (순환 신경망 언어 모델)

A **language model** predicts what comes next: *"the students opened their ___"* (books?
laptops? exams?), or in Korean *"학생들이 책을 ___"*. Trained on enough text, a model that is
good at this one task can also **generate** text: predict a distribution for the next
token, sample one, feed it back in, repeat. Every model of this course that writes text
(Lab 02's translator, Lab 03's GPT) does exactly that.

This lab builds the first such model, a character-level **recurrent neural network**
(RNN) with an **LSTM** cell, and trains it on the documentation text that ships with
Python. You write the five pieces that make it work, then plug them into the library's
model and train it on your CPU:

| part | you write | graded |
|---|---|---|
| 1 | `stream_batches(ids, batch_size, seq_len)`: the corpus as contiguous streams | yes |
| 2 | `LSTMCell.forward`: one LSTM step from its gates | yes |
| 3 | `lm_loss(logits, targets)`: cross-entropy over batch and time, in float32 | yes |
| 4 | `tbptt_step(model, batch, hidden)`: one step of truncated BPTT, state carried and detached | yes |
| 5 | `sample_next(logits, temperature, top_k, top_p, generator)`: temperature, top-k, top-p | yes |
| 6 | train the LSTM language model with your parts, and sample from it | no |
| 7 | what an RNN forgets, measured: RNN vs LSTM vs GPT on a recall task | no |
| 8 | LSTM against GPT on the same corpus and the same CPU time | no |

**How this notebook is graded.** Write code only where it says `# YOUR CODE HERE`, and keep
the names and signatures: hidden tests call your functions by name, in a separate process,
with inputs you have not seen (other sizes, other dtypes, an LSTM and a plain RNN). The check
under each part runs the same kinds of tests on small inputs and tells you what is wrong; a
part whose check prints ✓ is very likely to pass. Training and figure cells are not graded,
but they are the point of the lab: run them.
""")

md(r"""
### Glossary / 용어

| English | 한국어 | here |
|---|---|---|
| language model | 언어 모델 | a distribution over the next token given the previous ones |
| token, character | 토큰, 문자 | the unit the model reads and predicts; here one character |
| recurrent neural network (RNN) | 순환 신경망 | one cell applied at every time step, with a hidden state carried along |
| hidden state | 은닉 상태 | the vector `h_t` that summarises everything read so far |
| backpropagation through time (BPTT) | 시간에 따른 역전파 | backpropagation through the unrolled recurrence |
| truncated BPTT | 절단된 BPTT | backpropagate only within a window; carry the state, not its graph |
| detach | 그래프 분리 (detach) | keep a tensor's value, drop its autograd history |
| vanishing / exploding gradient | 기울기 소실 / 폭발 | gradients that shrink or grow geometrically with the distance in time |
| gradient clipping | 기울기 클리핑 | rescale the gradient when its norm exceeds a limit |
| LSTM (long short-term memory) | 장단기 메모리 (LSTM) | an RNN cell with a memory cell and three gates |
| gate: input, forget, output | 게이트: 입력, 망각, 출력 | values in (0, 1) that decide what to write, keep and read |
| cell state | 셀 상태 | the LSTM's memory `c_t` |
| cross-entropy | 교차 엔트로피 | `−log p(true next token)`, averaged |
| perplexity | 퍼플렉서티 (혼잡도) | `exp(cross-entropy)`: the effective number of equally likely choices |
| temperature | 온도 | `softmax(x / T)`: T < 1 sharpens, T > 1 flattens |
| top-k / top-p (nucleus) sampling | 상위 k / 상위 p (뉴클리어스) 샘플링 | sample only among the k likeliest tokens / the smallest set with mass p |
""")

code("setup", r"""
%matplotlib inline
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from genlab import training
from genlab.checks import lab01 as checks

SMALL = training.SMALL  # True when GENLAB_SMALL=1: tiny training runs (CI)
torch.manual_seed(0)
print(f"torch {torch.__version__}, small settings: {SMALL}, CUDA: {torch.cuda.is_available()}")
""")

# ------------------------------------------------------------------------------ part 1
md(r"""
## 1. The corpus as contiguous streams

A recurrent model reads text one token at a time and keeps a **hidden state** $h_t$, a
summary of everything it has read:

$$h_t = f(h_{t-1}, x_t), \qquad p(x_{t+1} \mid x_1, \dots, x_t) = \operatorname{softmax}(W_{hy} h_t + b_y).$$

Our corpus is one long string of about 420,000 characters. We cannot backpropagate through
all of it at once, so we cut it into **windows** of `seq_len` = T characters and train on one
window at a time. The question is what the model knows at the start of a window. If windows
are cut at random positions, every window starts from an empty state and the model never
learns to use more than T characters of context. Instead we keep the windows **in order** and
hand the state at the end of one window to the start of the next (part 4).

To train on B windows at once we cut the corpus into **B contiguous streams** and let row `i`
of every batch read stream `i`:

```
corpus:  t h e ␣ s t u d e n t s ␣ o p e n e d ␣ t h e i r ␣ b o o k s . ␣ ...   (N tokens)

stream 0: ids[0   : L+1]        window 0         window 1         window 2 ...
stream 1: ids[L   : 2L+1]     ┌───────────┐    ┌───────────┐
  ...                         │ B rows ×  │ →  │ B rows ×  │ →   ...
stream B-1                    │ T columns │    │ T columns │
                              └───────────┘    └───────────┘
```

Each stream holds $L = \lfloor (N-1)/B \rfloor$ input tokens plus the one token after them
(the target of its last input). Window $k$ takes columns $[kT, (k+1)T)$ of every stream, so
**row $i$ of window $k+1$ continues exactly where row $i$ of window $k$ stopped**, and a state
carried from one window to the next has read exactly the text that precedes it.

The target of every position is the next token: $y_t = x_{t+1}$, the inputs shifted left by
one. When T does not divide L, the last window is shorter (L mod T columns): keep it, do not
pad it.

**Common mistakes**

* reshaping the corpus as `(L, B)` and transposing: each row then reads every B-th
  character, which is not text at all;
* forgetting the shift (y = x, the model learns to copy its input) or shifting twice;
* streams of `N // B` tokens, which leaves the last stream without a target for its last
  input;
* windows that overlap (advancing by 1 instead of T), or dropping the last, shorter window.
""")

graded("stream_batches", r'''
def stream_batches(ids, batch_size, seq_len):
    """Cut a corpus into batch_size contiguous streams and yield (x, y) windows.

    Args:
        ids: LongTensor (N,), the whole corpus as token ids.
        batch_size: B, the number of streams (the rows of every window).
        seq_len: T, the number of columns of a window.

    Stream i is ids[i*L : i*L + L + 1] with L = (N - 1) // B: L inputs and the token after
    them (the few tokens left over at the very end are dropped). Window k holds columns
    [k*T, (k+1)*T) of every stream: x are those inputs, y the token after each of them
    (x shifted by one). So row i of window k+1 continues where row i of window k stopped:
    x_{k+1}[:, 0] == y_k[:, -1]. When T does not divide L the last window is shorter
    (L % T columns); yield it too, never padded.

    Yields:
        (x, y): LongTensors of shape (B, T) (the last window possibly (B, L % T)).
    """
    ### BEGIN SOLUTION
    L = (len(ids) - 1) // batch_size
    inputs = ids[: batch_size * L].view(batch_size, L)  # row i = stream i
    targets = ids[1 : batch_size * L + 1].view(batch_size, L)  # the next token of each input
    for start in range(0, L, seq_len):
        yield inputs[:, start : start + seq_len], targets[:, start : start + seq_len]
    ### END SOLUTION
''', "checks.check_stream_batches(stream_batches)")

code("streams_demo", r'''
# A small corpus, 3 streams, windows of 8 characters: each row continues the row above it.
from genlab.data import Vocab

sentence = "the students opened their books and she printed her essay."
vocab = Vocab(sorted(set(sentence)))
for k, (x, y) in enumerate(stream_batches(vocab.encode(sentence), batch_size=3, seq_len=8)):
    print(f"window {k}:", " | ".join(repr(vocab.decode(row.tolist())) for row in x))
''', tags=("plotting",))

# ------------------------------------------------------------------------------ part 2
md(r"""
## 2. The LSTM cell

### The plain RNN and backpropagation through time

The simplest recurrent cell (an "Elman" RNN) is

$$h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1} + b).$$

The **same** matrix $W_{hh}$ is used at every step. Unroll the recurrence over a window of T
steps and the model is a T-layer network whose layers all share $W_{hh}$. The loss is a sum
over positions, $L = \frac{1}{T}\sum_t L_t$, and the gradient with respect to a shared
parameter is the **sum of its gradients at every step where it was used**:

$$\frac{\partial L}{\partial W_{hh}} = \sum_{t=1}^{T} \frac{\partial L}{\partial h_t}\,
\frac{\partial h_t}{\partial W_{hh}}\Big|_{\text{step } t}, \qquad
\frac{\partial L_T}{\partial h_t} = \frac{\partial L_T}{\partial h_T}\prod_{s=t+1}^{T}
\frac{\partial h_s}{\partial h_{s-1}} .$$

That is **backpropagation through time** (BPTT). Two things follow:

* **Cost.** The backward pass walks back through every step that built the graph. Over the
  whole corpus that is 420,000 steps of activations kept in memory. **Truncating** the
  backward pass to the current window bounds the cost to T steps, while the *forward* pass
  still carries the state along the whole stream (part 4).
* **Vanishing and exploding gradients.** The influence of step $t$ on the loss at step $T$ is a
  product of $T-t$ Jacobians. When their norms are below 1 it shrinks geometrically (the model
  cannot learn long dependencies); above 1 it blows up (training diverges, which is why we
  **clip** the gradient norm).

The next cell checks the sum-over-time rule with autograd: give each time step its own copy
of $W_{hh}$, and the gradients of the copies add up to the gradient of the shared matrix.

### The LSTM: a memory with gates

The **LSTM** (Hochreiter & Schmidhuber, 1997) adds a memory cell $c_t$ that is changed only
by *elementwise* operations controlled by three **gates**, each a sigmoid in (0, 1):

$$
\begin{aligned}
i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) && \text{input gate: how much to write}\\
f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) && \text{forget gate: how much to keep (erase when 0)}\\
g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) && \text{cell candidate: what could be written}\\
o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) && \text{output gate: how much to read}\\
c_t &= f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t).
\end{aligned}
$$

**Why it helps.** Along the cell state, $\partial c_t / \partial c_{t-1} = f_t$: no matrix
product, no squashing. When the forget gate stays near 1, information (and gradient) flows
across many steps almost unchanged, so the LSTM can keep "the printer was out of toner"
for much longer than a plain RNN. It still has to read the sequence **one step at a time**,
and its memory still fades, as part 7 measures.

**Layout.** Like `torch.nn.LSTMCell`, one matrix `weight_ih` (4H × input) and one `weight_hh`
(4H × H) hold all four gates, stacked in the order **i, f, g, o** (rows `[0, H)` for i,
`[H, 2H)` for f, and so on), and there are two biases, `bias_ih` and `bias_hh`. Compute the
(B, 4H) pre-activations in one go, then split them into four (B, H) blocks. Because the
layout is the same, your cell loads the weights of `nn.LSTMCell` and must give the same
result.

**Common mistakes**

* exchanging the forget and input gates (f multiplies the *old* cell state);
* a sigmoid on the candidate g, or tanh on the gates;
* $h_t = o_t \odot c_t$ without the tanh, or $h_t$ computed from the old $c_{t-1}$;
* reading the four blocks in another order than i, f, g, o, or forgetting `bias_hh`.
""")

code("bptt_sum_demo", r'''
# The gradient of a shared matrix is the sum of its per-step gradients.
g = torch.Generator().manual_seed(0)
T, H = 6, 4
W_hh = torch.randn(H, H, generator=g) * 0.5
xs = torch.randn(T, H, generator=g)

W = W_hh.clone().requires_grad_(True)  # one shared matrix
copies = [W_hh.clone().requires_grad_(True) for _ in range(T)]  # one copy per time step
for weights in ([W] * T, copies):
    h = torch.zeros(H)
    for t in range(T):
        h = torch.tanh(xs[t] + weights[t] @ h + 0.1)
    h.square().sum().backward()
summed = sum(c.grad for c in copies)
print(f"largest difference between dL/dW_hh and the sum over steps: {(W.grad - summed).abs().max():.2e}")
print("per-step gradient norms, from the first step to the last:",
      [round(c.grad.norm().item(), 4) for c in copies])
''', tags=("plotting",))

graded("lstm_cell", r'''
class LSTMCell(nn.Module):
    """One LSTM step written from its gate equations; a drop-in for nn.LSTMCell.

    Parameters (created for you; the names, shapes and gate order of nn.LSTMCell):
        weight_ih (4H, input_size), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,).
        Rows [0, H) belong to the input gate i, [H, 2H) to the forget gate f,
        [2H, 3H) to the cell candidate g and [3H, 4H) to the output gate o.
    """

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        H, bound = hidden_size, 1 / math.sqrt(hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size).uniform_(-bound, bound))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, H).uniform_(-bound, bound))
        self.bias_ih = nn.Parameter(torch.empty(4 * H).uniform_(-bound, bound))
        self.bias_hh = nn.Parameter(torch.empty(4 * H).uniform_(-bound, bound))

    def forward(self, x, state=None):
        """x: (B, input_size); state: (h, c), each (B, H), or None for zeros.

        Returns (h_new, c_new), each (B, H), in the dtype of x.
        """
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        h, c = state
        ### BEGIN SOLUTION
        z = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh  # (B, 4H)
        z_i, z_f, z_g, z_o = z.chunk(4, dim=1)
        i = torch.sigmoid(z_i)  # input gate: how much of the candidate to write
        f = torch.sigmoid(z_f)  # forget gate: how much of the old memory to keep
        g = torch.tanh(z_g)  # cell candidate: what could be written
        o = torch.sigmoid(z_o)  # output gate: how much of the memory to read out
        c_new = f * c + i * g
        h_new = o * torch.tanh(c_new)
        return h_new, c_new
        ### END SOLUTION
''', "checks.check_lstm_cell(LSTMCell)")

md(r"""
### How far back does the gradient reach?

`state_gradient_norms` reads a piece of text one character at a time and measures
$\lVert \partial L_T / \partial h_t \rVert$: how much the loss of the **last** prediction
depends on the hidden state $t$ steps earlier. Below, for an untrained plain RNN and an
untrained LSTM of the library (both 128 units). The plain RNN's curve falls geometrically:
it cannot learn from what it read a few dozen characters ago. The LSTM's falls much more
slowly, thanks to the additive path along $c_t$.
""")

code("gradient_through_time", r'''
from genlab.data import CharTextDataModule
from genlab.models.rnn_lm import RNNLanguageModel
from genlab.plots import rnn as rnn_plots

text_data = CharTextDataModule(mode="streams")
piece = text_data.vocab.encode(text_data.text("train")[1000:1061])
norms = {}
for cell in ("rnn", "lstm"):
    torch.manual_seed(0)
    norms["plain RNN" if cell == "rnn" else "LSTM"] = RNNLanguageModel(
        text_data.vocab_size, cell=cell, embedding_dim=32, hidden_size=128).state_gradient_norms(piece)
rnn_plots.gradient_through_time_figure(norms, title="untrained models: ‖∂L_T/∂h_t‖ over 60 characters")
''', tags=("plotting",))

# ------------------------------------------------------------------------------ part 3
md(r"""
## 3. The language-model loss and perplexity

At every position $t$ of every row $b$ the model outputs logits $z_{b,t} \in \mathbb{R}^V$
for the next token, and we know the true next token $y_{b,t}$. The loss is the
cross-entropy at each position, **averaged over batch and time**:

$$\mathcal{L} = -\frac{1}{BT}\sum_{b=1}^{B}\sum_{t=1}^{T} \log \operatorname{softmax}(z_{b,t})_{y_{b,t}} .$$

It is measured in **nats** per character. Its exponential is the **perplexity**,
$\operatorname{PPL} = e^{\mathcal{L}}$: the number of equally likely characters the model
is, on average, choosing between. A model that knows nothing spreads its bet over all
$V = 103$ characters of the corpus: loss $\ln 103 \approx 4.63$, perplexity 103. A good
character model of English prose gets below 1.5 nats (perplexity 4.5).

**Why float32.** Under mixed precision the model computes its logits in float16 (largest
value 65504, about 3 significant digits). The log-softmax of float16 logits loses the
small probabilities, and `log(softmax(x))` in float16 even gives $\log 0 = -\infty$ for an
unlikely target. So cast the logits to float32 (`logits.float()`) before the loss; the
loss, and its gradient, then stay accurate whatever precision the model runs in.

`F.cross_entropy` computes a log-softmax and a mean in one call, but it expects a 2-D input:
flatten `(B, T, V)` to `(B·T, V)` and the targets to `(B·T,)`.

**Common mistakes**

* summing instead of averaging (the loss then grows with B and T, and so does the gradient);
* averaging over the batch only;
* applying `softmax` before `cross_entropy` (which already contains a log-softmax);
* shifting the targets again: `stream_batches` already did it;
* forgetting the float32 cast.
""")

graded("lm_loss", r'''
def lm_loss(logits, targets):
    """Mean next-token cross-entropy over batch and time, in float32.

    Args:
        logits: (B, T, V) scores for the next token at every position, any float dtype
            (float16 under mixed precision).
        targets: (B, T) long, the true next tokens (already shifted by stream_batches).

    Returns:
        A 0-d float32 tensor: -(1 / (B*T)) * sum over b, t of
        log softmax(logits[b, t])[targets[b, t]]. Its exp is the perplexity.
    """
    ### BEGIN SOLUTION
    B, T, V = logits.shape
    return F.cross_entropy(logits.float().reshape(B * T, V), targets.reshape(B * T))
    ### END SOLUTION
''', "checks.check_lm_loss(lm_loss)")

code("uniform_baseline", r'''
V = 103
uniform = torch.zeros(2, 5, V)  # equal logits: every character equally likely
loss = lm_loss(uniform, torch.randint(V, (2, 5)))
print(f"a model that knows nothing: loss {loss:.3f} nats = ln {V}, perplexity {loss.exp():.1f}")
''', tags=("plotting",))

# ------------------------------------------------------------------------------ part 4
md(r"""
## 4. Truncated backpropagation through time

Now put parts 1 to 3 together. The model is any callable
`model(x, hidden) -> (logits, new_hidden)`; for an LSTM the state is a pair `(h, c)`, for a
plain RNN or a GRU a single tensor `h` (here each is `(num_layers, B, H)`). One training
step on one window:

1. run the model on the window's inputs `x`, **starting from the carried state**;
2. score its logits against `y` with your `lm_loss`;
3. return the loss, and the model's new final state **detached** from the graph.

**Carry, then detach.** The state's *value* goes on to the next window: row `i` of the next
window is the continuation of row `i` of this one (part 1), so the model keeps the context it
has read. Its *graph* must not go on. `h.detach()` keeps the numbers and drops the autograd
history, so the next window's backward pass stops at the window boundary. That is the
**truncation**: backpropagation covers T steps, while the forward pass sees the whole stream.

Without the detach, the graph of window $k+1$ hangs on the graph of window $k$, which hangs on
window $k-1$, and so on: every step backpropagates further than the one before, memory grows
without bound, and, since PyTorch frees a graph after its backward pass, the second step
fails with *"Trying to backward through the graph a second time"*.

**Resets.** At the start of each epoch the streams start over from the beginning of the
corpus, so the state is reset to zeros (`hidden=None`); each evaluation also starts from
zeros, with its own state.

**Who does what.** `tbptt_step` returns the loss; the caller runs `loss.backward()`, clips
the gradient and steps the optimizer. The library's `RNNLanguageModel` calls your
`tbptt_step` from its `training_step`, keeps the returned state for the next batch and lets
Lightning do the rest (Lightning 2 removed its built-in `truncated_bptt_steps`, so the
module does it itself). Gradient clipping is the trainer's `gradient_clip_val`.

**Common mistakes**

* not detaching (the error above, or a slowly growing graph);
* detaching the wrong thing: the loss or the logits (then nothing learns), or only `h` of an
  LSTM's `(h, c)` (the gradient still crosses through `c`);
* starting every window from `None`: the state is reset every batch, and the model never sees
  more than T characters of context.
""")

graded("tbptt_step", r'''
def detach_hidden(hidden):
    """The same state cut from the autograd graph: a tensor, or a tuple of tensors (h, c)."""
    ### BEGIN SOLUTION
    if isinstance(hidden, torch.Tensor):
        return hidden.detach()
    return tuple(detach_hidden(h) for h in hidden)
    ### END SOLUTION


def tbptt_step(model, batch, hidden):
    """One step of truncated backpropagation through time, on one window.

    Args:
        model: called as model(x, hidden) -> (logits (B, T, V), new_hidden).
        batch: (x, y), LongTensors (B, T): one window from stream_batches.
        hidden: the state carried from the previous window: None (zeros) at the start,
            a tensor h, or a tuple (h, c) for an LSTM.

    Returns:
        (loss, new_hidden): loss = lm_loss of this window, a float32 scalar whose gradient
        reaches the parameters through this window only; new_hidden = the model's final
        state, detached, to carry into the next window. The caller runs loss.backward()
        and the optimizer step.
    """
    ### BEGIN SOLUTION
    x, y = batch
    logits, new_hidden = model(x, hidden)
    loss = lm_loss(logits, y)
    return loss, detach_hidden(new_hidden)
    ### END SOLUTION
''', "checks.check_tbptt_step(tbptt_step, lm_loss)")

code("graph_growth_demo", r'''
# What the detach buys: the depth of the autograd graph behind the carried state.
from genlab.nn.rnn import grad_fn_depth

torch.manual_seed(0)
demo = RNNLanguageModel(vocab_size=20, embedding_dim=8, hidden_size=16)
windows = list(stream_batches(torch.randint(20, (2 * 8 * 10 + 1,)), batch_size=2, seq_len=8))
carried, attached = None, None
for k, (x, y) in enumerate(windows[:6]):
    _, carried = tbptt_step(demo, (x, y), carried)  # yours: detached
    _, attached = demo(x, attached)  # the same model without the detach
    print(f"window {k}: graph depth behind the state with detach {grad_fn_depth(carried):3d}, "
          f"without {grad_fn_depth(attached):4d}")
''', tags=("plotting",))

# ------------------------------------------------------------------------------ part 5
md(r"""
## 5. Sampling the next character

To generate, the model reads a **priming** text, then repeatedly turns its last logits
$x \in \mathbb{R}^V$ into one next token and feeds that token back in (with the carried
state, so each new character costs one step). Always taking the most likely token
(**greedy**) gives dull, repetitive text; sampling from the full distribution sometimes
picks absurd tokens. Three knobs sit in between:

* **Temperature** $T$: sample from $\operatorname{softmax}(x / T)$. $T < 1$ sharpens the
  distribution toward the likeliest tokens, $T > 1$ flattens it, and as $T \to 0$ all the
  mass goes to the argmax: $T = 0$ *is* greedy decoding (handle it without dividing by 0).
  The temperature divides the **logits**; dividing the probabilities and renormalising would
  change nothing.
* **Top-k**: keep only the $k$ largest logits, set the others to $-\infty$, renormalise.
* **Top-p (nucleus)**: sort the tokens by probability and keep the **smallest** set whose
  total probability reaches $p$. The token whose probability makes the running total cross
  $p$ is **in** the set (keep a token while the mass *before* it is below $p$), so the top
  token is always kept, and when it alone has probability $\ge p$ the nucleus is that one
  token. The set is large when the model is unsure and small when it is confident.

Apply them in this order: temperature, then top-k, then top-p on what is left. Then draw with
`torch.multinomial(probs, 1, generator=generator)`. The **generator** makes sampling
reproducible: the same seed gives the same text, whatever else uses torch's global random
numbers.

**Common mistakes**

* applying the temperature after the softmax (no effect at all);
* dropping the token that crosses $p$ (the nucleus is then too small, and can be empty);
* `torch.multinomial` without `generator=` (the global RNG: not reproducible);
* `logits /= T` in place, which changes the caller's tensor;
* $T = 0$ giving `inf`/`NaN` instead of the argmax.
""")

graded("sample_next", r'''
def sample_next(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """Sample one token per row from logits (B, V).

    Args:
        logits: (B, V) float scores for the next token. Not modified.
        temperature: T >= 0; sample from softmax(logits / T). T == 0 means greedy (argmax).
        top_k: None, or keep only the k largest logits of each row.
        top_p: None, or keep the smallest set of likeliest tokens whose probability (after
            the temperature and top-k) reaches top_p; the token that crosses top_p is kept.
        generator: the torch.Generator to draw with (the same seed gives the same samples).

    Returns:
        LongTensor (B,): one token id per row.
    """
    ### BEGIN SOLUTION
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        sorted_probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
        remove = mass_before >= top_p  # the top token (mass before it: 0) always stays
        remove = remove.scatter(-1, order, remove)  # back to vocabulary order
        logits = logits.masked_fill(remove, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)
    ### END SOLUTION
''', "checks.check_sample_next(sample_next)")

# ------------------------------------------------------------------------------ part 6
md(r"""
## 6. Train the LSTM language model with your parts

`genlab.models.rnn_lm.RNNLanguageModel` is a LightningModule: embedding (64), one LSTM layer
(256 units), dropout, and a linear layer back to the 103 characters. It takes the parts you
wrote as constructor arguments: `loss_fn=lm_loss` (yours) scores every window,
`step_fn=tbptt_step` (yours) runs every training step, and the model keeps the state your
step returns for the next batch. The batches come from **your** `stream_batches` over the
training text, in order; the validation text is read as streams too, from zeros, with the
state carried.

The settings are the library's tuned defaults, the same ones `genlab fit rnn_lm` uses:
AdamW, a short warmup then a cosine decay, gradient clipping at norm 1, a validation every
100 steps, and the **best checkpoint** (lowest validation loss) kept, because a small corpus
read over and over is eventually memorised: the validation loss stops improving, then rises.

Watch `train_loss`: a model that knows nothing starts near $\ln 103 \approx 4.6$.
""")

code("lstm_data", r'''
from torch.utils.data import DataLoader

model_args, data_args, trainer_args = training.settings(
    "rnn_lm", small_model=dict(hidden_size=64, embedding_dim=16), small_data=dict(batch_size=8, block_size=32),
    small_steps=20)
trainer_args["max_steps"] = training.pick(1200, 20)  # about 12 epochs of the streams
print("model:", model_args, "\ndata:", data_args, "\ntrainer:", trainer_args)

text_data = CharTextDataModule(**data_args)
text_data.setup()
train_ids = text_data.vocab.encode(text_data.text("train"))
train_windows = list(stream_batches(train_ids, data_args["batch_size"], data_args["block_size"]))  # yours
library_windows = list(text_data.train_dataloader())
same = all(torch.equal(a, c) and torch.equal(b, d) for (a, b), (c, d) in zip(library_windows, train_windows))
print(f"{len(train_windows)} windows per epoch; the library's stream batches equal yours: {same}")
''', tags=("training",))

code("lstm_train", r'''
from genlab.models.rnn_lm import ValidationClock

training.quiet_lightning()
import lightning as L

L.seed_everything(0, verbose=False)
lstm_lm = RNNLanguageModel(text_data.vocab_size, **model_args, loss_fn=lm_loss, step_fn=tbptt_step)  # <- yours
lstm_clock = ValidationClock()
trainer = training.make_trainer("rnn_lm", callbacks=[lstm_clock], checkpoint=True, **trainer_args)
trainer.fit(lstm_lm, train_dataloaders=DataLoader(train_windows, batch_size=None),
            val_dataloaders=text_data.val_dataloader())
best = trainer.checkpoint_callback.best_model_path
lstm_lm.load_state_dict(torch.load(best, weights_only=True)["state_dict"])  # back to the best checkpoint
best_val = min(lstm_clock.values)
print(f"trained for {lstm_clock.seconds[-1]:.0f} s; best validation loss {best_val:.3f} nats/char "
      f"(perplexity {math.exp(best_val):.2f})")
''', tags=("training",))

code("lstm_loss_curves", r'''
training.loss_figure(trainer, keys=["train_loss", "val_loss"], title="LSTM language model: next-character loss")
''', tags=("plotting",))

md(r"""
### Samples at three temperatures

The model reads the priming text, then generates one character at a time, each one sampled by
**your** `sample_next` and fed back with the carried state. At $T = 0.5$ the text is
cautious and repetitive; at $T = 1$ it is the model's honest distribution; at $T = 1.5$ it
starts inventing words. (In small-settings mode the model is untrained, so all three are
noise.)
""")

code("lstm_samples", r'''
for setting in (dict(temperature=0.5), dict(temperature=1.0), dict(temperature=1.5),
                dict(temperature=1.0, top_k=5), dict(temperature=1.0, top_p=0.9)):
    generator = torch.Generator(device=lstm_lm.device).manual_seed(0)
    text = lstm_lm.sample_text(text_data.vocab, "The return value ", training.pick(300, 60),
                               generator=generator, sampler=sample_next, **setting)  # <- yours
    print(f"--- {setting} ---\n{text}\n")
''', tags=("training",))

code("temperature_figure", r'''
ids = text_data.vocab.encode("The return value is a ").view(1, -1).to(lstm_lm.device)
lstm_lm.eval()
with torch.no_grad():
    next_logits = lstm_lm(ids)[0][0, -1]
rnn_plots.temperature_figure(next_logits, text_data.vocab.itos, (0.5, 1.0, 2.0),
                             title="next character after 'The return value is a ': softmax(x / T)")
''', tags=("plotting",))

md(r"""
### The gates, as a figure

Below, the trained LSTM reads a sentence of its corpus; each panel shows the first 16 hidden
units (rows) at every character (columns). Look for forget-gate units that stay near 1
across a word and drop at a space or a quote (they "erase" at boundaries), input-gate units
that open on particular characters, and cell-state units that count or hold a value over
several characters. (Small-settings mode shows an untrained model: no structure yet.)
""")

code("gates_figure", r'''
sentence = 'Return a new list of the keys. "None" is returned.'
trace = lstm_lm.gate_trace(text_data.vocab.encode(sentence))
title = "untrained LSTM (small settings)" if SMALL else "trained LSTM"
rnn_plots.gates_figure(trace, list(sentence), title=f"{title}: gates and cell state while reading")
''', tags=("plotting",))

md(r"""
### Your LSTM cell inside the model

`RNNLanguageModel(cell=LSTMCell)` runs **your** cell step by step in a Python loop instead of
torch's fused LSTM kernel. Loaded with the trained weights, it gives the same predictions;
it is only slower, which is why the training above used the fused kernel.
""")

code("your_cell_in_the_model", r'''
import time

yours = RNNLanguageModel(text_data.vocab_size, **{**model_args, "cell": LSTMCell})
state = {k.replace("rnn.rnn.", "rnn.cells.0.").removesuffix("_l0"): v for k, v in lstm_lm.state_dict().items()}
yours.load_state_dict(state)
yours.to(lstm_lm.device).eval()
x = text_data.vocab.encode(text_data.text("val")[:256]).view(2, -1).to(lstm_lm.device)
with torch.no_grad():
    lstm_lm(x), yours(x)  # warm up both
    start = time.perf_counter(); fused = lstm_lm(x)[0]; t_fused = time.perf_counter() - start
    start = time.perf_counter(); looped = yours(x)[0]; t_loop = time.perf_counter() - start
print(f"largest logit difference: {(fused - looped).abs().max():.2e}; "
      f"fused kernel {1000 * t_fused:.1f} ms, your cell in a Python loop {1000 * t_loop:.1f} ms")
''', tags=("training",))

# ------------------------------------------------------------------------------ part 7
md(r"""
## 7. What an RNN forgets, measured

*"...she found that the printer was out of toner. She went to the store, bought more toner,
came back and installed the toner. Finally she printed her ___"*. The answer is on the page,
dozens of words back. A language model has to carry it across everything in between.

We turn this into an experiment with an exact gap. Each sequence has one **key** letter
(A–H), then **N random filler letters**, then a question mark; the model must answer the key:

```
...qwkzD ptmsoqbnxa ?   → D        (N = 10)
```

Three models with the **same number of parameters** (about 27,000: the GPT's count, and RNN
and LSTM hidden sizes chosen to match it) learn the task on a mix of distances up to 64,
then we measure their accuracy at each distance N:

* a plain **RNN**, whose gradient through $N$ steps is a product of $N$ Jacobians;
* an **LSTM**, with its additive memory path;
* Lab 03's **GPT** (2 layers, context 48), which does not carry anything: attention reads
  every position of its window directly, at path length 1, however far back the key is;
  but a key outside its window is simply invisible.

Chance is 1/8 = 12.5%. (Small-settings mode trains for a few steps only: it shows untrained
models near chance.)
""")

code("memory_experiment", r'''
import time

from genlab.data.recall import RecallTask, recall_accuracy, train_recall
from genlab.models.gpt import GPT
from genlab.models.rnn_lm import hidden_size_for_budget

task = RecallTask(max_distance=training.pick(64, 24))
x, answers = task.sample([10], torch.Generator().manual_seed(0))
print("an example with N = 10:", repr(task.render(x[0])), "->", task.vocab.itos[answers[0]])

torch.manual_seed(0)
context = training.pick(48, 16)
models = {"GPT (context %d)" % context: GPT(task.vocab_size, block_size=context, n_layer=2, n_head=2, n_embd=32)}
budget = sum(p.numel() for p in models["GPT (context %d)" % context].parameters())
for cell, name in (("rnn", "plain RNN"), ("lstm", "LSTM")):
    hidden = hidden_size_for_budget(budget, task.vocab_size, cell, embedding_dim=16)
    models[name] = RNNLanguageModel(task.vocab_size, cell=cell, embedding_dim=16, hidden_size=hidden)
for name, m in models.items():
    print(f"{name:>16}: {sum(p.numel() for p in m.parameters()):,} parameters")

distances = [d for d in (1, 2, 4, 8, 16, 24, 32, 48, 64) if d <= task.max_distance]
steps = training.pick(800, 10)
accuracy = {}
for name, m in models.items():
    start = time.perf_counter()
    window = context if name.startswith("GPT") else None
    train_recall(m, task, steps=steps, batch_size=64, lr=2e-3, context=window)
    accuracy[name] = recall_accuracy(m, task, distances, context=window)
    print(f"{name:>16}: {time.perf_counter() - start:5.1f} s, accuracy by distance "
          + " ".join(f"{a:.2f}" for a in accuracy[name].tolist()))
if SMALL:
    print("(small settings: a few training steps only, so these models are untrained and near chance)")
''', tags=("training",))

code("memory_figure", r'''
rnn_plots.memory_figure(distances, accuracy, task.chance, context={"GPT (context %d)" % context: context},
                        title="recall accuracy against the distance N (equal parameter budgets)")
''', tags=("plotting",))

md(r"""
**Reading the figure.** The plain RNN answers well only when the key is a few characters
back; beyond a dozen or so it is barely better than a guess: the gradient that would teach it
to hold the key through the fillers vanishes over a few dozen steps (part 2's figure). The
LSTM holds the key much longer, because it learned to keep it in its cell state through
every filler character, one step after another; at the longest gaps its memory starts to
fade, and trained on longer gaps it fades further. The GPT is perfect at every distance
that fits in its window (the dotted line) and at chance beyond it: attention has no
trouble with distance, only with the size of the window it was given. That is the
trade-off of Lab 03: a path of length 1 between any two positions, at a cost that grows
with the square of the window.
""")

# ------------------------------------------------------------------------------ part 8
md(r"""
## 8. LSTM against GPT: the same corpus, the same CPU time

Which model learns the corpus faster on *your* machine? We give Lab 03's GPT (4 layers,
128 wide, context 64, the library's `genlab fit gpt` settings) exactly the wall-clock time
the LSTM trained for in part 6, and plot both validation losses (nats per character, on the
same validation text) against the seconds spent.

The two models pay for time very differently:

| | LSTM | GPT (self-attention) |
|---|---|---|
| work per layer, sequence of n | $O(n \cdot d^2)$ | $O(n^2 \cdot d)$ |
| sequential operations | $O(n)$: step $t$ needs step $t-1$ | $O(1)$: all positions at once |
| path between two positions | $O(n)$ | $O(1)$ |
| context | unbounded in principle (carried state), fading in practice | exactly its window |

An LSTM must finish character $t-1$ before it can start character $t$, so a window of 128
characters is 128 small matrix products in a row; a GPT computes all 64 positions of its
window in a few large matrix products, which a GPU (and, less dramatically, a multi-core CPU)
runs in parallel. On a GPU this difference dominates. On a laptop CPU, with models this small,
the two are closer than you might expect, which is what the figure measures. (Note the GPT's
validation reads windows of 64 characters, each from scratch, while the LSTM reads the
validation text as streams with its state carried; both are next-character losses in nats
on the same text.)
""")

code("gpt_same_budget", r'''
import logging

logging.getLogger("lightning.pytorch.callbacks.timer").setLevel(logging.WARNING)  # "time limit reached" is expected
gpt_model_args, gpt_data_args, gpt_trainer_args = training.settings(
    "gpt", small_model=dict(n_layer=1, n_embd=32), small_data=dict(block_size=32, batch_size=8), small_steps=20)
budget_s = max(lstm_clock.seconds[-1], 1.0)
gpt_trainer_args.update(max_steps=-1, max_time={"seconds": budget_s}, val_check_interval=training.pick(100, 5),
                        limit_val_batches=training.pick(20, 2))
L.seed_everything(0, verbose=False)
gpt_data = CharTextDataModule(**gpt_data_args)
gpt = GPT(vocab_size=gpt_data.vocab_size, block_size=gpt_data.block_size, **gpt_model_args)
gpt_clock = ValidationClock()
gpt_trainer = training.make_trainer("gpt", callbacks=[gpt_clock], **gpt_trainer_args)
gpt_trainer.fit(gpt, datamodule=gpt_data)
print(f"GPT: {gpt_trainer.global_step} steps in {budget_s:.0f} s, best validation loss {min(gpt_clock.values):.3f}; "
      f"LSTM: {trainer.global_step} steps, best {min(lstm_clock.values):.3f}")
''', tags=("training",))

code("loss_vs_time", r'''
rnn_plots.loss_vs_time_figure({"LSTM (part 6)": (lstm_clock.seconds, lstm_clock.values),
                               "GPT (lab 03)": (gpt_clock.seconds, gpt_clock.values)},
                              title="validation loss against wall-clock time, same corpus and CPU")
''', tags=("plotting",))

md(r"""
## 9. Summary

* A language model predicts the next token; its loss is the cross-entropy averaged over
  batch and time, in float32, and $e^{\text{loss}}$ is the perplexity.
* An RNN shares one recurrent matrix across time, so its gradient is a **sum over time
  steps**, and backpropagating through a whole corpus is unaffordable. **Truncated BPTT**
  cuts the corpus into contiguous streams, carries the state's *value* from window to
  window and **detaches** its *graph*, so backpropagation covers one window at a time.
* The LSTM's gates decide what to erase (f), write (i, g) and read (o); its additive cell
  path carries gradient much further than a plain RNN, but it is still sequential and its
  memory still fades.
* Sampling: temperature divides the logits ($T \to 0$ is greedy); top-k and top-p keep the
  likeliest tokens (the nucleus includes the token that crosses $p$); a `torch.Generator`
  makes it reproducible.
* Attention (Lab 03) removes the recurrence: every position reaches every other in one step,
  computed in parallel, at a cost quadratic in the window.

Before you submit: restart the kernel and run all cells, and check every ✓.
""")


def build() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    nb.cells = cells
    return nb


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(build(), OUT)
    print(f"wrote {OUT.relative_to(REPO)} ({len(cells)} cells)", file=sys.stderr)
