"""Grade one notebook: ``grade_notebook(lab, notebook, student) -> SubmissionResult``.

1. Read the notebook and restore its protected cells (``notebook.prepare``); a notebook
   that cannot be read scores 0 with the reason in ``error`` and in every test's message.
2. Start the worker (``worker_client.WorkerHandle``): it runs the code cells in the sandbox while
   the hidden tests are collected here.
3. Run the lab's hidden tests with pytest in this process (``plugin.GraderPlugin``);
   pytest's own output goes to the log, never into feedback.
4. Stop the worker. Bad submissions never raise; an internal problem gives a result whose
   ``error`` starts with "internal grader error".
5. Finish the result: every text capped and cleaned (``SubmissionResult.capped``) and every
   line that quotes the grader's own code removed (``redact``).

The whole submission has one wall-time budget, ``limits.total_timeout_s``: the cells, every
test and every restart of the worker together. Past it nothing more runs in the worker,
the tests that had not run fail with that reason, and the result is final (a rerun keeps it).

pytest keeps module state between runs, so callers that grade many notebooks should call
this once per fresh process: ``python -m autograder.runner.grade_one`` does exactly that.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
import time
import traceback
from pathlib import Path

import pytest

from . import redact, sandbox
from .errors import LabError, NotebookError
from .lab import Lab
from .notebook import prepare
from .plugin import GraderPlugin
from .results import INTERNAL_PREFIX, SubmissionResult
from .submission import Submission
from .worker_client import WorkerHandle, out_of_time_message

MAX_ISSUES = 20


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def code_seed(cells) -> int:
    """A 63-bit seed from the code cells the worker runs (their source, in order)."""
    digest = hashlib.sha256()
    for cell in cells:
        digest.update(cell.source.encode("utf-8", "surrogatepass") + b"\0")
    return int.from_bytes(digest.digest()[:8], "big") >> 1


def grade_notebook(lab: Lab, notebook: str | Path, student: str, *, log: str | Path | None = None,
                   parts: tuple[str, ...] | None = None) -> SubmissionResult:
    """Grade ``notebook`` against ``lab``'s hidden tests. Never raises for a bad submission.

    ``log``: a file that receives pytest's output and internal tracebacks (instructor only).
    ``parts``: run only the tests of these parts (their file stems without ``test_``); the
    result then holds only those tests, and its maximum is theirs.
    """
    start = time.monotonic()
    result = SubmissionResult(student=student, lab=lab.name, isolation=sandbox.planned_isolation())
    logbuf = io.StringIO()
    handle = None
    try:
        broken = None
        try:
            prepared = prepare(lab, notebook)
        except NotebookError as exc:
            prepared = None
            broken = f"Your notebook could not be graded: {exc}."
            result.error = broken
        if prepared is not None:
            result.notebook_issues.extend(prepared.issues)
        cuda = cuda_available()
        if prepared is not None:
            handle = WorkerHandle(lab, prepared.cells, cuda=cuda, deadline=start + lab.limits.total_timeout_s)
            handle.start()   # the cells run while pytest collects the hidden tests
        submission = Submission(handle, lab, broken=broken, seed=code_seed(prepared.cells if prepared else []))
        plugin = GraderPlugin(submission, cuda=cuda, parts=parts)
        exit_code = run_pytest(lab, plugin, logbuf)
        result.tests = list(plugin.outcomes.values())
        logbuf.write("\n".join(plugin.log) + "\n")
        if plugin.lab_errors:
            result.error = f"{INTERNAL_PREFIX}: lab {lab.name}: " + "; ".join(plugin.lab_errors)
        elif exit_code not in (0, 1) and not result.tests:
            result.error = f"{INTERNAL_PREFIX}: pytest exited with code {int(exit_code)} and ran no hidden tests"
        if handle is not None and handle.startup_failure:
            result.error = f"{INTERNAL_PREFIX}: the worker could not start; see the grading log"
            logbuf.write(f"worker start failure: {handle.startup_failure}\n")
        if handle is not None:
            result.isolation = handle.isolation
            if handle.out_of_time:
                result.notebook_issues.insert(0, out_of_time_message(lab))
            result.notebook_issues.extend(_setup_issues(handle))
            logbuf.write("".join(f"worker warning: {w}\n" for w in handle.report.warnings))
            cells = sum(c.seconds for c in handle.report.cells)
            logbuf.write(f"worker: generation {handle.generation}, ready {handle.ready_after:.2f} s "
                         f"after start ({cells:.2f} s in cells); isolation: {handle.isolation}\n")
    except LabError as exc:
        result.error = f"{INTERNAL_PREFIX}: {exc}"
        logbuf.write(traceback.format_exc())
    except Exception as exc:
        result.error = f"{INTERNAL_PREFIX}: {type(exc).__name__}: {exc}"
        logbuf.write(traceback.format_exc())
    finally:
        if handle is not None:
            handle.close()
        result.execution_time = time.monotonic() - start
        result = finish(result, lab, logbuf)
        if log is not None:
            try:
                Path(log).write_text(logbuf.getvalue(), encoding="utf-8", errors="replace")
            except OSError:
                pass
    return result


def finish(result: SubmissionResult, lab: Lab, log: io.StringIO) -> SubmissionResult:
    """``result`` with its text capped and cleaned and no line of the grader's code in it."""
    result = result.capped()
    try:
        redactor = redact.Redactor(redact.grader_files(lab))
    except Exception:   # never lose a result over this: log it, keep the capped text
        log.write("redaction failed:\n" + traceback.format_exc())
        return result
    removed = 0
    for t in result.tests:
        clean = redactor.redact(t.message)
        removed += clean != t.message
        t.message = clean
    issues = [redactor.redact(i) for i in result.notebook_issues]
    removed += issues != result.notebook_issues
    result.notebook_issues = issues
    if result.error:
        clean = redactor.redact(result.error)
        removed += clean != result.error
        result.error = clean
    if removed:
        log.write(f"redacted lines that quoted the grader's code from {removed} text(s)\n")
    return result


def _setup_issues(handle: WorkerHandle) -> list[str]:
    issues = []
    labels = {c.index: c.label for c in handle.cells}
    for index, reason in sorted(handle.report.skipped.items()):
        label = labels.get(index, f"cell {index}")
        issues.append(f"{label} stopped the worker while the notebook ran ({reason.splitlines()[0]}); it was skipped")
    for cell in handle.report.raised[:MAX_ISSUES]:
        issues.append(f"{cell.label} raised {cell.error} (the cells after it still ran)")
    return issues


def run_pytest(lab: Lab, plugin: GraderPlugin, out: io.StringIO) -> int:
    """Run ``lab``'s hidden tests in this process with only our plugin; output to ``out``."""
    args = [
        str(lab.folder),
        "-c", os.devnull,   # never the repository's pytest settings (testpaths, addopts)
        "--rootdir", str(lab.folder),
        "--confcutdir", str(lab.folder),   # no conftest.py from folders above the lab
        "-o", "python_files=test_*.py",
        "-o", "python_functions=test_*",
        "-o", "python_classes=Test*",
        "-W", "ignore::DeprecationWarning",
        "-p", "no:cacheprovider",
        "-p", "no:randomly",
        "-p", "no:unraisableexception",   # its gc.collect() calls at the end cost 0.3 s per submission
        "--assert=plain",
        "--import-mode=importlib",
        "--capture=sys",
        "-q",
        "-rN",
        "--durations=5",
    ]
    saved_env = {k: os.environ.get(k) for k in ("PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_PLUGINS")}
    os.environ.pop("PYTEST_ADDOPTS", None)
    os.environ.pop("PYTEST_PLUGINS", None)
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    # An enclosing pytest (our own test suite) would rewrite the hidden tests' asserts and
    # put hidden values into their messages: take its import hook out while they run.
    hooks = [h for h in sys.meta_path if type(h).__name__ == "AssertionRewritingHook"]
    for hook in hooks:
        sys.meta_path.remove(hook)
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    _forget_modules(lab.folder)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            return int(pytest.main(args, plugins=[plugin]))
    finally:
        _forget_modules(lab.folder)
        sys.dont_write_bytecode = dont_write
        for hook in reversed(hooks):
            sys.meta_path.insert(0, hook)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _forget_modules(folder: Path) -> None:
    root = str(folder)
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if path.startswith(root + os.sep):
            del sys.modules[name]
