"""``get_ipython()`` in the grading worker: the magics a notebook's cells call, run as Jupyter would.

The grader turns IPython syntax into Python with IPython's own input transformer (``name?``
becomes ``get_ipython().run_line_magic('pinfo', 'name')``, ``x = !ls`` becomes
``x = get_ipython().getoutput('ls')``, ``%%time`` a ``run_cell_magic`` call; see
``ipython_cells.py``). This module answers those calls inside the worker without importing
IPython (standard library only; copied beside ``worker.py``):

* cell magics ``%%time``, ``%%prun`` (run the cell), ``%%capture [--no-stdout] [--no-stderr]
  [name]`` (run it with its output kept in ``name``), ``%%writefile [-a] file`` (write the
  file, so that a later ``import`` finds it), ``%%bash``/``%%sh``/``%%script bash``
  (a shell), ``%%html``, ``%%markdown``, ``%%latex``, ``%%javascript``, ``%%svg`` (nothing to run),
  ``%%timeit`` (not run: it would time, not define);
* line magics ``%time``/``%prun`` (run the statement), ``%env``, ``%cd``, ``%pwd``, ``%run``,
  ``%ls``/``%cat``/``%mkdir``... (shell), and the ones that only configure a kernel
  (``%matplotlib``, ``%load_ext``, ``%autoreload``, ``%config``...: nothing to do here);
* ``!cmd``, ``x = !cmd``: the shell, with ``{expr}`` and ``$name`` expanded from the notebook;
* package installs (``%pip``, ``!pip install``, conda, mamba, uv) are not run: grading has no
  network and the course's packages are already installed. A note is printed instead.

Anything else (``get_ipython().events.register(...)``, unknown magics) is a no-op, with a
note on stderr for magics, so that a notebook that ran in Jupyter does not fail here.
"""
import io
import os
import re
import shlex
import string
import subprocess
import sys
import time

_KERNEL_ONLY = {"matplotlib", "load_ext", "unload_ext", "reload_ext", "autoreload", "aimport", "config",
                "precision", "pdb", "debug", "xmode", "colors", "autocall", "automagic", "who", "whos",
                "who_ls", "history", "hist", "store", "reset", "reset_selective", "pinfo", "pinfo2", "psearch",
                "pdoc", "pdef", "psource", "pfile", "page", "alias_magic", "logstart", "logstop", "qtconsole",
                "connect_info", "notebook", "tb", "sx", "killbgscripts", "clear"}
_SHELL_ALIASES = {"ls", "cat", "mkdir", "rmdir", "rm", "cp", "mv", "ll", "lf", "lk", "lx", "ldir"}
_DISPLAY_ONLY = {"html", "markdown", "latex", "javascript", "js", "svg", "HTML", "perl", "ruby"}
_INSTALL = re.compile(r"(^|[\s/;&|])(pip3?|conda|mamba|micromamba|uv|apt-get|apt)(\s+\S+)*?\s+install\b"
                      r"|-m\s+pip\s+install\b")


class SList(list):
    """What ``x = !cmd`` gives: the output lines, with IPython's ``.s``, ``.n``, ``.l``, ``.p``."""

    @property
    def s(self):
        return " ".join(self)

    spstr = s

    @property
    def n(self):
        return "\n".join(self)

    nlstr = n

    @property
    def l(self):  # noqa: E743 - IPython's name
        return list(self)

    list = l

    @property
    def p(self):
        return [p for p in self]


class CapturedIO:
    """What ``%%capture name`` stores: ``.stdout``, ``.stderr``, ``.outputs``, ``.show()``."""

    def __init__(self, stdout: str, stderr: str):
        self.stdout, self.stderr, self.outputs = stdout, stderr, []

    def show(self):
        sys.stdout.write(self.stdout)
        sys.stderr.write(self.stderr)

    __call__ = show

    def __str__(self):
        return self.stdout


class _Bounded(io.StringIO):
    """A capture buffer that silently stops growing at ``limit`` characters."""

    def __init__(self, limit: int):
        super().__init__()
        self._room = limit

    def write(self, text):
        text = str(text)
        if self._room > 0:
            super().write(text[: self._room])
            self._room -= len(text)
        return len(text)


class _Null:
    """Any attribute, any call: nothing happens (``get_ipython().events.register(...)``)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    def __call__(self, *args, **kwargs):
        return self

    def __bool__(self):
        return False

    def __iter__(self):
        return iter(())

    def __repr__(self):
        return "<grader stand-in>"


class Shell:
    """The object ``get_ipython()`` returns in the worker."""

    CAPTURE_CHARS = 4 << 20

    def __init__(self, namespace: dict, current_file):
        self.user_ns = namespace
        self._current_file = current_file      # () -> the "<cell N>" being run
        self.config, self.display_pub, self.kernel = {}, _Null(), None
        self.events = _Null()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Null()

    def __repr__(self):
        return "<genlab grading shell>"

    # -- running code in the notebook's namespace
    def _exec(self, source: str, first_line: int) -> None:
        code = compile("\n" * first_line + source, self._current_file(), "exec", dont_inherit=True)
        exec(code, self.user_ns)

    def _note(self, text: str) -> None:
        print(f"[grader: {text}]", file=sys.stderr)

    # -- line magics
    def run_line_magic(self, name: str, line: str, _stack_depth: int = 1):
        name = name.lstrip("%")
        if name in ("time", "prun"):
            return self._time(line, sys._getframe(1).f_lineno - 1)
        if name == "timeit":
            return self._note("%timeit is not run while grading (it only times code)")
        if name == "env":
            return self._env(line)
        if name == "cd":
            os.chdir(os.path.expanduser(self._expand(line).strip() or "~"))
            return print(os.getcwd())
        if name == "pwd":
            return os.getcwd()
        if name == "run":
            return self._run_file(line)
        if name in ("pip", "conda", "mamba", "uv"):
            return self._note(f"%{name} {line} was not run: packages are not installed while grading")
        if name in ("sx", "system"):
            return self.getoutput(line)
        if name in _SHELL_ALIASES:
            return self.system(f"{name} {line}")
        if name in _KERNEL_ONLY:
            return None
        return self._note(f"the magic %{name} does nothing while grading")

    def magic(self, text: str):
        """The old spelling: ``get_ipython().magic("matplotlib inline")``."""
        name, _, line = text.lstrip("%").partition(" ")
        return self.run_line_magic(name, line)

    def _time(self, source: str, first_line: int):
        start = time.perf_counter()
        try:
            self._exec(source, first_line)
        finally:
            print(f"Wall time: {time.perf_counter() - start:.3g} s")

    def _env(self, line: str):
        line = line.strip()
        if not line:
            return dict(os.environ)
        if "=" in line or " " in line:
            key, _, value = line.replace("=", " ", 1).partition(" ")
            os.environ[key.strip()] = self._expand(value.strip())
            return None
        return os.environ.get(line)

    def _run_file(self, line: str):
        args = [a for a in shlex.split(self._expand(line)) if not a.startswith("-")]
        if not args:
            return self._note("%run needs a file name")
        path = args[0]
        with open(path, encoding="utf-8") as fh:
            source = fh.read()
        saved = sys.argv
        sys.argv = args
        try:
            exec(compile(source, os.path.abspath(path), "exec", dont_inherit=True), self.user_ns)
        finally:
            sys.argv = saved

    # -- cell magics
    def run_cell_magic(self, name: str, line: str, cell: str):
        if name in ("time", "prun"):
            return self._time(cell, 1)
        if name == "capture":
            return self._capture(line, cell)
        if name == "writefile":
            return self._writefile(line, cell)
        if name in ("bash", "sh") or (name == "script" and line.split()[:1] in (["bash"], ["sh"])):
            return self.system(cell)
        if name == "timeit":
            return self._note("%%timeit is not run while grading (it only times code)")
        if name in _DISPLAY_ONLY:
            return None
        return self._note(f"the cell magic %%{name} is not run while grading")

    def _capture(self, line: str, cell: str):
        args = line.split()
        out, err = _Bounded(self.CAPTURE_CHARS), _Bounded(self.CAPTURE_CHARS)
        saved = sys.stdout, sys.stderr
        if "--no-stdout" not in args:
            sys.stdout = out
        if "--no-stderr" not in args:
            sys.stderr = err
        try:
            self._exec(cell, 1)
        finally:
            sys.stdout, sys.stderr = saved
            names = [a for a in args if not a.startswith("-")]
            if names:
                self.user_ns[names[0]] = CapturedIO(out.getvalue(), err.getvalue())

    def _writefile(self, line: str, cell: str):
        args = shlex.split(self._expand(line))
        append = "-a" in args or "--append" in args
        names = [a for a in args if not a.startswith("-")]
        if not names:
            return self._note("%%writefile needs a file name")
        path = os.path.expanduser(names[0])
        existed = os.path.exists(path)
        with open(path, "a" if append else "w", encoding="utf-8") as fh:
            fh.write(cell)
        import importlib

        importlib.invalidate_caches()
        print(("Appending to" if append else "Overwriting" if existed else "Writing") + f" {names[0]}")

    # -- the shell
    def _expand(self, cmd: str) -> str:
        """``{expr}`` and ``$name`` from the notebook's namespace, as IPython expands them."""
        ns = self.user_ns
        try:
            cmd = string.Formatter().vformat(cmd, (), _Namespace(ns))
        except Exception:
            pass
        return re.sub(r"(?<!\$)\$([A-Za-z_]\w*)", lambda m: str(ns[m.group(1)]) if m.group(1) in ns else m.group(0), cmd)

    def _shell(self, cmd: str):
        cmd = self._expand(cmd)
        if _INSTALL.search(cmd):
            self._note(f"`{cmd.strip()[:200]}` was not run: packages are not installed while grading")
            return None
        proc = subprocess.run(["/bin/sh", "-c", cmd], stdin=subprocess.DEVNULL, capture_output=True)
        self.user_ns["_exit_code"] = proc.returncode
        return proc

    def system(self, cmd: str):
        proc = self._shell(cmd)
        if proc is not None:
            sys.stdout.write(proc.stdout.decode("utf-8", "replace"))
            sys.stderr.write(proc.stderr.decode("utf-8", "replace"))

    def getoutput(self, cmd: str, split: bool = True, depth: int = 0):
        proc = self._shell(cmd)
        text = "" if proc is None else (proc.stdout + proc.stderr).decode("utf-8", "replace")
        return SList(text.splitlines()) if split else text


class _Namespace(dict):
    """``str.format`` fields looked up in the notebook; an unknown one stays as written."""

    def __init__(self, ns):
        super().__init__()
        self._ns = ns

    def __missing__(self, key):
        if key in self._ns:
            return self._ns[key]
        raise KeyError(key)

    def __getitem__(self, key):
        return self.__missing__(key)
