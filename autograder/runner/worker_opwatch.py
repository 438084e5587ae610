"""The operator watch for the grading worker: torch's own fused operators, by any name.

The reference blockers (``worker_blockers.py``) replace Python objects, so they catch
``F.scaled_dot_product_attention`` but not the same operator reached as
``torch._C._nn.scaled_dot_product_attention``, ``torch.ops.aten.scaled_dot_product_attention``
or ``torch.ops.aten._scaled_dot_product_flash_attention_for_cpu``. Every one of those routes
passes through torch's ``__torch_function__`` dispatch with the operator's own name, so the
watch is a ``TorchFunctionMode`` entered around each call of submission code:

* lab.toml ``blocked_ops`` lists operator names, ``fnmatch`` patterns allowed
  (``"_scaled_dot_product_*"``); an overload suffix (``.default``) is ignored;
* a watched operator whose nearest caller outside torch's own files is submission code
  (``Blockers.is_submission_file``: a cell, code from a string, a file the submission wrote)
  raises ``ReferenceUsedError``, exactly like a blocked Python reference; library code and
  the probes (trusted) may use it;
* after the call the watch checks that it is still active: submission code that popped the
  mode, or left torch-function dispatch disabled, is refused the same way
  (``TAMPERED``).

What it cannot see (the README's isolation section says so): a watched operator run in
another thread, or inside ``torch._C.DisableTorchFunction()`` that the submission enters and
leaves within one call. The instructor's report lists notebooks whose code names those
routes (``routes.py``).
"""
import fnmatch
import os
import sys

_HANDLERS = ("__torch_function__", "__torch_dispatch__")
TAMPERED = "!operator-watch"   # the hit recorded for a watch switched off (errors.WATCH_OFF)


def _overload_free(name: str) -> str:
    return name.split(".", 1)[0]


class OpWatch:
    """``around(thunk)`` runs ``thunk`` with the watch on; ``hits`` collects what was refused."""

    def __init__(self, patterns, blockers, torch_module, reference_error):
        self.patterns = tuple(str(p) for p in patterns)
        self._blockers = blockers
        self._torch = torch_module
        self._error = reference_error
        self._seen: dict[str, bool] = {}
        self._mode = None
        if self.patterns:   # nothing to watch: torch is not touched (and need not be imported)
            self._torch_dir = os.path.realpath(os.path.dirname(torch_module.__file__)) + os.sep
            self._here = os.path.realpath(__file__)
            self._mode = self._make_mode()

    def watched(self, name: str) -> bool:
        known = self._seen.get(name)
        if known is None:
            base = _overload_free(name)
            known = self._seen[name] = any(fnmatch.fnmatchcase(base, p) for p in self.patterns)
        return known

    def _caller_is_submission(self) -> bool:
        """The nearest frame outside torch's package and this file belongs to the submission.

        Another mode's or a tensor subclass's ``__torch_function__`` (a probe recording the
        call, say) only passes the operator on: the frame that matters is below it."""
        frame = sys._getframe(2)
        while frame is not None:
            code = frame.f_code
            filename = code.co_filename
            real = filename if filename.startswith("<") else os.path.realpath(filename)
            if not (real.startswith(self._torch_dir) or real == self._here or code.co_name in _HANDLERS):
                return self._blockers.is_submission_file(filename)
            frame = frame.f_back
        return False

    def _make_mode(self):
        from torch.overrides import TorchFunctionMode

        watch = self

        class _Watch(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                name = getattr(func, "__name__", "") or ""
                if watch.watched(name) and watch._caller_is_submission():
                    shown = f"torch.ops.aten.{_overload_free(name)}"
                    watch._blockers.hits.append(shown)
                    raise watch._error(f"you called {shown}; write your own implementation")
                return func(*args, **(kwargs or {}))

        return _Watch()

    def around(self, thunk):
        """``thunk()`` under the watch; refused when the submission switched the watch off.

        Dispatch is switched on for the call whatever the notebook's cells left behind
        (``DisableTorchFunction().__enter__()`` in a cell), and put back afterwards."""
        if self._mode is None:
            return thunk()
        C = self._torch._C
        depth, before = C._len_torch_function_stack(), C._get_torch_function_state()
        enabled = type(before).ENABLED
        C._set_torch_function_state(enabled)
        C._push_on_torch_function_stack(self._mode)
        try:
            value = thunk()
        except BaseException:
            self._end(depth, before, enabled)
            raise
        self._end(depth, before, enabled)
        return value

    def _end(self, depth: int, before, enabled) -> None:
        """Take the watch off and put torch-function dispatch back as it was before the call;
        raise when the submission had switched the watch off (popped it, or disabled dispatch)."""
        C = self._torch._C
        intact = (C._len_torch_function_stack() == depth + 1 and C._get_function_stack_at(depth) is self._mode
                  and C._get_torch_function_state() == enabled)
        while C._len_torch_function_stack() > depth:
            C._pop_torch_function_stack()
        C._set_torch_function_state(before)
        if not intact:
            self._blockers.hits.append(TAMPERED)
            raise self._error("you switched off the grader's operator watch")
