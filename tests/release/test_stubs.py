"""The stub builder on small sources, and the ``graded`` key of lab.toml."""
from __future__ import annotations

import ast
import shutil
import textwrap

import pytest

from autograder.release.library import graded_parts, stub_library
from autograder.release.stubs import Part, StubError, drop_dead_private, stub_source
from autograder.runner.errors import LabError
from autograder.runner.lab import Lab
from genlab._graded import GradedPartError

SOURCE = textwrap.dedent('''\
    """A module."""
    from __future__ import annotations

    import functools

    SECRET = 41


    def _helper(x):
        return x + SECRET  # the answer's core


    @functools.lru_cache
    def answer(x: int = 1) -> int:
        """Return the answer."""
        return _helper(x)


    def kept(x):
        return x * 2


    class Model:
        """A graded class."""
        width: int
        scale = 0.5

        def forward(self, x):
            return x * self.scale


    class Layer:
        def __init__(self):
            self.w = 3

        def graded(self, x):
            return x * self.w

        def fine(self):
            return self.w
''')


def _run(source: str, entries: list[str]) -> dict:
    parts = [Part.parse(f"genlab.m:{e}", "07", "the test lab") for e in entries]
    new, _ = stub_source(source, parts)
    new, _ = drop_dead_private(new, set())
    namespace: dict = {}
    exec(compile(new, "<stub>", "exec"), namespace)
    return namespace | {"__source__": new}


def test_function_stub_keeps_signature_and_docstring_and_raises_one_line():
    ns = _run(SOURCE, ["answer"])
    assert ns["answer"].__doc__ == "Return the answer."
    with pytest.raises(GradedPartError) as err:
        ns["answer"](3)
    assert str(err.value) == "answer is graded in lab 07 (the test lab): write it yourself in the notebook"
    assert isinstance(err.value, NotImplementedError)
    assert ns["kept"](2) == 4
    assert "return _helper(x)" not in ns["__source__"]


def test_a_private_helper_of_a_stubbed_part_is_dropped():
    ns = _run(SOURCE, ["answer"])
    assert "_helper" not in ns and "the answer's core" not in ns["__source__"]
    assert "_helper" in _run(SOURCE, ["kept"]), "a helper still in use stays"


def test_class_stub_stubs_every_method_and_drops_class_constants():
    ns = _run(SOURCE, ["Model"])
    with pytest.raises(GradedPartError, match="^Model is graded in lab 07"):
        ns["Model"]()   # a stub __init__ was added
    assert "scale = 0.5" not in ns["__source__"] and ns["Model"].__doc__ == "A graded class."


def test_method_stub_leaves_the_rest_of_the_class_working():
    ns = _run(SOURCE, ["Layer.graded"])
    layer = ns["Layer"]()
    assert layer.fine() == 3
    with pytest.raises(GradedPartError, match="^Layer.graded is graded"):
        layer.graded(1)


def test_star_stubs_every_public_function_and_class():
    ns = _run(SOURCE, ["*"])
    for name in ("answer", "kept"):
        with pytest.raises(GradedPartError):
            ns[name](1)
    with pytest.raises(GradedPartError):
        ns["Layer"]()


@pytest.mark.parametrize("entry, message", [("nothing", "no top-level function or class 'nothing'"),
                                            ("Layer.nope", "has no method 'nope'"),
                                            ("kept.attr", "is a function")])
def test_an_entry_that_names_nothing_is_an_error(entry, message):
    with pytest.raises(StubError, match=message):
        _run(SOURCE, [entry])


def _lab_with(tmp_path, graded: str) -> Lab:
    folder = tmp_path / "lab99_x"
    folder.mkdir()
    (folder / "x.ipynb").write_text("{}")
    (folder / "lab.toml").write_text(f'name = "99_x"\nrelease = "./x.ipynb"\ngraded = {graded}\n')
    return Lab.load(folder)


def test_lab_toml_graded_key_is_read(tmp_path):
    lab = _lab_with(tmp_path, '["genlab.nn.masks:causal_mask", "genlab.lm:*", "genlab.nn.rnn:LSTMCell.forward"]')
    assert lab.graded == ("genlab.nn.masks:causal_mask", "genlab.lm:*", "genlab.nn.rnn:LSTMCell.forward")
    assert (lab.number, lab.display_title) == ("99", "x")


@pytest.mark.parametrize("graded, message", [
    ('"genlab.lm:*"', "must be a list of strings"),
    ('["torch.nn:LSTM"]', "only the genlab library is stubbed"),
    ('["genlab.lm"]', "must look like 'genlab.module:function'"),
    ('["genlab.lm:a.b.c"]', "must look like"),
    ('["genlab.lm:f", "genlab.lm:f"]', "listed twice"),
])
def test_lab_toml_graded_key_is_validated(tmp_path, graded, message):
    with pytest.raises(LabError, match=message):
        _lab_with(tmp_path, graded)


def test_every_labs_graded_entries_stub_cleanly(tmp_path):
    """Each lab's entries name real parts (a typo fails here), none in genlab.checks."""
    from autograder.release.bundle import all_labs

    labs = all_labs()
    assert labs and all(lab.graded for lab in labs), "every lab declares its graded parts"
    report = stub_library(tmp_path, labs)
    parts = graded_parts(labs)
    assert parts and report.count() >= len(parts)
    assert not any(p.module.startswith("genlab.checks.") for p in parts)
    shutil.rmtree(tmp_path / "genlab")


def test_a_graded_entry_in_the_public_checks_is_refused(tmp_path):
    """The checks and the probes need genlab.checks whole: such an entry is an error, not a silent skip."""
    with pytest.raises(StubError, match="genlab.checks"):
        graded_parts([_lab_with(tmp_path, '["genlab.checks.lab01_bugs:*"]')])


ORACLES = textwrap.dedent('''\
    """A lab's bug-namers."""
    from __future__ import annotations

    from genlab.checks.recorded import oracle


    def _double_core(x):
        return 2 * x   # the answer's core


    @oracle
    def double_formula(x):
        """The right answer."""
        return _double_core(x)


    def name_double_bug(got, x):
        return None if got == double_formula(x) else "not doubled"
''')


def test_an_oracle_keeps_its_decorator_and_docstring_and_raises_oracle_removed():
    from autograder.release.stubs import stub_oracles
    from genlab.checks.recorded import OracleRemoved

    new, names = stub_oracles(ORACLES, "genlab.checks.lab99_bugs")
    new, dropped = drop_dead_private(new, set())
    assert names == ["double_formula"] and dropped == ["_double_core"]
    assert "@oracle" in new and "the answer's core" not in new and "return _double_core" not in new
    assert "def name_double_bug(got, x):" in new, "a namer stays whole"
    namespace: dict = {"__name__": "genlab.checks.lab99_bugs"}
    exec(compile(new, "<stub>", "exec"), namespace)
    assert namespace["double_formula"].__doc__ == "The right answer."
    with pytest.raises(OracleRemoved, match="lab99_bugs:double_formula is recorded, not computed"):
        namespace["double_formula"].__wrapped__(3)
    assert stub_oracles(SOURCE, "genlab.m") == (SOURCE, []), "a module without oracles is left as it is"


def test_every_labs_oracles_are_stubbed_in_the_student_build(tmp_path):
    from autograder.release.bundle import all_labs

    report = stub_library(tmp_path, all_labs())
    oracles = {m: n for m, n in report.stubbed.items() if m.startswith("genlab.checks.")}
    assert "genlab.checks.lab03_bugs" in oracles and "attention_formula" in oracles["genlab.checks.lab03_bugs"]
    tree = ast.parse((report.package / "checks" / "lab03_bugs.py").read_text(encoding="utf-8"))
    called = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert not called & {"softmax", "tril", "triu", "sin", "cos"}, "lab 03's formulas are gone, in code (hints may name them)"
