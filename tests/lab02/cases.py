"""Mutants (realistic bugs), correct variants and cheats of lab 02's graded cells.

Each case rewrites one cell of ``solutions/02_seq2seq/seq2seq.ipynb`` found by its nbgrader
``grade_id``; the case harness (``tests/labs``) grades them all and runs each through its
public check. Mutants are text replacements of the solution, so they break loudly
(``MutantDrift``) when the solution changes under them.
"""
from __future__ import annotations

from tests.labs.harness import Cheat, Mutant, Variant

PM, AA, DS, DEC, BLEU = "padding_mask", "additive_attention", "decoder_step", "decoding", "bleu"

MUTANTS = [
    # --- 1. padding mask
    Mutant("pm_off_by_one", PM, (("positions[None, :] < lengths[:, None]", "positions[None, :] <= lengths[:, None]"),),
           parts=("padding_mask",), keywords=("off by one",)),
    Mutant("pm_inverted", PM, (("positions[None, :] < lengths[:, None]", "positions[None, :] >= lengths[:, None]"),),
           parts=("padding_mask",), keywords=("inverted",)),
    Mutant("pm_ignores_max_len", PM, (("torch.arange(max_len, device=lengths.device)",
                                       "torch.arange(int(lengths.max()), device=lengths.device)"),),
           parts=("padding_mask",), keywords=("max_len",)),
    Mutant("pm_float_mask", PM, (("return positions[None, :] < lengths[:, None]",
                                  "return (positions[None, :] < lengths[:, None]).float()"),),
           parts=("padding_mask",), keywords=("torch.bool",)),
    Mutant("pm_unsqueezes_lengths_in_place", PM, (("    return positions[None, :] < lengths[:, None]",
                                                   "    lengths.unsqueeze_(1)  # (B, 1): one column per sequence\n"
                                                   "    return positions[None, :] < lengths"),),
           parts=("padding_mask",), keywords=("`lengths` in place",)),
    # --- 2. additive attention
    Mutant("aa_mask_inverted", AA, (("scores.masked_fill(~mask,", "scores.masked_fill(mask,"),),
           parts=("additive_attention",), keywords=("inverted",)),
    Mutant("aa_mask_after_softmax", AA, (
        ("        if mask is not None:\n            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)"
         "  # safe in float16\n        weights = torch.softmax(scores, dim=-1)  # over the source positions\n",
         "        weights = torch.softmax(scores, dim=-1)  # over the source positions\n        if mask is not None:\n"
         "            weights = weights * mask\n"),),
           parts=("additive_attention",), keywords=("after the softmax",)),
    Mutant("aa_softmax_over_batch", AA, (("weights = torch.softmax(scores, dim=-1)", "weights = torch.softmax(scores, dim=0)"),),
           parts=("additive_attention",), keywords=("batch axis",)),
    Mutant("aa_fill_minus_1e9", AA, (("torch.finfo(scores.dtype).min", "-1e9"),),
           parts=("additive_attention", "mixed_precision"), keywords=("-1e9", "65504")),
    Mutant("aa_context_from_keys", AA, (("(weights[:, :, None] * values)", "(weights[:, :, None] * keys)"),),
           parts=("additive_attention",), keywords=("values",)),
    Mutant("aa_no_tanh", AA, (("hidden = torch.tanh(self.W(query)[:, None, :] + self.U(keys))",
                               "hidden = self.W(query)[:, None, :] + self.U(keys)"),),
           parts=("additive_attention",), keywords=("tanh",)),
    Mutant("aa_scores_under_no_grad", AA, (
        ("        hidden = torch.tanh(self.W(query)[:, None, :] + self.U(keys))  # (B, S, d_a)\n"
         "        scores = self.v(hidden).squeeze(-1)  # (B, S): the energies e_j\n",
         "        with torch.no_grad():  # the scores only choose the weights\n"
         "            hidden = torch.tanh(self.W(query)[:, None, :] + self.U(keys))  # (B, S, d_a)\n"
         "            scores = self.v(hidden).squeeze(-1)  # (B, S): the energies e_j\n"),),
           parts=("additive_attention",), keywords=("no gradient reaches `query`",)),
    Mutant("aa_zeroes_padded_values_in_place", AA, (
        ("        if mask is not None:\n",
         "        if mask is not None:\n            values.masked_fill_(~mask[:, :, None], 0.0)  # padding adds nothing\n"),),
           parts=("additive_attention",), keywords=("`values` in place",)),
    # --- 3. decoder step, teacher forcing, loss
    Mutant("ds_attends_with_new_state", DS, (
        ("    logits = decoder.out(torch.cat([new_state, context, emb], dim=-1))  # (B, V)",
         "    context, weights = decoder.attention(new_state, memory, memory, src_mask)\n"
         "    logits = decoder.out(torch.cat([new_state, context, emb], dim=-1))  # (B, V)"),),
           parts=("decoder_step",), keywords=("s_{i-1}",)),
    Mutant("ds_output_reads_old_state", DS, (("decoder.out(torch.cat([new_state, context, emb]",
                                              "decoder.out(torch.cat([state, context, emb]"),),
           parts=("decoder_step",), keywords=("new one", "previous state")),
    Mutant("tf_target_not_shifted", DS, (("decoder_step(decoder, tgt[:, i], state, memory, src_mask)",
                                          "decoder_step(decoder, tgt[:, i + 1], state, memory, src_mask)"),),
           parts=("decoder_step",), keywords=("not shifted",)),
    Mutant("tf_state_not_carried", DS, (("logits, state, weights = decoder_step(", "logits, _, weights = decoder_step("),),
           parts=("decoder_step",), keywords=("state",)),
    Mutant("ds_attention_under_no_grad", DS, (
        ("    context, weights = decoder.attention(state, memory, memory, src_mask)  # the query is s_{i-1}\n",
         "    with torch.no_grad():  # the weights are only for the plots\n"
         "        context, weights = decoder.attention(state, memory, memory, src_mask)\n"),),
           parts=("decoder_step",), keywords=("no gradient reaches `memory`",)),
    Mutant("tf_default_list_arguments", DS, (
        ("def teacher_forcing(decoder, tgt, state, memory, src_mask):",
         "def teacher_forcing(decoder, tgt, state, memory, src_mask, all_logits=[], all_weights=[]):"),
        ("    all_logits, all_weights = [], []\n", "")),
           parts=("decoder_step",), keywords=("keeps state between calls",)),
    Mutant("loss_pads_marked_in_place", DS, (
        ("    targets = tgt[:, 1:]  # what each step must predict\n",
         "    targets = tgt[:, 1:]  # what each step must predict\n"
         "    targets[targets == pad_id] = -100  # cross_entropy skips -100\n"),
        (", ignore_index=pad_id)", ")")),
           parts=("decoder_step",), keywords=("`tgt` in place",)),
    Mutant("loss_targets_not_shifted", DS, (("targets = tgt[:, 1:]", "targets = tgt[:, :-1]"),),
           parts=("decoder_step",), keywords=("tgt[:, 1:]",)),
    Mutant("loss_counts_padding", DS, ((", ignore_index=pad_id)", ")"),),
           parts=("decoder_step",), keywords=("padding",)),
    Mutant("loss_in_float16", DS, (("F.cross_entropy(logits.float().reshape", "F.cross_entropy(logits.reshape"),),
           parts=("decoder_step",), keywords=("float32",)),
    # --- 4. decoding
    Mutant("greedy_no_pad_after_eos", DEC, (("tokens = logits.argmax(dim=-1).masked_fill(finished, pad_id)",
                                             "tokens = logits.argmax(dim=-1)"),),
           parts=("decoding",), keywords=("pad_id",)),
    Mutant("greedy_stops_at_first_eos", DEC, (("        if finished.all():", "        if finished.any():"),),
           parts=("decoding",), keywords=("every row",)),
    Mutant("beam_adds_probabilities", DEC, (("logp = torch.log_softmax(logits.float(), dim=-1)",
                                             "logp = torch.softmax(logits.float(), dim=-1)"),),
           parts=("decoding",), keywords=("log-probabilities",)),
    Mutant("beam_no_length_normalisation", DEC, (("finished.append((total / len(seq) ** alpha, seq))",
                                                  "finished.append((total, seq))"),),
           parts=("decoding",), keywords=("length normalisation",)),
    Mutant("beam_forgets_finished", DEC, (("        for _ in range(max_len):\n            last = ",
                                           "        for _ in range(max_len):\n            finished = []\n            last = "),),
           parts=("decoding",), keywords=("were lost",)),
    Mutant("beam_state_not_reordered", DEC, (("rows = take_rows(new_rows, torch.tensor(keep))", "rows = new_rows"),),
           parts=("decoding",), keywords=("take_rows",)),
    Mutant("greedy_switches_grad_off", DEC, (("    B = num_rows(state)\n    tokens = torch.full(",
                                              "    torch.set_grad_enabled(False)  # decoding needs no gradients\n"
                                              "    B = num_rows(state)\n    tokens = torch.full("),),
           parts=("decoding",), keywords=("switched off",)),
    # --- 5. BLEU
    Mutant("bleu_on_token_ids", BLEU, (("    hypotheses, references = to_text(pred_ids), to_text(ref_ids)\n",
                                        "    hypotheses = [\" \".join(str(i) for i in row) for row in pred_ids.tolist()]\n"
                                        "    references = [\" \".join(str(i) for i in row) for row in ref_ids.tolist()]\n"),),
           parts=("bleu",), keywords=("token ids",)),
    Mutant("bleu_not_cut_at_eos", BLEU, (("                    break\n", "                    continue\n"),),
           parts=("bleu",), keywords=("after the first <eos>",)),
    Mutant("bleu_mean_of_sentence_bleu", BLEU, (
        ("return sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize).score",
         "return sum(sacrebleu.sentence_bleu(h, [r], tokenize=tokenize).score\n"
         "               for h, r in zip(hypotheses, references)) / len(hypotheses)"),),
           parts=("bleu",), keywords=("sentence-level",)),
    Mutant("bleu_default_tokenizer", BLEU, (("[references], tokenize=tokenize).score", "[references]).score"),),
           parts=("bleu",), keywords=("tokenize",)),
    Mutant("bleu_returns_the_object", BLEU, (("[references], tokenize=tokenize).score", "[references], tokenize=tokenize)"),),
           parts=("bleu",), keywords=("BLEUScore",)),
    Mutant("bleu_drops_bos_in_place", BLEU, (("        for row in ids.tolist():\n",
                                              "        ids[ids == 1] = 0  # <bos> is dropped like <pad>\n"
                                              "        for row in ids.tolist():\n"),),
           parts=("bleu",), keywords=("`ref_ids` in place",)),
]

VARIANTS = [
    Variant("pm_loop", PM, r'''
def padding_mask(lengths, max_len):
    mask = torch.zeros(len(lengths), max_len, dtype=torch.bool)
    for b, n in enumerate(lengths.tolist()):
        mask[b, :n] = True
    return mask
''', "a loop over the sequences"),
    Variant("pm_expand_lt", PM, r'''
def padding_mask(lengths, max_len):
    B = lengths.shape[0]
    return torch.lt(torch.arange(max_len).unsqueeze(0).expand(B, max_len), lengths.long().unsqueeze(1))
''', "expand + torch.lt"),
    Variant("aa_einsum_where", AA, r'''
class AdditiveAttention(nn.Module):
    def __init__(self, query_size, key_size, attention_size):
        super().__init__()
        self.W = nn.Linear(query_size, attention_size, bias=False)
        self.U = nn.Linear(key_size, attention_size, bias=False)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def forward(self, query, keys, values, mask=None):
        energy = torch.einsum("bsa,a->bs", torch.tanh(self.W(query).unsqueeze(1) + self.U(keys)), self.v.weight[0])
        if mask is not None:
            energy = torch.where(mask, energy, torch.full_like(energy, float("-inf")))
        weights = torch.softmax(energy, dim=1)
        return torch.einsum("bs,bsd->bd", weights, values), weights
''', "einsum, torch.where with -inf"),
    Variant("aa_loop_over_source", AA, r'''
class AdditiveAttention(nn.Module):
    def __init__(self, query_size, key_size, attention_size):
        super().__init__()
        self.W = nn.Linear(query_size, attention_size, bias=False)
        self.U = nn.Linear(key_size, attention_size, bias=False)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def forward(self, query, keys, values, mask=None):
        wq = self.W(query)
        energies = [self.v(torch.tanh(wq + self.U(keys[:, j]))) for j in range(keys.shape[1])]
        e = torch.cat(energies, dim=1)  # (B, S)
        if mask is not None:
            e = e.masked_fill(mask.logical_not(), torch.finfo(e.dtype).min)
        e = e - e.max(dim=1, keepdim=True).values
        w = torch.exp(e)
        if mask is not None:
            w = w * mask
        w = w / w.sum(dim=1, keepdim=True)
        context = torch.bmm(w.unsqueeze(1), values).squeeze(1)
        return context, w
''', "a loop over the source positions, a hand-written softmax, bmm"),
    Variant("ds_preallocated", DS, r'''
def decoder_step(decoder, prev_token, state, memory, src_mask):
    y = decoder.embedding(prev_token)
    c, a = decoder.attention(state, memory, memory, src_mask)
    s = decoder.cell(torch.hstack([y, c]), state)
    return decoder.out(torch.hstack([s, c, y])), s, a


def teacher_forcing(decoder, tgt, state, memory, src_mask):
    B, T = tgt.shape
    steps = T - 1
    logits = weights = None
    i = 0
    while i < steps:
        out, state, w = decoder_step(decoder, tgt[:, i], state, memory, src_mask)
        if logits is None:
            logits = out.new_zeros(B, steps, out.shape[-1])
            weights = w.new_zeros(B, steps, w.shape[-1])
        logits[:, i], weights[:, i] = out, w
        i += 1
    return logits, weights


def sequence_loss(logits, tgt, pad_id):
    target = tgt[:, 1:]
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
    real = (target != pad_id).float()
    return -(logp * real).sum() / real.sum()
''', "hstack, a while loop into preallocated tensors, cross-entropy by hand"),
    Variant("dec_batched_beam", DEC, r'''
def greedy_decode(step, state, bos_id, eos_id, max_len, pad_id=0):
    B = num_rows(state)
    prev = torch.full((B,), bos_id, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool)
    cols = []
    while len(cols) < max_len and not bool(done.all()):
        logits, state = step(prev, state)
        prev = torch.where(done, torch.full_like(prev, pad_id), logits.argmax(-1))
        cols.append(prev)
        done = done | prev.eq(eos_id)
    return torch.stack(cols, 1)


def beam_search(step, state, bos_id, eos_id, max_len, width, alpha=1.0, pad_id=0):
    B, k = num_rows(state), width
    state = take_rows(state, torch.arange(B).repeat_interleave(k))
    seqs = torch.zeros(B, k, 0, dtype=torch.long)
    scores = torch.full((B, k), float("-inf"))
    scores[:, 0] = 0.0
    last = torch.full((B * k,), bos_id, dtype=torch.long)
    finished = [[] for _ in range(B)]
    for t in range(1, max_len + 1):
        logits, state = step(last, state)
        V = logits.shape[-1]
        cand = (scores.unsqueeze(-1) + torch.log_softmax(logits.float(), -1).view(B, k, V)).view(B, -1)
        top, idx = cand.topk(k, dim=-1)
        parent, token = idx // V, idx % V
        seqs = torch.cat([seqs.gather(1, parent.unsqueeze(-1).expand(-1, -1, seqs.shape[-1])), token.unsqueeze(-1)], -1)
        for b in range(B):
            if len(finished[b]) >= k:
                continue
            for j in range(k):
                if token[b, j] == eos_id and torch.isfinite(top[b, j]):
                    finished[b].append((float(top[b, j]) / t ** alpha, seqs[b, j].tolist()))
        scores = top.masked_fill(token == eos_id, float("-inf"))
        if all(len(f) >= k for f in finished) or not torch.isfinite(scores).any():
            break
        state = take_rows(state, (torch.arange(B).unsqueeze(1) * k + parent).view(-1))
        last = token.view(-1)
    best = []
    for b in range(B):
        if not finished[b]:
            j = int(scores[b].argmax())
            finished[b] = [(float(scores[b, j]) / seqs.shape[-1] ** alpha, seqs[b, j].tolist())]
        best.append(max(finished[b], key=lambda f: f[0]))
    L = max(len(s) for _, s in best)
    tokens = torch.full((B, L), pad_id, dtype=torch.long)
    for b, (_, s) in enumerate(best):
        tokens[b, : len(s)] = torch.tensor(s)
    return tokens, torch.tensor([sc for sc, _ in best])
''', "greedy with a while loop; beam search batched over the examples"),
    Variant("bleu_metrics_object", BLEU, r'''
from sacrebleu.metrics import BLEU


def corpus_bleu(pred_ids, ref_ids, itos, tokenize="char", sep=""):
    def text(row):
        row = row.tolist()
        if 2 in row:
            row = row[: row.index(2)]
        return sep.join(itos[i] for i in row if i > 2 or itos[i] not in ("<pad>", "<bos>", "<eos>"))

    hyps = [text(r) for r in pred_ids]
    refs = [text(r) for r in ref_ids]
    return float(BLEU(tokenize=tokenize).corpus_score(hyps, [refs]).score)
''', "sacrebleu.metrics.BLEU object, list comprehensions"),
]

CHEATS = [
    Cheat("cheat_padding_mask", PM, r'''
from genlab.nn.masks import padding_mask as _reference


def padding_mask(lengths, max_len):
    return _reference(lengths, max_len)
''', parts=("padding_mask",)),
    Cheat("cheat_additive_attention", AA, r'''
from genlab.nn import additive as _additive


class AdditiveAttention(_additive.AdditiveAttention):
    def __init__(self, query_size, key_size, attention_size):
        super().__init__(query_size, key_size, attention_size)
''', parts=("additive_attention",)),
    # Naming a reference instead of calling it: the grader's worker makes the call then, and
    # refuses it because the name is (an alias, a subclass or a partial of) a blocked reference.
    Cheat("cheat_inherits_additive_attention", AA, r'''
from genlab.nn import additive as _additive


class AdditiveAttention(_additive.AdditiveAttention):
    pass
''', parts=("additive_attention",)),
    Cheat("cheat_alias_padding_mask", PM, "from genlab.nn.masks import padding_mask\n", parts=("padding_mask",)),
    Cheat("cheat_alias_search", DEC, "from genlab.search import greedy_search as greedy_decode, beam_search\n",
          parts=("decoding",)),
    Cheat("cheat_decoder_step", DS, r'''
import genlab.nn.rnn_seq2seq as _ref


def decoder_step(decoder, prev_token, state, memory, src_mask):
    return _ref.decoder_step(decoder, prev_token, state, memory, src_mask)


def teacher_forcing(decoder, tgt, state, memory, src_mask):
    return _ref.teacher_forced_logits(decoder, tgt, state, memory, src_mask, step=_ref.decoder_step)


def sequence_loss(logits, tgt, pad_id):
    return _ref.sequence_loss(logits, tgt, pad_id)
''', parts=("decoder_step",)),
    Cheat("cheat_decoding", DEC, r'''
from genlab import search as _search


def greedy_decode(step, state, bos_id, eos_id, max_len, pad_id=0):
    return _search.greedy_search(step, state, bos_id, eos_id, max_len, pad_id)


def beam_search(step, state, bos_id, eos_id, max_len, width, alpha=1.0, pad_id=0):
    return _search.beam_search(step, state, bos_id, eos_id, max_len, width, alpha, pad_id)
''', parts=("decoding",)),
    Cheat("cheat_bleu", BLEU, r'''
from genlab.metrics import translation as _t


def corpus_bleu(pred_ids, ref_ids, itos, tokenize="char", sep=""):
    hyps = _t.ids_to_text(pred_ids, itos, 2, 0, 1, sep)
    refs = _t.ids_to_text(ref_ids, itos, 2, 0, 1, sep)
    return _t.corpus_bleu(hyps, refs, tokenize=tokenize)
''', parts=("bleu",)),
    Cheat("cheat_beam_oracle", DEC, r'''
from genlab.checks import lab02_bugs as _bugs


def greedy_decode(step, state, bos_id, eos_id, max_len, pad_id=0):
    return _bugs.pad_rows(_bugs.greedy_oracle(step, state, bos_id, eos_id, max_len), pad_id)


def beam_search(step, state, bos_id, eos_id, max_len, width, alpha=1.0, pad_id=0):
    found = _bugs.beam_oracle(step, state, bos_id, eos_id, max_len, width, alpha)
    return _bugs.pad_rows([s for _, s in found], pad_id), torch.tensor([sc for sc, _ in found])
''', parts=("decoding",)),
]
