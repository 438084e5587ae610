"""Reference blockers for the grading worker (standard library only; see ``worker.py``).

Each blocked ``"module:attr"`` is replaced by a wrapper that raises ``ReferenceUsedError``
when its immediate Python caller is submission code (a ``<cell N>`` frame, code compiled
from a string, or a file the submission wrote), and passes through for library code. A
blocked class becomes a subclass whose ``__init__`` does the same check. Re-exports of the
same object in the package's other modules are replaced too. Modules not imported yet are
patched right after their first import (``_BlockOnImport``).

``"module:*"`` blocks every public function and class of the module (``expand``): the
names in its ``__all__``, or else its public names defined in the module itself (not
what it imports), resolved when the module is imported. The grader's ``Lab`` resolves
entries with the same ``expand`` and ``lookup``.
"""
import functools
import importlib
import importlib.util
import inspect
import os
import sys

MARK = "__genlab_blocked__"   # set on every wrapper: a re-export already blocked is not wrapped twice


def expand(ref: str) -> list[str]:
    """The single ``"module:attr"`` entries ``ref`` stands for (imports the module of a ``*``)."""
    modname, _, attrpath = ref.partition(":")
    if attrpath != "*":
        return [ref]
    return [f"{modname}:{name}" for name in public_callables(importlib.import_module(modname))]


def public_callables(module) -> list[str]:
    """Names of ``module``'s public functions and classes (what ``module:*`` blocks)."""
    listed = getattr(module, "__all__", None)
    names = list(listed) if listed is not None else [n for n in vars(module) if not n.startswith("_")]
    found = []
    for name in names:
        value = getattr(module, name, None)
        if not (inspect.isroutine(value) or inspect.isclass(value)):
            continue
        if listed is None and getattr(value, "__module__", None) != module.__name__:
            continue  # imported from elsewhere (torch.Tensor, dataclass...): not this module's
        found.append(name)
    return sorted(set(found))


def _is_wrapper(obj) -> bool:
    try:
        return MARK in vars(obj)
    except TypeError:  # no __dict__ (a builtin)
        return False


def blocked_name(obj) -> str | None:
    """The reference ``obj`` stands for when it is a blocker's wrapper, a class derived from one
    (``class Mine(genlab_class): pass`` is genlab's class under another name), or a
    ``functools.partial`` or bound method of one."""
    for _ in range(10):  # partial(partial(ref)), a method bound to a partial...
        inner = getattr(obj, "func", None) if isinstance(obj, functools.partial) else getattr(obj, "__func__", None)
        if inner is None:
            break
        obj = inner
    try:
        owners = obj.__mro__ if isinstance(obj, type) else (obj,)
    except BaseException:
        return None
    for owner in owners:
        try:
            shown = vars(owner).get(MARK)
        except BaseException:  # no __dict__ (a builtin) or a hostile __getattribute__
            continue
        if isinstance(shown, str):
            return shown
    return None


def lookup(ref: str):
    """``(owner, name, static, value)`` of a single ``"module:attr[.attr]"`` entry (imports it)."""
    modname, _, attrpath = ref.partition(":")
    parts = attrpath.split(".")
    owner = importlib.import_module(modname)
    for part in parts[:-1]:
        owner = getattr(owner, part)
    static = inspect.getattr_static(owner, parts[-1])
    return owner, parts[-1], static, getattr(owner, parts[-1])


class ReferenceUsedError(BaseException):
    """Raised by a blocked reference implementation called from submission code.

    A ``BaseException`` so that ``except Exception`` in submission code does not hide it.
    """


class Blockers:
    """Replace blocked reference implementations with wrappers that refuse submission callers."""

    def __init__(self, workdir: str):
        self.hits: list[str] = []
        self.trusted: set[str] = set()
        self._cache: dict[str, bool] = {}
        self._made: dict | None = None   # while ``install`` runs: the wrappers it made
        self._workdir = os.path.realpath(workdir) + os.sep
        # Where the submission can write: code found there is the submission's.
        self._roots = tuple(os.path.realpath(p) + os.sep for p in {workdir, "/tmp", "/var/tmp", "/dev/shm"})
        # Where the library lives: sys.path as it was before any submission code ran (less the
        # working folder and this script's own folder), plus the packages of the blocked
        # references (added by ``install``; editable installs are not on sys.path). These win
        # over ``_roots``, so a checkout under /tmp still counts as library code.
        script = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
        script_dir = os.path.dirname(script) if os.path.isfile(script) else ""  # not for `python -c`
        self._library = {
            os.path.realpath(p) + os.sep
            for p in sys.path
            if p and os.path.isdir(p) and os.path.realpath(p) != script_dir
            and not (os.path.realpath(p) + os.sep).startswith(self._workdir)
        }

    def is_submission_file(self, filename: str) -> bool:
        known = self._cache.get(filename)
        if known is not None:
            return known
        if filename in self.trusted or filename.startswith("<frozen"):
            result = False
        elif filename.startswith("<"):
            result = True
        else:
            real = os.path.realpath(filename)
            if real.startswith(self._workdir) or not os.path.isfile(real):
                result = True
            elif real.startswith(tuple(self._library)):
                result = False
            else:
                result = real.startswith(self._roots)
        self._cache[filename] = result
        return result

    def install(self, refs):
        """Block ``refs`` ("module:attr"). Modules already imported are patched now; the
        others when they are first imported (an import hook), so a lab that blocks a part of
        a heavy module (lightning...) costs nothing unless the submission imports it."""
        warnings, later = [], {}
        self._made = {}
        for ref in refs:
            modname = ref.partition(":")[0]
            self._add_library_package(modname.partition(".")[0])
            if modname in sys.modules:
                warnings += self._block(ref)
            else:
                later.setdefault(modname, []).append(ref)
        made, self._made = self._made, None
        _replace_everywhere(made)   # re-exports by other packages imported already (lightning...)
        if later:
            sys.meta_path.insert(0, _BlockOnImport(self, later))
        return warnings

    def _add_library_package(self, top: str) -> None:
        """Count the folder(s) of package ``top`` (e.g. genlab, torch) as library code."""
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            return
        for folder in (spec.submodule_search_locations or []) if spec else []:
            real = os.path.realpath(folder) + os.sep
            if not real.startswith(self._workdir):
                self._library.add(real)
        self._cache.clear()

    def _block(self, ref):
        """Block one entry (a ``*`` entry: each of its functions and classes); return warnings."""
        modname, _, attrpath = ref.partition(":")
        if attrpath == "*":
            try:
                refs = expand(ref)
            except BaseException as exc:  # a missing optional library must not stop grading
                return [f"could not block {ref}: {type(exc).__name__}: {exc}"]
            if not refs:
                return [f"could not block {ref}: {modname} has no public function or class"]
            return [w for single in refs for w in self._block(single)]
        shown = f"{modname}.{attrpath}"
        try:
            owner, name, static, original = lookup(ref)
        except BaseException as exc:  # a missing optional library must not stop grading
            return [f"could not block {ref}: {type(exc).__name__}: {exc}"]
        if _is_wrapper(original):
            return []   # a re-export of an entry blocked already
        wrapper = self._wrap(original, shown)
        if isinstance(static, staticmethod):
            setattr(owner, name, staticmethod(wrapper))
        elif isinstance(static, classmethod):
            setattr(owner, name, classmethod(self._wrap(static.__func__, shown)))
        else:
            setattr(owner, name, wrapper)
        if "." not in attrpath:
            self._replace_reexports(modname.split(".")[0], original, wrapper)
            if self._made is not None:
                self._made[id(original)] = (original, wrapper)
        return []

    def _wrap(self, original, shown):
        blockers = self
        getframe = sys._getframe

        def refuse(depth):
            caller = getframe(depth).f_code.co_filename
            if blockers.is_submission_file(caller):
                blockers.hits.append(shown)
                raise ReferenceUsedError(
                    f"you called the reference implementation {shown}; write your own implementation"
                )

        if isinstance(original, type):
            # A class: a subclass whose __init__ refuses submission callers (a student class
            # deriving from it calls it through super().__init__ from its own code).
            def __init__(self, *args, **kwargs):
                refuse(2)
                original.__init__(self, *args, **kwargs)

            try:
                return type(original)(original.__name__, (original,), {
                    "__init__": __init__, "__module__": original.__module__,
                    "__qualname__": original.__qualname__, "__doc__": original.__doc__, MARK: shown})
            except TypeError:
                return original

        def blocked(*args, **kwargs):
            refuse(2)
            return original(*args, **kwargs)

        for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
            try:
                setattr(blocked, attr, getattr(original, attr))
            except (AttributeError, TypeError):
                pass
        setattr(blocked, MARK, shown)
        return blocked

    @staticmethod
    def _replace_reexports(package, original, wrapper):
        for name, module in list(sys.modules.items()):
            if not (name == package or name.startswith(package + ".")):
                continue
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for key, value in list(namespace.items()):
                if value is original:
                    try:
                        setattr(module, key, wrapper)
                    except (AttributeError, TypeError):
                        pass


def _replace_everywhere(made: dict) -> None:
    """Put each wrapper in place of its original wherever an imported module holds it
    (``made``: ``id(original) -> (original, wrapper)``); one pass over every module."""
    if not made:
        return
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for key, value in list(namespace.items()):
            pair = made.get(id(value))
            if pair is not None and pair[0] is value:
                try:
                    setattr(module, key, pair[1])
                except (AttributeError, TypeError):
                    pass


class _BlockOnImport:
    """A meta path finder that patches blocked references right after their module runs."""

    def __init__(self, blockers: Blockers, pending: dict):
        self.blockers, self.pending = blockers, pending

    def find_spec(self, fullname, path=None, target=None):
        refs = self.pending.get(fullname)
        if refs is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        del self.pending[fullname]
        spec.loader = _PatchingLoader(spec.loader, lambda: [self.blockers._block(r) for r in refs])
        return spec


class _PatchingLoader:
    def __init__(self, inner, after):
        self._inner, self._after = inner, after

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        self._inner.exec_module(module)
        self._after()

    def __getattr__(self, name):
        return getattr(self._inner, name)


class GuardedNamespace(dict):
    """The notebook's namespace as a probe sees it: a name bound to a blocked reference
    (``from genlab.x import ref``) raises ``ReferenceUsedError`` when the probe looks it up,
    so a probe, which is trusted code, never runs the reference on the student's behalf."""

    def __init__(self, namespace: dict, blockers: Blockers):
        super().__init__(namespace)
        self._blockers = blockers

    def _checked(self, name, value):
        shown = blocked_name(value)
        if shown is not None:
            self._blockers.hits.append(shown)
            raise ReferenceUsedError(f"{name} is the reference implementation {shown}; write your own implementation")
        return value

    def __getitem__(self, name):
        return self._checked(name, super().__getitem__(name))

    def get(self, name, default=None):
        return self._checked(name, super().get(name, default))
