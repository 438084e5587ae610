"""The worker's operator watch (``worker_opwatch.py``): torch's operator by any name.

The fixture lab blocks ``F.softmax``, ``torch.softmax`` and ``Tensor.softmax`` as Python
objects. The same operator is reachable as ``torch.ops.aten._softmax`` or
``torch._C._VariableFunctions.softmax``; only a lab that lists it in ``blocked_ops`` refuses
those, whatever the submission does to the watch.
"""
import pytest

from autograder.runner.grade import grade_notebook
from autograder.runner.lab import Lab, LabError

from .conftest import FULL_MARKS, assert_no_leak, lab_copy, solved_release, write_nb

pytestmark = pytest.mark.slow

OPS_BY_OTHER_NAMES = {
    "aten": "def softmax(x):\n    return torch.ops.aten._softmax(x, -1, False)\n",
    "variable_functions": "def softmax(x):\n    return torch._C._VariableFunctions.softmax(x, -1)\n",
}
POPS_THE_WATCH = (
    "def softmax(x):\n"
    "    while torch._C._len_torch_function_stack():\n"
    "        torch._C._pop_torch_function_stack()\n"
    "    return torch.ops.aten._softmax(x, -1, False)\n"
)
DISABLES_DISPATCH = (
    "def softmax(x):\n"
    "    torch._C.DisableTorchFunction().__enter__()   # entered, never left\n"
    "    return torch.ops.aten._softmax(x, -1, False)\n"
)


@pytest.fixture
def watched_lab(tmp_path) -> Lab:
    lab = lab_copy(tmp_path)
    toml = lab.folder / "lab.toml"
    head, _, limits = toml.read_text().partition("[limits]")
    toml.write_text(head + 'blocked_ops = ["softmax", "_softmax", "_softmax_*"]\n\n[limits]' + limits)
    return Lab.load(lab.folder)


def _grade(tmp_path, lab, sources, name):
    path = write_nb(solved_release(sources), tmp_path / f"{name}.ipynb")
    result = grade_notebook(lab, path, name, log=tmp_path / f"{name}.log")
    assert result.error is None, result.error
    assert_no_leak(result)
    return result


def _softmax_failures(result) -> dict[str, str]:
    return {t.name: t.message for t in result.tests if t.status == "failed" and t.name.startswith("softmax::")}


def test_blocked_ops_are_read_and_checked(watched_lab, tmp_path):
    assert watched_lab.blocked_ops == ("softmax", "_softmax", "_softmax_*")
    toml = watched_lab.folder / "lab.toml"
    toml.write_text(toml.read_text().replace('"_softmax_*"', '"torch.ops.aten._softmax"'))
    with pytest.raises(LabError, match="blocked_ops entry 'torch.ops.aten._softmax'"):
        Lab.load(watched_lab.folder)


@pytest.mark.parametrize("route", sorted(OPS_BY_OTHER_NAMES))
def test_the_operator_under_another_name_passes_without_the_watch(lab, tmp_path, route):
    """The old hole, kept visible: without ``blocked_ops`` the Python blockers do not see it."""
    result = _grade(tmp_path, lab, {"softmax": OPS_BY_OTHER_NAMES[route]}, route)
    assert result.score == FULL_MARKS


@pytest.mark.parametrize("route", sorted(OPS_BY_OTHER_NAMES))
def test_the_watch_refuses_the_operator_under_any_name(watched_lab, tmp_path, route):
    result = _grade(tmp_path, watched_lab, {"softmax": OPS_BY_OTHER_NAMES[route]}, route)
    assert result.score == FULL_MARKS - 4
    failures = _softmax_failures(result)
    assert set(failures) == {"softmax::test_softmax_values", "softmax::test_softmax_large_scores",
                             "softmax::test_softmax_under_autocast"}
    assert all("`torch.ops.aten." in m and "write your own implementation" in m for m in failures.values()), failures


def test_an_honest_solution_keeps_full_marks_under_the_watch(watched_lab, tmp_path):
    assert _grade(tmp_path, watched_lab, {}, "honest").score == FULL_MARKS


@pytest.mark.parametrize("attack", ["pops", "disables"])
def test_switching_the_watch_off_is_refused(watched_lab, tmp_path, attack):
    code = POPS_THE_WATCH if attack == "pops" else DISABLES_DISPATCH
    result = _grade(tmp_path, watched_lab, {"softmax": code}, attack)
    assert result.score == FULL_MARKS - 4
    failures = _softmax_failures(result)
    assert len(failures) == 3
    assert all("operator watch" in m or "torch.ops.aten._softmax" in m for m in failures.values()), failures
    # the other parts, called after each refusal, are graded normally: the watch was put back
    assert all(t.status == "passed" for t in result.tests if not t.name.startswith("softmax::"))


def test_the_worker_and_the_grader_name_a_switched_off_watch_alike():
    from autograder.runner import errors, worker_opwatch

    assert worker_opwatch.TAMPERED == errors.WATCH_OFF
    assert "operator watch" in errors.reference_message(errors.WATCH_OFF)
