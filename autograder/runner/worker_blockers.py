"""Reference blockers for the grading worker (standard library only; see ``worker.py``).

Each blocked ``"module:attr"`` is replaced by a wrapper that raises ``ReferenceUsedError``
when its immediate Python caller is submission code (a ``<cell N>`` frame, code compiled
from a string, or a file the submission wrote), and passes through for library code. A
blocked class becomes a subclass whose ``__init__`` does the same check. Re-exports of the
same object in the package's other modules are replaced too. Modules not imported yet are
patched right after their first import (``_BlockOnImport``).
"""
import os
import sys


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
        for ref in refs:
            modname = ref.partition(":")[0]
            self._add_library_package(modname.partition(".")[0])
            if modname in sys.modules:
                warnings += self._block(ref)
            else:
                later.setdefault(modname, []).append(ref)
        if later:
            sys.meta_path.insert(0, _BlockOnImport(self, later))
        return warnings

    def _add_library_package(self, top: str) -> None:
        """Count the folder(s) of package ``top`` (e.g. genlab, torch) as library code."""
        import importlib.util

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
        import importlib
        import inspect

        modname, _, attrpath = ref.partition(":")
        shown = f"{modname}.{attrpath}"
        try:
            module = importlib.import_module(modname)
            parts = attrpath.split(".")
            owner = module
            for part in parts[:-1]:
                owner = getattr(owner, part)
            static = inspect.getattr_static(owner, parts[-1])
            original = getattr(owner, parts[-1])
        except BaseException as exc:  # a missing optional library must not stop grading
            return [f"could not block {ref}: {type(exc).__name__}: {exc}"]
        wrapper = self._wrap(original, shown)
        if isinstance(static, staticmethod):
            setattr(owner, parts[-1], staticmethod(wrapper))
        elif isinstance(static, classmethod):
            setattr(owner, parts[-1], classmethod(self._wrap(static.__func__, shown)))
        else:
            setattr(owner, parts[-1], wrapper)
        if len(parts) == 1:
            self._replace_reexports(modname.split(".")[0], original, wrapper)
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
                    "__qualname__": original.__qualname__, "__doc__": original.__doc__})
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
