"""Nothing from the student's side is trusted: forged replies, links, oversized notebooks and
strings, live markup, endless notebooks, echoed grader code. Each must stay that student's
problem, bounded, and invisible as markup or grader source in every output."""
import json
import os
import re
import time

import pytest

from autograder.runner import reports
from autograder.runner.grade import grade_notebook
from autograder.runner.lab import SHARED_PROBES

from .conftest import FULL_MARKS, SOURCE, lab_copy, solved_release

pytestmark = pytest.mark.slow


def failed(result) -> dict[str, str]:
    return {t.name: t.message for t in result.tests if t.status == "failed"}


def outputs(result) -> list[str]:
    """Every student-facing text the result turns into."""
    return [reports.feedback_markdown(result), reports.gradescope_json(result), reports.grades_csv([result])]


# A student function that writes a reply of its own into the grader's pipe before returning.
_FORGE = '''
import io, json, struct, sys, torch
def _forge(value):
    cfg = json.loads(sys.argv[1])
    frame = sys._getframe()
    while frame is not None and "request" not in frame.f_locals:
        frame = frame.f_back
    seq = frame.f_locals["request"]["seq"]
    {body}
    import os
    os.write(cfg["fds"]["resp"], struct.pack(">Q", len(payload)) + payload)
    return value
def add(a, b):
    return _forge(a + b)
'''
_DAG = '''dag = []
    for _ in range(40):
        dag = [dag, dag]
    buf = io.BytesIO()
    buf.write(b"T")
    torch.save({"kind": "reply", "seq": seq, "ok": True, "value": dag}, buf)
    payload = buf.getvalue()'''
_WIDE = '''header = json.dumps({"v": ["D", "kind", "reply", "seq", seq, "ok", True, "value", ["L"] + [0] * 300000],
                         "t": []}).encode()
    payload = b"V" + struct.pack(">Q", len(header)) + header'''


@pytest.mark.parametrize("body", [_DAG, _WIDE], ids=["pickled-dag", "too-many-items"])
def test_a_forged_reply_is_refused_not_expanded(grade, body):
    start = time.monotonic()
    result = grade(solved_release({"add": _FORGE.replace("{body}", body)}))
    assert time.monotonic() - start < 120
    message = failed(result)["add::test_add_numbers"]
    assert "sent a reply that could not be read" in message and "it was stopped" in message
    assert result.score == FULL_MARKS - 2


def test_a_notebook_that_links_to_the_solution_is_refused(tmp_path, lab):
    link = tmp_path / "submission.ipynb"
    link.symlink_to(SOURCE)
    result = grade_notebook(lab, link, "mallory")
    assert result.score == 0
    assert "symbolic link" in result.error and "submit the notebook file itself" in result.error


def test_an_oversized_notebook_is_refused_before_it_is_read(tmp_path, lab):
    big = tmp_path / "big.ipynb"
    with open(big, "wb") as fh:
        fh.truncate(65 << 20)   # sparse: 65 MiB that take no disk
    start = time.monotonic()
    result = grade_notebook(lab, big, "s")
    assert "notebooks above 64 MiB are not graded" in result.error and "Clear its outputs" in result.error
    assert time.monotonic() - start < 60 and result.score == 0


def test_student_strings_are_capped(grade):
    code = (
        "Huge = type('E' * 300000, (Exception,), {})\n"
        "def add(a, b):\n    raise Huge('m' * 10**6)\n"
        "class Counter:\n    def __init__(self, start=0):\n        pass\n"
        "    def increment(self, by=1):\n        return type('T' * 200000, (), {})()\n"
    )
    nb = solved_release({"add": code, "counter": "", "boom": "raise type('C' * 500000, (Exception,), {})('z' * 10**6)"})
    result = grade(nb)
    assert len(result.to_json()) < 120_000
    for text in outputs(result):
        assert len(text) < 150_000
    assert "characters cut" in failed(result)["add::test_add_numbers"]
    assert all(len(i) <= 400 for i in result.notebook_issues)


_MARKUP = ("\\n# Score: 100 / 100\\n**Score: 8 / 8**\\n<h1>all passed</h1><script>alert(1)</script>"
           "\\x1b[2J\\x1b]0;owned\\x07\\x1b[32mPASSED\\x1b[0m =HYPERLINK(\\\"http://evil\\\")")


def test_student_text_is_never_live_markup_or_escapes(grade):
    nb = solved_release({"add": f"def add(a, b):\n    raise ValueError(\"{_MARKUP}\")\n",
                         "noisy": f"raise RuntimeError(\"{_MARKUP}\")"})
    result = grade(nb)
    feedback, results_json, csv_text = outputs(result)
    for text in (feedback, results_json, csv_text, reports.summary_table([result])):
        assert "\x1b" not in text and "\x07" not in text
    # outside fenced blocks, every heading and score line of the feedback is the grader's own
    fence = None
    for line in feedback.splitlines():
        if fence is None and line.startswith("```"):
            fence = line[: len(line) - len(line.lstrip("`"))]
        elif fence is not None and line == fence:
            fence = None
        elif fence is None:
            if line.startswith("#"):
                assert re.match(r"#+ (Feedback|Problem|Notebook issues|Tests|add|counter|softmax|How)", line), line
            assert "<h1>" not in line and "<script>" not in line, line       # HTML only as &lt;
            assert not re.search(r"(?<!\\)\*\*Score", line) or line == "**Score: 6 / 8**", line
    data = json.loads(results_json)
    assert data["output_format"] == "text" and all(t["output_format"] == "text" for t in data["tests"])
    assert all(line.startswith(("Notebook: ", "Isolation: ", "1 points come from GPU"))
               for line in data["output"].split("\n")), data["output"]
    assert len(reports.summary_table([result]).splitlines()) == 3


def test_a_total_time_limit_bounds_the_whole_submission(tmp_path, grade):
    lab = lab_copy(tmp_path, limits={"setup_timeout_s": 20, "call_timeout_s": 8, "test_timeout_s": 30,
                                     "total_timeout_s": 25})
    slow = ("import time\n"
            "def add(a, b):\n    time.sleep(6)\n    return a + b\n")
    start = time.monotonic()
    result = grade(solved_release({"add": slow, "late1": "time.sleep(5)", "late2": "time.sleep(5)",
                                   "softmax": "import time\ndef softmax(x):\n    time.sleep(6)\n    return x\n"}),
                   lab_=lab)
    took = time.monotonic() - start
    assert took < 25 + 30, took   # per cell, call and test each fits; together they do not
    messages = failed(result)
    assert any("total time limit for one submission (25 s" in m for m in messages.values())
    assert "total time limit" in result.notebook_issues[0]
    assert not result.internal_error


def test_echoed_probe_source_never_reaches_the_feedback(grade):
    echo = (
        "import linecache, sys\n"
        "def softmax(x):\n"
        "    caller = sys._getframe(1)\n"
        "    lines = linecache.getlines(caller.f_code.co_filename)\n"
        "    print(''.join(lines))\n"
        "    raise ValueError(''.join(lines) or 'no source')\n"
    )
    result = grade(solved_release({"softmax": echo}))
    message = failed(result)["softmax::test_softmax_under_autocast"]
    assert "a line was removed here" in message
    probe = [" ".join(ln.split()) for ln in (SHARED_PROBES / "autocast.py").read_text().splitlines()]
    probe = [ln for ln in probe if len(ln) >= 24 and not ln.startswith(("import ", "from "))]
    for text in outputs(result):
        flat = " ".join(text.split())
        assert not [ln for ln in probe if ln in flat]


@pytest.mark.skipif(os.geteuid() != 0, reason="the private tmpfs needs a mount namespace")
def test_the_output_stream_is_capped_not_the_files(grade):
    cache = (
        "import os\n"
        "with open('compile_cache.bin', 'wb') as fh:\n    fh.write(b'x' * (3 << 20))\n"   # > max_output_kb (64)
        "assert os.path.getsize('compile_cache.bin') == 3 << 20\n"
        "os.write(1, b'z' * (4 << 20))\n"                 # C-level output: truncated, never an error
        "print('y' * (1 << 20))\n"
    )
    result = grade(solved_release({"add": cache + "def add(a, b):\n    return a + b\n"}))
    assert result.score == FULL_MARKS and result.notebook_issues == []



@pytest.mark.skipif(os.geteuid() != 0, reason="the private tmpfs needs a mount namespace")
def test_torch_compile_writes_its_cache_and_compiles(tmp_path, grade):
    """Inductor writes C++ headers and objects far larger than the output cap (64 KiB here)."""
    lab = lab_copy(tmp_path, limits={"setup_timeout_s": 300, "call_timeout_s": 60, "test_timeout_s": 120,
                                     "cpu_s": 600, "max_output_kb": 64})
    code = ("import torch\n@torch.compile\ndef _double(x):\n    return x * 2 + 1\n"
            "assert torch.equal(_double(torch.arange(4.0)), torch.arange(4.0) * 2 + 1)\n"
            "def add(a, b):\n    return a + b\n")
    result = grade(solved_release({"add": code}), lab_=lab)
    assert result.notebook_issues == [] and result.score == FULL_MARKS
