"""Probe: run the student's greedy_decode / beam_search on a decoder built here from tensors.

``run(namespace, fn, kind, params, state, bos_id, eos_id, max_len, width=None, alpha=None,
pad_id=0, tuple_state=False)``

* ``kind="markov"``: ``params = {"table": (V, V)}``, next-token logits ``table[previous token]``;
  the state (a dummy tensor) passes through.
* ``kind="rnn"``: ``params = {"E": (V, H), "Wh": (H, H), "O": (H, V)}``,
  ``h = tanh(E[token] + h @ Wh)``, logits ``h @ O``. With ``tuple_state`` the state is
  ``(h, extra)`` and ``extra`` passes through.

The step refuses tokens that are not a long (N,) tensor or whose count differs from the
state's rows (a state that was not reordered). Returns ``{"error", "result", "calls",
"rows"}``: the function's result, how often step was called and the most rows it saw. (What the
search does to the state it is given is probe contract's finding, ``test_decoding``.)
"""
import torch

REORDER = ("the state and the tokens given to step disagree on the number of hypotheses: after choosing the "
           "best extensions, reorder the state with take_rows(new_state, rows), where rows[j] is the live "
           "hypothesis survivor j came from, so each survivor continues from its own state.")


def run(namespace, fn, kind, params, state, bos_id, eos_id, max_len, width=None, alpha=None, pad_id=0,
        tuple_state=False):
    func = namespace[fn]
    seen = {"calls": 0, "rows": 0}

    def rows_of(st):
        return st[0].shape[0] if isinstance(st, (tuple, list)) else st.shape[0]

    def step(tokens, st):
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1 or tokens.dtype != torch.long:
            got = f"a {tokens.dtype} tensor of shape {tuple(tokens.shape)}" if isinstance(tokens, torch.Tensor) \
                else type(tokens).__name__
            raise ValueError(f"step(tokens, state) needs tokens as a long tensor of shape (N,), got {got}.")
        if tokens.shape[0] != rows_of(st):
            raise ValueError(f"step got {tokens.shape[0]} tokens but a state with {rows_of(st)} rows: {REORDER}")
        seen["calls"] += 1
        seen["rows"] = max(seen["rows"], tokens.shape[0])
        if kind == "markov":
            return params["table"][tokens], st
        h = st[0] if tuple_state else st
        h = torch.tanh(params["E"][tokens] + h @ params["Wh"])
        return h @ params["O"], ((h, st[1]) if tuple_state else h)

    if tuple_state:
        state = (state, torch.zeros(state.shape[0], 2))
    args = [step, state, bos_id, eos_id, max_len]
    if width is not None:
        args += [width, 1.0 if alpha is None else alpha]
    try:
        result, error = func(*args, pad_id=pad_id), None
    except Exception as exc:  # noqa: BLE001 - reported to the test as data
        text = str(exc).strip()
        result, error = None, (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
    if isinstance(result, torch.Tensor):
        result = result.detach().clone()
    elif isinstance(result, (tuple, list)):
        result = [r.detach().clone() if isinstance(r, torch.Tensor) else
                  (r if r is None or isinstance(r, (bool, int, float, str)) else f"<{type(r).__name__}>")
                  for r in result]
    elif result is not None and not isinstance(result, (bool, int, float, str)):
        result = f"<{type(result).__name__}>"
    return {"error": error, "result": result, "calls": seen["calls"], "rows": seen["rows"]}
