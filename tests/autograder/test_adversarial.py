"""Submissions that try to cheat, crash, hang or escape: the score must still be right.

Each test builds a submission from the fixture solution with one cell changed, grades it,
and checks the score, that grading finished, and (through the ``grade`` fixture) that
nothing from the hidden tests reached the result.
"""
import copy
import json
import os
import socket
import subprocess
import sys
import uuid

import pytest
import torch

from autograder.runner.grade import grade_notebook
from autograder.runner.lab import AUTOGRADER_DIR

from .conftest import (
    FIXTURE,
    FULL_MARKS,
    assert_no_leak,
    both_spawn_modes,
    lab_copy,
    solution_sources,
    solved_release,
    write_nb,
)

pytestmark = pytest.mark.slow
SOL = solution_sources()
REFERENCE_MESSAGE = "reference implementation `torch.nn.functional.softmax`; write your own implementation"


def scores(result) -> dict[str, float]:
    return {t.name: t.score for t in result.tests if t.status != "not_run"}


def failed(result) -> dict[str, str]:
    return {t.name: t.message for t in result.tests if t.status == "failed"}


def full_isolation(result) -> bool:
    return result.isolation.startswith("full:")


# ------------------------------------------------------------------ cheating
def test_monkeypatched_comparisons_do_not_help(grade):
    patch = (
        "import numpy, torch\n"
        "torch.allclose = lambda *a, **k: True\n"
        "torch.equal = lambda *a, **k: True\n"
        "torch.testing.assert_close = lambda *a, **k: None\n"
        "torch.Tensor.__eq__ = lambda self, other: True\n"
        "numpy.allclose = lambda *a, **k: True\n"
        "numpy.testing.assert_allclose = lambda *a, **k: None\n"
    )
    wrong = "def softmax(x):\n    return torch.zeros_like(x)\n"
    result = grade(solved_release({"softmax": wrong, "patch": patch}))
    assert result.score == FULL_MARKS - 3
    assert set(failed(result)) == {"softmax::test_softmax_values", "softmax::test_softmax_large_scores"}


def test_always_equal_objects_score_nothing(grade):
    code = (
        "class AlwaysEqual:\n"
        "    def __eq__(self, other):\n        return True\n"
        "    def __bool__(self):\n        return True\n"
    )
    result = grade(solved_release({
        "add": code + "def add(a, b):\n    return AlwaysEqual()\n",
        "softmax": code + "def softmax(x):\n    return AlwaysEqual()\n",
    }))
    assert result.score == 3  # counter (2) + the autocast probe, which only checks finiteness (1)
    message = failed(result)["add::test_add_numbers"]
    assert "add(...) gave back a AlwaysEqual object" in message
    assert failed(result)["softmax::test_softmax_values"] == "softmax should return a tensor"


def test_tensor_subclass_is_refused(grade):
    code = (
        "class Sneaky(torch.Tensor):\n"
        "    def __eq__(self, other):\n        return torch.ones((), dtype=torch.bool)\n"
        "def softmax(x):\n    return torch.zeros_like(x).as_subclass(Sneaky)\n"
    )
    result = grade(solved_release({"softmax": code}))
    assert result.score == FULL_MARKS - 4
    assert "tensor subclass (Sneaky); return a plain torch.Tensor" in failed(result)["softmax::test_softmax_values"]


@pytest.mark.parametrize("variant", ["direct", "swallowed"])
def test_reference_implementation_is_refused(grade, variant):
    if variant == "direct":
        code = "import torch.nn.functional as F\n\ndef softmax(x):\n    return F.softmax(x, dim=-1)\n"
    else:  # imported under another name, the refusal swallowed, then done by hand
        code = (
            "from torch.nn.functional import softmax as _reference\n"
            "def softmax(x):\n"
            "    try:\n        return _reference(x, dim=-1)\n"
            "    except BaseException:\n"
            "        e = (x - x.max(-1, keepdim=True).values).exp()\n"
            "        return e / e.sum(-1, keepdim=True)\n"
        )
    result = grade(solved_release({"softmax": code}))
    assert result.score == FULL_MARKS - 4
    for name in ("softmax::test_softmax_values", "softmax::test_softmax_large_scores",
                 "softmax::test_softmax_under_autocast"):
        assert REFERENCE_MESSAGE in failed(result)[name]


def test_other_reference_spellings_are_refused(grade):
    code = (
        "def softmax(x):\n"
        "    if x.shape[0] == 1:\n        return torch.softmax(x, -1)\n"
        "    return x.softmax(-1)\n"
    )
    result = grade(solved_release({"softmax": code}))
    messages = failed(result)
    assert "`torch.softmax`" in messages["softmax::test_softmax_large_scores"]
    assert "`torch.Tensor.softmax`" in messages["softmax::test_softmax_values"]
    assert result.score == FULL_MARKS - 4


# ------------------------------------------------------------- exits, signals
def test_exceptions_that_are_not_errors_are_caught(grade):
    result = grade(solved_release({
        "add": "import sys\ndef add(a, b):\n    sys.exit(3)\nraise KeyboardInterrupt",
        "counter": SOL["counter"].replace("self.count += by", "raise KeyboardInterrupt") + "\nraise SystemExit(0)",
        "softmax": "def softmax(x):\n    raise GeneratorExit\n",
    }))
    assert result.score == 0
    messages = failed(result)
    assert messages["add::test_add_numbers"].startswith("add(...) raised SystemExit: 3")
    assert "raised KeyboardInterrupt" in messages["counter::test_counter_counts"]
    assert "raised GeneratorExit" in messages["softmax::test_softmax_values"]
    issues = "\n".join(result.notebook_issues)
    assert "cell 4 ('add') raised KeyboardInterrupt" in issues and "raised SystemExit: 0" in issues


def test_exit_at_import_skips_only_that_cell(grade):
    result = grade(solved_release({
        "add": SOL["add"] + "\nimport os\nos._exit(0)",
        "softmax": SOL["softmax"] + "\nimport sys\nsys.exit(0)",
    }))
    assert result.score == FULL_MARKS - 2
    assert "Your notebook does not define `add`" in failed(result)["add::test_add_numbers"]
    issues = "\n".join(result.notebook_issues)
    assert "cell 4 ('add') stopped the worker while the notebook ran (exited (exit code 0)" in issues
    assert "cell 7 ('softmax') raised SystemExit: 0" in issues


def test_exit_inside_a_graded_function_restarts_the_worker(grade):
    result = grade(solved_release({"softmax": "import os\ndef softmax(x):\n    os._exit(0)\n"}))
    assert result.score == FULL_MARKS - 4
    messages = failed(result)
    assert len(messages) == 3
    for message in messages.values():
        assert "the worker running your notebook exited (exit code 0)" in message


def test_endless_loops_time_out(tmp_path, grade):
    lab = lab_copy(tmp_path, limits={"setup_timeout_s": 3, "call_timeout_s": 3, "test_timeout_s": 20})
    result = grade(solved_release({
        "add": "def add(a, b):\n    while True:\n        pass\n",
        "late": "import time\nwhile True:\n    time.sleep(0.1)\n",   # a new cell at the end
    }), lab_=lab)
    assert result.score == FULL_MARKS - 2
    assert "add(...) did not finish within 3 s" in failed(result)["add::test_add_numbers"]
    issues = "\n".join(result.notebook_issues)
    # the public check calls add() at import time: it hangs too, and is skipped
    assert "cell 5 ('check_add') stopped the worker while the notebook ran (did not finish within 3 s)" in issues
    assert "cell 13 stopped the worker while the notebook ran (did not finish within 3 s); it was skipped" in issues


def test_cpu_time_limit(tmp_path, grade):
    lab = lab_copy(tmp_path, limits={"cpu_s": 8, "setup_timeout_s": 30})
    result = grade(solved_release({"spin": "while True:\n    pass\n"}), lab_=lab)
    assert result.score == FULL_MARKS
    assert any("used up its CPU time limit (8 s)" in i for i in result.notebook_issues), result.notebook_issues


@pytest.mark.skipif(torch.cuda.is_available(), reason="no address-space limit when CUDA is used")
@both_spawn_modes
def test_memory_bombs_fail_only_themselves(grade):
    result = grade(solved_release({
        "softmax": "def softmax(x):\n    hog = []\n    while True:\n        hog.append(bytes(10**8))\n",
        "bomb": "def _bomb():\n    t = torch.ones(10**11)\ntry:\n    _bomb()\nexcept RuntimeError as e:\n"
                "    print('no', e)\nhog = [bytes(10**8) for _ in range(1000)]\n",
    }))
    assert result.score == FULL_MARKS - 4
    assert "softmax(...) raised MemoryError" in failed(result)["softmax::test_softmax_values"]
    assert any("raised MemoryError" in i for i in result.notebook_issues)


def _processes_named(name: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/comm") as fh:
                if fh.read().strip() == name:
                    found.append(pid)
        except OSError:
            continue
    return found


@both_spawn_modes
def test_fork_bomb_is_contained_and_cleaned_up(grade):
    name = "fb" + uuid.uuid4().hex[:10]
    bomb = (
        "import ctypes, os, time\n"
        "_libc = ctypes.CDLL(None)\n"
        "children = 0\n"
        "try:\n"
        "    for _ in range(100000):\n"
        "        if os.fork() == 0:\n"
        f"            _libc.prctl(15, b'{name}', 0, 0, 0)\n"
        "            time.sleep(600)\n"
        "            os._exit(0)\n"
        "        children += 1\n"
        "except OSError as exc:\n"
        "    print('fork stopped after', children, exc)\n"
    )
    result = grade(solved_release({"bomb": bomb}))
    assert result.score == FULL_MARKS
    if full_isolation(result):
        assert _processes_named(name) == []


# ------------------------------------------------------------- escaping
def _exfiltrate(code: str) -> str:
    """A solution whose add() raises what ``code`` put in ``REPORT``."""
    return code + "\ndef add(a, b):\n    raise ValueError('REPORT:' + REPORT)\n"


@both_spawn_modes
def test_hidden_tests_and_grader_cannot_be_read(tmp_path, lab):
    targets = [str(FIXTURE / "test_add.py"), str(AUTOGRADER_DIR / "runner" / "grade.py"),
               str(FIXTURE / "source" / "fixture.ipynb")]
    code = (
        "import os\n"
        "found = []\n"
        f"for path in {targets!r}:\n"
        "    try:\n        found.append(open(path).read()[:200])\n"
        "    except OSError:\n        pass\n"
        "for root in ['/work', '/tmp', '/root', '/home', '/srv', '/mnt', '/opt', '/var']:\n"
        "    for folder, dirs, files in os.walk(root):\n"
        "        for f in files:\n"
        "            if f.startswith('test_') and f.endswith('.py'):\n"
        "                try:\n                    text = open(os.path.join(folder, f), errors='replace').read()\n"
        "                except OSError:\n                    continue\n"
        "                if 'HIDDEN-CANARY' in text or 'submission.function' in text:\n"
        "                    found.append(text[:300])\n"
        "REPORT = f'found={len(found)} ' + ' | '.join(found)\n"
    )
    nb = write_nb(solved_release({"add": _exfiltrate(code)}), tmp_path / "s.ipynb")
    result = grade_notebook(lab, nb, "s")
    if not full_isolation(result):
        pytest.skip(f"no mount namespace here: {result.isolation}")
    assert failed(result)["add::test_add_numbers"].startswith("add(...) raised ValueError: REPORT:found=0 \n")
    assert_no_leak(result)
    assert result.score == FULL_MARKS - 2


@both_spawn_modes
def test_no_network(tmp_path, lab):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    code = (
        "import socket\n"
        "out = []\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=3).close()\n"
        "    out.append('loopback=connected')\n"
        "except OSError as e:\n    out.append(f'loopback={type(e).__name__}')\n"
        "try:\n    socket.getaddrinfo('pypi.org', 443)\n    out.append('dns=resolved')\n"
        "except OSError as e:\n    out.append(f'dns={type(e).__name__}')\n"
        "REPORT = ','.join(out)\n"
    )
    nb = write_nb(solved_release({"add": _exfiltrate(code)}), tmp_path / "s.ipynb")
    try:
        result = grade_notebook(lab, nb, "s")
        listener.settimeout(0)
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()
    if not full_isolation(result):
        pytest.skip(f"no network namespace here: {result.isolation}")
    message = failed(result)["add::test_add_numbers"]
    assert "loopback=connected" not in message and "dns=resolved" not in message
    assert "REPORT:loopback=OSError,dns=gaierror" in message


def test_fake_results_files_change_nothing(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "result.json"
    fake = json.dumps({"student": "mallory", "tests": [{"name": "x", "points": 100, "score": 100,
                                                          "status": "passed", "message": "", "part": "x"}]})
    code = (
        "import os\n"
        f"FAKE = {fake!r}\n"
        f"for path in ['results.json', 'grades.csv', {str(out)!r}, {str(out_dir / 'grades.csv')!r},"
        f" os.path.expanduser('~/results.json'), {str(tmp_path / 'results.json')!r}]:\n"
        "    try:\n        open(path, 'w').write(FAKE)\n"
        "    except OSError as e:\n        print('refused', path, e)\n"
        "print('PASSED test_add_numbers 100/100')\n"
    )
    nb = write_nb(solved_release({"fake": code}), tmp_path / "s.ipynb")
    proc = subprocess.run(
        [sys.executable, "-m", "autograder.runner.grade_one", str(FIXTURE), str(nb), "--student", "eve",
         "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["student"] == "eve"
    assert sum(t["score"] for t in data["tests"]) == FULL_MARKS
    assert sorted(p.name for p in out_dir.iterdir()) == ["result.json"]
    if data["isolation"].startswith("full:"):
        assert not (tmp_path / "results.json").exists() and not (tmp_path / "grades.csv").exists()


def test_floods_of_output_are_capped(grade):
    flood = (
        "%matplotlib inline\n!pip install nothing\n"
        "import os, sys\n"
        "for _ in range(3):\n    print('PASSED test_softmax_values [100%]')\n"
        "line = 'x' * (1 << 20)\n"
        "for _ in range(2048):\n    print(line)\n"   # 2 GiB through print
        "sys.stdout.buffer.write(b'y' * 10**6)\n"
        "os.write(1, b'z' * 10**7)\n"               # past RLIMIT_FSIZE: fails inside the cell
    )
    plot = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\n"
    crash = SOL["counter"].replace("self.count += by", "print('PASSED ' * 100000)\n        import os\n        os._exit(1)")
    result = grade(solved_release({"flood": flood, "plot": plot, "counter": crash}))
    assert result.score == FULL_MARKS - 2
    message = failed(result)["counter::test_counter_counts"]
    assert "exited with code 1" in message and "Last output:" in message
    assert len(message) < 2500
    assert "PASSED" not in json.dumps([t.message for t in result.tests if t.name != "counter::test_counter_counts"])


def test_protected_cells_are_restored_and_reported(grade):
    nb = solved_release({"untrusted": "print('student cell')",
                         "slow": "import time\nwhile True:\n    time.sleep(1)"})
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    cells["check_add"].source = "pass  # no more check"
    cells["check_softmax"].metadata.nbgrader["points"] = 50
    cells["train"].source = "print('training removed')"
    cells["train"].metadata.pop("tags")
    nb.cells.remove(cells["intro"])
    duplicate = copy.deepcopy(cells["imports"])
    duplicate["id"] = "copied-imports"
    nb.cells.append(duplicate)
    slow = next(c for c in nb.cells if "time.sleep(1)" in c.source and "nbgrader" not in c.metadata)
    slow.metadata["tags"] = ["training"]  # the student's own slow cell, tagged: skipped too
    result = grade(nb)
    assert result.score == FULL_MARKS
    issues = "\n".join(result.notebook_issues)
    for expected in ("cell 'check_add' was modified; the original was restored",
                     "cell 'check_softmax' had its points changed",
                     "cell 'train' was modified; the original was restored",
                     "cell 'intro' was deleted; the original was restored",
                     "cell 'imports' was duplicated; the copy was removed"):
        assert expected in issues


def test_deleted_solution_cell(grade):
    nb = solved_release()
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "counter"]
    result = grade(nb)
    assert result.score == FULL_MARKS - 2
    assert failed(result)["counter::test_counter_counts"].startswith("Your notebook does not define `Counter`")
