"""A lab: a folder with ``lab.toml``, hidden ``test_*.py`` files and, if any, ``probes/``.

``lab.toml``::

    name = "03_transformer"                          # assignment name (nbgrader): the lab's id
    release = "labs/03_transformer/transformer.ipynb"  # from the repo root, or "./x.ipynb"
    skip_tags = ["training", "plotting"]             # cells not executed while grading
    blocked = ["genlab.nn.attention:scaled_dot_product_attention",  # "module:attr[.attr]"
               "genlab.nn.masks:*"]                  # every public function and class
    blocked_ops = ["scaled_dot_product_attention",   # torch operators by their own name, any route
                   "_scaled_dot_product_*"]          # (fnmatch patterns; see worker_opwatch.py)
    title = "the Transformer"                        # optional; the stubs' message names it
    graded = ["genlab.nn.attention:kv_cache_step",   # stubbed in the student build (see below)
              "genlab.nn.attention:MultiHeadAttention.split_heads",
              "genlab.checks.lab03_bugs:*"]
    [limits]                                         # all optional
    setup_timeout_s = 120
    call_timeout_s = 30

``Lab.load("03_transformer")`` finds the ``lab.toml`` under ``autograder/`` whose ``name``
is ``03_transformer``; a lab folder or a ``lab.toml`` path works too.

Probes: the shared ones in ``autograder/probes/``, and a lab's own in ``<lab>/probes/``.
A lab probe named like a shared one is a ``LabError`` (never a silent shadow).

``blocked`` is what a submission may not call while it is graded (torch operators too).
``blocked_ops`` names torch operators the submission may not reach by any name while its code
is called (``torch._C._nn.x``, ``torch.ops.aten.x``...): the worker's operator watch.
``graded`` is what ``genlab release`` replaces by a stub in the student build of the
library: the library's reference implementations of the lab's graded parts and the
oracles of its checks. Entries are ``"genlab.module:function"``, ``"genlab.module:Class"``
(every method), ``"genlab.module:Class.method"`` or ``"genlab.module:*"`` (every public
top-level function and class). ``autograder/release/stubs.py`` says what each kind becomes.
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import worker_blockers
from .errors import LabError

AUTOGRADER_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = AUTOGRADER_DIR.parent
SHARED_PROBES = AUTOGRADER_DIR / "probes"
_BLOCKED_RE = re.compile(r"^[A-Za-z_][\w.]*:([A-Za-z_][\w.]*|\*)$")
_OP_RE = re.compile(r"^[A-Za-z_*][\w*]*$")
_GRADED_RE = re.compile(r"^genlab(\.[A-Za-z_]\w*)*:([A-Za-z_]\w*(\.[A-Za-z_]\w*)?|\*)$")


@dataclass(frozen=True)
class Limits:
    """Resource limits for one submission's worker process (all optional in lab.toml)."""

    setup_timeout_s: float = 120.0   # wall time for one cell while the notebook runs
    call_timeout_s: float = 30.0     # wall time for one call into the submission
    test_timeout_s: float = 120.0    # wall time for one hidden test, all its calls together
    total_timeout_s: float = 900.0   # wall time for the whole submission: cells, every test, restarts
    memory_mb: int = 6144            # address space (RLIMIT_AS); torch alone maps ~3.3 GiB
    cpu_s: int = 300                 # CPU seconds for the worker's whole life (RLIMIT_CPU)
    max_output_kb: int = 256         # what the submission may print (the stream, not its files)
    max_processes: int = 128         # processes and threads (RLIMIT_NPROC)
    tmp_mb: int = 512                # the worker's private /tmp (a tmpfs), and the largest file it may write
    threads: int = 1                 # OMP/MKL/torch threads in the worker
    max_notebook_mb: float = 64.0    # a larger notebook file is refused before it is read
    max_reply_mb: int = 512          # tensors in one reply from the worker

    @classmethod
    def from_dict(cls, data: dict, where: str) -> Limits:
        known = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for key, value in data.items():
            if key not in known:
                raise LabError(
                    f"{where}: unknown limit {key!r}; known limits: {', '.join(sorted(known))}"
                )
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise LabError(f"{where}: limit {key} must be a positive number, got {value!r}")
            values[key] = type(getattr(cls, key))(value)
        return cls(**values)


@dataclass(frozen=True)
class Lab:
    """A lab's grading configuration. ``folder`` holds ``lab.toml`` and the hidden tests."""

    name: str
    folder: Path
    release: Path
    skip_tags: tuple[str, ...] = ("training", "plotting")
    blocked: tuple[str, ...] = ()
    blocked_ops: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    graded: tuple[str, ...] = ()
    title: str = ""

    @property
    def number(self) -> str:
        """The lab's number as written in its name: ``"03"`` for ``"03_transformer"``."""
        return self.name.split("_", 1)[0]

    @property
    def display_title(self) -> str:
        """``title`` from lab.toml, else the name's words: ``"transformer"``."""
        return self.title or self.name.split("_", 1)[-1].replace("_", " ")

    @classmethod
    def load(cls, name_or_path: str | Path) -> Lab:
        """Load a lab by its name (``"03_transformer"``) or its folder or ``lab.toml`` path."""
        toml_path = _find_lab_toml(name_or_path)
        where = str(toml_path)
        try:
            data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise LabError(f"{where} is not valid TOML: {exc}") from None
        known = {"name", "release", "skip_tags", "blocked", "blocked_ops", "limits", "graded", "title"}
        unknown = set(data) - known
        if unknown:
            raise LabError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                f"known keys: {', '.join(sorted(known))}"
            )
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise LabError(f"{where}: `name` (the nbgrader assignment name) is required")
        release = data.get("release")
        if not isinstance(release, str) or not release:
            raise LabError(f"{where}: `release` (path of the student release notebook) is required")
        release_path = _resolve_release(release, toml_path.parent)
        if not release_path.is_file():
            raise LabError(f"{where}: release notebook {release_path} does not exist")
        skip_tags = _string_list(data.get("skip_tags", ["training", "plotting"]), "skip_tags", where)
        blocked = _string_list(data.get("blocked", []), "blocked", where)
        for ref in blocked:
            if not _BLOCKED_RE.match(ref):
                raise LabError(
                    f"{where}: blocked entry {ref!r} must look like 'package.module:attribute' "
                    "(or 'package.module:*' for every public function and class of the module)"
                )
        blocked_ops = _string_list(data.get("blocked_ops", []), "blocked_ops", where)
        for op in blocked_ops:
            if not _OP_RE.match(op):
                raise LabError(f"{where}: blocked_ops entry {op!r} must be a torch operator's name, "
                               "optionally with * wildcards (e.g. 'scaled_dot_product_attention', '_scaled_dot_product_*')")
        graded = _graded_entries(data.get("graded", []), where)
        title = data.get("title", "")
        if not isinstance(title, str):
            raise LabError(f"{where}: `title` must be a string (the lab's title, e.g. \"the Transformer\"), got {title!r}")
        limits_data = data.get("limits", {})
        if not isinstance(limits_data, dict):
            raise LabError(f"{where}: [limits] must be a table")
        lab = cls(
            name=name,
            folder=toml_path.parent.resolve(),
            release=release_path,
            skip_tags=tuple(skip_tags),
            blocked=tuple(blocked),
            blocked_ops=tuple(blocked_ops),
            limits=Limits.from_dict(limits_data, where),
            graded=tuple(graded),
            title=title,
        )
        lab.probe_files()   # a probe name clash is an error now, not when a test asks for it
        return lab

    def test_files(self) -> list[Path]:
        """The hidden test files, sorted."""
        return sorted(self.folder.glob("test_*.py"))

    def unresolved_blocked(self) -> list[str]:
        """Blocked references that do not resolve here (for the lab's own tests).

        The worker blocks references lazily, when their module is first imported, and
        cannot report typos then: a lab's test suite should assert this list is empty.
        A ``module:*`` entry must match at least one function or class. Imports the modules
        named in ``blocked``; resolves them exactly as the worker does.
        """
        bad = []
        for ref in self.blocked:
            try:
                singles = worker_blockers.expand(ref)
                if not singles:
                    raise LookupError("the module has no public function or class")
                for single in singles:
                    worker_blockers.lookup(single)
            except Exception as exc:
                bad.append(f"{ref} ({type(exc).__name__}: {exc})")
        return bad

    def probe_files(self) -> dict[str, Path]:
        """Every probe this lab's tests may run, by name: the shared ones and the lab's own.

        Raises ``LabError`` when a lab probe has the name of a shared one.
        """
        shared, own = _probes_in(SHARED_PROBES), _probes_in(self.folder / "probes")
        clash = sorted(set(shared) & set(own))
        if clash:
            raise LabError(
                f"{self.folder / 'probes'}: probe(s) {', '.join(clash)} have the name of a shared probe "
                f"in {SHARED_PROBES}; rename the lab's probe, or extend the shared one instead of copying it"
            )
        return {**shared, **own}


def _probes_in(folder: Path) -> dict[str, Path]:
    """``name -> file`` for the probes in ``folder`` (``*.py`` not starting with ``_``)."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")}


def _find_lab_toml(name_or_path: str | Path) -> Path:
    path = Path(name_or_path).expanduser()
    if path.name == "lab.toml" and path.is_file():
        return path.resolve()
    if path.is_dir():
        if (path / "lab.toml").is_file():
            return (path / "lab.toml").resolve()
        raise LabError(f"{path} is a folder but has no lab.toml")
    text = str(name_or_path)
    labs = _labs_by_name()
    if text in labs:
        return labs[text]
    known = ", ".join(f"{n} ({p.parent.relative_to(AUTOGRADER_DIR.parent)})" for n, p in sorted(labs.items()))
    raise LabError(
        f"no lab named {text!r}: name a lab by the `name` in its lab.toml, or give its folder; "
        f"known labs: {known or '(no labs found under autograder/)'}"
    )


def _labs_by_name() -> dict[str, Path]:
    """``name -> lab.toml`` for every lab under ``autograder/``; two labs with one name are an error."""
    labs: dict[str, Path] = {}
    for toml in sorted(AUTOGRADER_DIR.glob("*/lab.toml")):
        try:
            name = tomllib.loads(toml.read_text(encoding="utf-8")).get("name")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue  # loading that lab by its folder reports what is wrong with it
        if not isinstance(name, str):
            continue
        if name in labs:
            raise LabError(f"two labs are named {name!r}: {labs[name]} and {toml}; give each lab its own `name`")
        labs[name] = toml.resolve()
    return labs


def _resolve_release(release: str, lab_folder: Path) -> Path:
    if release.startswith(("./", "../")):
        return (lab_folder / release).resolve()
    path = Path(release)
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


def _graded_entries(value, where: str) -> list[str]:
    """Validate ``graded``: a list of distinct ``"genlab.module:name"`` strings."""
    entries = _string_list(value, "graded", where)
    for ref in entries:
        if not _GRADED_RE.match(ref):
            raise LabError(
                f"{where}: graded entry {ref!r} must look like 'genlab.module:function', "
                "'genlab.module:Class', 'genlab.module:Class.method' or 'genlab.module:*' "
                "(only the genlab library is stubbed; torch's operators belong in `blocked`)"
            )
    twice = sorted({ref for ref in entries if entries.count(ref) > 1})
    if twice:
        raise LabError(f"{where}: graded entr{'y' if len(twice) == 1 else 'ies'} {', '.join(twice)} listed twice")
    return entries


def _string_list(value, key: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LabError(f"{where}: `{key}` must be a list of strings, got {value!r}")
    return value
