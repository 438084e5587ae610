"""Reference blockers: refuse calls from submission code, let library code through."""
import sys
import types

import pytest

from autograder.runner import worker_blockers as B


def _cell(source: str, namespace: dict) -> None:
    exec(compile(source, "<cell 1>", "exec"), namespace)


@pytest.fixture
def package(tmp_path):
    """A two-module package ``refpkg`` whose ``refpkg`` re-exports ``refpkg.impl``'s parts."""
    impl = types.ModuleType("refpkg.impl")
    exec(compile(
        "def ref(x):\n    return x + 1\n\n"
        "class Ref:\n    def __init__(self, n):\n        self.n = n\n\n"
        "def library_user(x):\n    return ref(x) * 10\n",
        __file__, "exec"), impl.__dict__)  # a real file name: library code
    pkg = types.ModuleType("refpkg")
    pkg.impl, pkg.ref, pkg.Ref = impl, impl.ref, impl.Ref
    sys.modules.update({"refpkg": pkg, "refpkg.impl": impl})
    yield pkg
    for name in ("refpkg", "refpkg.impl"):
        sys.modules.pop(name, None)


def test_submission_calls_are_refused_library_calls_pass(package, tmp_path):
    blockers = B.Blockers(str(tmp_path))
    warnings = blockers.install(["refpkg.impl:ref", "refpkg.impl:Ref", "refpkg.impl:nothing"])
    assert warnings == ["could not block refpkg.impl:nothing: AttributeError: nothing"]
    assert package.ref is package.impl.ref  # the re-export was replaced as well
    ns = {"refpkg": package}
    with pytest.raises(B.ReferenceUsedError, match="refpkg.impl.ref; write your own"):
        _cell("refpkg.ref(1)", ns)
    with pytest.raises(B.ReferenceUsedError):
        _cell("from refpkg import ref as r\nr(1)", ns)
    with pytest.raises(B.ReferenceUsedError):
        _cell("refpkg.Ref(3)", ns)
    with pytest.raises(B.ReferenceUsedError):
        _cell("class Mine(refpkg.Ref):\n    def __init__(self):\n        super().__init__(1)\nMine()", ns)
    _cell("out = refpkg.impl.library_user(1)", ns)   # library code calling the reference: fine
    assert ns["out"] == 20
    assert isinstance(package.impl.Ref.__new__(package.impl.Ref), package.impl.Ref.__mro__[1])
    assert blockers.hits == ["refpkg.impl.ref"] * 2 + ["refpkg.impl.Ref"] * 2


def test_code_written_to_files_counts_as_submission_code(tmp_path):
    blockers = B.Blockers(str(tmp_path))
    assert blockers.is_submission_file("<cell 3>") and blockers.is_submission_file("<string>")
    assert blockers.is_submission_file(str(tmp_path / "helper.py"))
    assert blockers.is_submission_file("/no/such/file.py")
    assert not blockers.is_submission_file(B.__file__)
    assert not blockers.is_submission_file("<frozen importlib._bootstrap>")


def test_modules_imported_later_are_blocked_on_import(tmp_path):
    (tmp_path / "lazyref").mkdir()
    (tmp_path / "lazyref" / "__init__.py").write_text("from .impl import ref\n")
    (tmp_path / "lazyref" / "impl.py").write_text("def ref(x):\n    return x + 1\n")
    (tmp_path / "lazystar.py").write_text("def ref(x):\n    return x + 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        blockers = B.Blockers(str(tmp_path / "work"))
        assert blockers.install(["lazyref.impl:ref"]) == []
        assert "lazyref" not in sys.modules   # nothing imported yet
        ns = {}
        with pytest.raises(B.ReferenceUsedError):
            _cell("import lazyref\nlazyref.ref(1)", ns)   # the package's re-export is the wrapper
        with pytest.raises(B.ReferenceUsedError):
            _cell("from lazyref.impl import ref\nref(1)", ns)
        assert blockers.install(["lazystar:*"]) == [] and "lazystar" not in sys.modules
        with pytest.raises(B.ReferenceUsedError):   # `*` is resolved when the module is imported
            _cell("import lazystar\nlazystar.ref(1)", ns)
    finally:
        sys.path.remove(str(tmp_path))
        sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_BlockOnImport"]
        for name in ("lazyref", "lazyref.impl", "lazystar"):
            sys.modules.pop(name, None)


def test_library_under_tmp_is_library_code(tmp_path, monkeypatch):
    """A checkout under /tmp (CI clones there) is library code, not submission code: its own
    calls of a blocked reference pass, while a cell's calls are still refused."""
    workdir, libroot = tmp_path / "work", tmp_path / "checkout"
    workdir.mkdir()
    (libroot / "tmplib").mkdir(parents=True)
    (libroot / "tmplib" / "__init__.py").write_text(
        "def ref(x):\n    return x + 1\n\ndef library_user(x):\n    return ref(x) * 10\n"
    )
    blockers = B.Blockers(str(workdir))          # created before the checkout is on sys.path,
    monkeypatch.syspath_prepend(str(libroot))    # like an editable install's finder
    try:
        assert blockers.install(["tmplib:ref"]) == []
        import tmplib

        assert blockers.is_submission_file(tmplib.__file__) is False
        ns = {"tmplib": tmplib}
        _cell("out = tmplib.library_user(1)", ns)
        assert ns["out"] == 20
        with pytest.raises(B.ReferenceUsedError):
            _cell("tmplib.ref(1)", ns)
        assert blockers.is_submission_file(str(workdir / "helper.py")) is True
    finally:
        sys.modules.pop("tmplib", None)


def test_a_whole_module_is_blocked_by_star(package, tmp_path):
    """``module:*`` blocks the module's own public functions and classes, re-exports included,
    and nothing it merely imports or keeps private."""
    impl = package.impl
    exec(compile("from os.path import join\nLIMIT = 3\n\ndef _helper(x):\n    return x\n", __file__, "exec"),
         impl.__dict__)
    blockers = B.Blockers(str(tmp_path))
    assert B.expand("refpkg.impl:*") == ["refpkg.impl:Ref", "refpkg.impl:library_user", "refpkg.impl:ref"]
    assert blockers.install(["refpkg.impl:*"]) == []
    ns = {"refpkg": package}
    for call in ("refpkg.ref(1)", "refpkg.Ref(3)", "refpkg.impl.library_user(1)"):
        with pytest.raises(B.ReferenceUsedError):
            _cell(call, ns)
    _cell("a = refpkg.impl.join('a', 'b')\nb = refpkg.impl._helper(2)", ns)   # imported and private: untouched
    assert (ns["a"], ns["b"]) == ("a/b", 2)
    assert impl.join is __import__("os").path.join
    assert blockers.hits == ["refpkg.impl.ref", "refpkg.impl.Ref", "refpkg.impl.library_user"]


def test_star_follows_all_and_never_wraps_twice(package, tmp_path):
    """A module with ``__all__`` blocks exactly what it lists; an entry already blocked through
    another module is not wrapped again (one hit per call)."""
    package.__all__ = ["ref", "Ref", "LIMIT"]
    package.LIMIT = 3
    blockers = B.Blockers(str(tmp_path))
    assert B.expand("refpkg:*") == ["refpkg:Ref", "refpkg:ref"]
    assert blockers.install(["refpkg.impl:ref", "refpkg:*"]) == []
    wrapper = package.ref
    assert package.impl.ref is wrapper and vars(wrapper)[B.MARK] == "refpkg.impl.ref"
    with pytest.raises(B.ReferenceUsedError):
        _cell("refpkg.ref(1)", {"refpkg": package})
    assert blockers.hits == ["refpkg.impl.ref"]


def test_star_of_a_module_without_functions_is_a_warning(package, tmp_path):
    empty = types.ModuleType("refpkg.empty")
    empty.LIMIT = 3
    sys.modules["refpkg.empty"] = empty
    try:
        warnings = B.Blockers(str(tmp_path)).install(["refpkg.empty:*"])
    finally:
        sys.modules.pop("refpkg.empty", None)
    assert warnings == ["could not block refpkg.empty:*: refpkg.empty has no public function or class"]


def test_aliases_and_subclasses_of_a_reference_are_named(package, tmp_path):
    """A name the notebook bound to a reference, or a class that only derives from one, is the
    reference: the worker refuses it to a probe (trusted code) as well as to a hidden test."""
    from autograder.runner.worker_blockers import GuardedNamespace

    blockers = B.Blockers(str(tmp_path))
    assert blockers.install(["refpkg.impl:ref", "refpkg.impl:Ref"]) == []
    ns = {"refpkg": package}
    _cell("from refpkg import ref as mine\nclass Child(refpkg.Ref):\n    pass\n"
          "def own(x):\n    return x + 1\nclass Own:\n    pass\n", ns)
    assert B.blocked_name(ns["mine"]) == "refpkg.impl.ref"
    assert B.blocked_name(ns["Child"]) == "refpkg.impl.Ref"
    assert B.blocked_name(ns["own"]) is None and B.blocked_name(ns["Own"]) is None
    assert B.blocked_name(print) is None and B.blocked_name(3) is None
    import functools
    assert B.blocked_name(functools.partial(functools.partial(ns["mine"]), 1)) == "refpkg.impl.ref"
    assert B.blocked_name(functools.partial(ns["own"])) is None
    view = GuardedNamespace(ns, blockers)
    assert view["own"](1) == 2 and view.get("Own") is ns["Own"] and view.get("missing") is None
    for name in ("mine", "Child"):
        with pytest.raises(B.ReferenceUsedError, match="write your own"):
            view[name]
    with pytest.raises(B.ReferenceUsedError):
        view.get("mine")
    assert blockers.hits == ["refpkg.impl.ref", "refpkg.impl.Ref", "refpkg.impl.ref"]
