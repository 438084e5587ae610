"""Loading lab.toml: names, blocked entries, probes."""
import ast

import pytest

from autograder.runner import lab as lab_module
from autograder.runner.errors import LabError
from autograder.runner.lab import Lab

from .conftest import FIXTURE, RELEASE


def test_fixture_lab_loads(lab):
    assert lab.name == "fixture"
    assert lab.release == RELEASE
    assert lab.skip_tags == ("training", "plotting")
    assert "torch.nn.functional:softmax" in lab.blocked
    assert lab.limits.call_timeout_s == 8
    assert lab.limits.memory_mb == 6144  # default
    assert [p.name for p in lab.test_files()] == ["test_add.py", "test_counter.py", "test_softmax.py"]
    assert Lab.load(FIXTURE / "lab.toml") == lab


def write(folder, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lab.toml").write_text(text)
    (folder / "r.ipynb").write_text("{}")
    return folder


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x"\nrelease = "./r.ipynb"\nextra = 1\n', "unknown key"),
        ('release = "./r.ipynb"\n', "`name`"),
        ('name = "x"\n', "`release`"),
        ('name = "x"\nrelease = "./missing.ipynb"\n', "does not exist"),
        ('name = "x"\nrelease = "./r.ipynb"\nblocked = ["no_colon"]\n', "package.module:attribute"),
        ('name = "x"\nrelease = "./r.ipynb"\nskip_tags = "training"\n', "list of strings"),
        ('name = "x"\nrelease = "./r.ipynb"\n[limits]\ncall_timeout = 3\n', "unknown limit"),
        ('name = "x"\nrelease = "./r.ipynb"\n[limits]\ncpu_s = -1\n', "positive number"),
        ('name = "x\n', "not valid TOML"),
    ],
)
def test_invalid_lab_toml(tmp_path, text, message):
    with pytest.raises(LabError, match=message):
        Lab.load(write(tmp_path, text))


def test_unknown_lab_name():
    with pytest.raises(LabError, match="no lab named 'no_such_lab'"):
        Lab.load("no_such_lab")


def test_folder_without_lab_toml(tmp_path):
    with pytest.raises(LabError, match="has no lab.toml"):
        Lab.load(tmp_path)


def test_blocked_references_resolve(lab, tmp_path):
    assert lab.unresolved_blocked() == []
    text = (FIXTURE / "lab.toml").read_text().replace('"torch:softmax"', '"torch:sofmax"')
    (tmp_path / "lab.toml").write_text(text.replace("./release/", f"{FIXTURE}/release/"))
    assert [r.split(" ")[0] for r in Lab.load(tmp_path).unresolved_blocked()] == ["torch:sofmax"]


def test_a_lab_is_found_by_its_name_only():
    """One id per lab: the `name` in its lab.toml (or a path); no guessed folder spellings."""
    lab = Lab.load("03_transformer")
    assert lab.folder.name == "lab03_transformer" and lab.name == "03_transformer"
    assert Lab.load(lab.folder) == lab
    with pytest.raises(LabError, match=r"no lab named 'lab03_transformer'.*03_transformer \(autograder/lab03_transformer\)"):
        Lab.load("lab03_transformer")
    with pytest.raises(LabError, match="no lab named 'transformer'"):
        Lab.load("transformer")


def _fake_autograder(tmp_path, monkeypatch, labs: dict[str, str]):
    """An autograder/ folder with one lab folder per entry (folder name -> lab name)."""
    root = tmp_path / "autograder"
    for folder, name in labs.items():
        write(root / folder, f'name = "{name}"\nrelease = "./r.ipynb"\n')
    (root / "probes").mkdir()
    (root / "probes" / "autocast.py").write_text("def run(namespace):\n    return 1\n")
    (root / "probes" / "__init__.py").write_text("")
    monkeypatch.setattr(lab_module, "AUTOGRADER_DIR", root)
    monkeypatch.setattr(lab_module, "SHARED_PROBES", root / "probes")
    return root


def test_two_labs_with_one_name_are_an_error(tmp_path, monkeypatch):
    _fake_autograder(tmp_path, monkeypatch, {"lab01_a": "01_rnn", "lab01_b": "01_rnn"})
    with pytest.raises(LabError, match="two labs are named '01_rnn'"):
        Lab.load("01_rnn")


def test_probes_have_one_home_each_and_a_clash_is_an_error(tmp_path, monkeypatch):
    root = _fake_autograder(tmp_path, monkeypatch, {"lab01_a": "01_a"})
    lab = Lab.load("01_a")
    assert lab.probe_files() == {"autocast": root / "probes" / "autocast.py"}   # __init__ is no probe
    own = root / "lab01_a" / "probes"
    own.mkdir()
    (own / "teacher_forcing.py").write_text("def run(namespace):\n    return 2\n")
    (own / "_helpers.py").write_text("")
    assert set(Lab.load("01_a").probe_files()) == {"autocast", "teacher_forcing"}
    (own / "autocast.py").write_text("def run(namespace):\n    return 3\n")   # a near-copy of a shared probe
    with pytest.raises(LabError, match="probe\\(s\\) autocast have the name of a shared probe"):
        Lab.load("01_a")


def test_a_whole_module_can_be_blocked(tmp_path, monkeypatch):
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "refmod.py").write_text(
        "import os\nfrom os.path import join\n\nLIMIT = 3\n\n"
        "def ref(x):\n    return x\n\nclass Ref:\n    pass\n\ndef _private():\n    pass\n")
    (tmp_path / "mods" / "empty_mod.py").write_text("from os.path import join\nLIMIT = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    blocked = '["refmod:*", "empty_mod:*", "no_such_module_xyz:*"]'
    folder = write(tmp_path / "lab", f'name = "x"\nrelease = "./r.ipynb"\nblocked = {blocked}\n')
    lab = Lab.load(folder)
    assert lab.blocked == ("refmod:*", "empty_mod:*", "no_such_module_xyz:*")
    assert [r.split(" ")[0] for r in lab.unresolved_blocked()] == ["empty_mod:*", "no_such_module_xyz:*"]
    assert "no public function or class" in lab.unresolved_blocked()[0]
    for bad in ('"refmod:*x"', '"refmod:"', '"*:ref"'):
        with pytest.raises(LabError, match="package.module:\\*"):
            Lab.load(write(tmp_path / f"bad{len(bad)}", f'name = "x"\nrelease = "./r.ipynb"\nblocked = [{bad}]\n'))


def probes_run_by_tests(lab: Lab) -> dict[str, str]:
    """``probe name -> test file`` for every ``submission.probe("name", ...)`` in the hidden
    tests, called directly or handed to a helper (``kit.call(submission.probe, "name", ...)``)."""
    found = {}
    for path in lab.test_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.Call):
                continue
            items = [node.func, *node.args]
            for fn, name in zip(items, items[1:], strict=False):
                if (isinstance(fn, ast.Attribute) and fn.attr == "probe" and isinstance(fn.value, ast.Name)
                        and fn.value.id == "submission" and isinstance(name, ast.Constant)
                        and isinstance(name.value, str)):
                    found[name.value] = path.name
    return found


@pytest.mark.parametrize("toml", sorted(lab_module.AUTOGRADER_DIR.glob("*/lab.toml")), ids=lambda p: p.parent.name)
def test_every_probe_a_hidden_test_runs_exists(toml):
    """A missing probe fails only when its test runs (a gpu test: only on a GPU runner); catch it here."""
    lab = Lab.load(toml)
    known = lab.probe_files()
    missing = {name: test for name, test in probes_run_by_tests(lab).items() if name not in known}
    assert not missing, f"{toml.parent.name}: hidden tests run probes that do not exist: {missing}; known: {sorted(known)}"


def test_probe_calls_are_found_in_both_forms(tmp_path):
    folder = write(tmp_path / "lab", 'name = "x"\nrelease = "./r.ipynb"\n')
    (folder / "test_p.py").write_text(
        "def test_a(submission):\n    submission.probe('direct', x=1)\n"
        "    kit.call(submission.probe, 'handed', fn='f')\n    other.probe('not_this')\n")
    assert probes_run_by_tests(Lab.load(folder)) == {"direct": "test_p.py", "handed": "test_p.py"}
