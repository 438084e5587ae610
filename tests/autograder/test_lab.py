"""Loading lab.toml."""
import pytest

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


def write(tmp_path, text):
    (tmp_path / "lab.toml").write_text(text)
    (tmp_path / "r.ipynb").write_text("{}")
    return tmp_path


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
