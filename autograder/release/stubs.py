"""Replace graded parts by stubs in one module's source, with ``ast`` (never regexes).

What each kind of ``graded`` entry becomes:

- ``module:function`` -> the function keeps its decorators, signature and docstring; its
  body is ``raise GradedPartError(...)`` (nested helpers inside the body go with it).
- ``module:Class`` -> every method is stubbed the same way, the class body keeps only its
  docstring, bare annotations and methods (class constants may hold the answer), and a
  stub ``__init__`` is added when the class has none, so building one fails at once.
- ``module:Class.method`` -> that method only; the rest of the class keeps working.
- ``module:*`` -> every public (no leading ``_``) top-level function and class.

The public checks' oracles (``@oracle`` functions in ``genlab.checks``, see
``genlab.checks.recorded``) keep decorator, signature and docstring too; their body becomes
``raise OracleRemoved(...)``, and the decorator answers from the lab's recording instead.

Afterwards a private top-level function or class that nothing in the package names any
more (a helper of a stubbed part) is deleted, so the answer does not survive in a helper.
Stubbed nodes are regenerated with ``ast.unparse`` and spliced into the original text, so
everything else keeps its comments and layout.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

IMPORT_LINE = "from genlab._graded import GradedPartError  # the student build's stubs raise it\n"
ORACLE_IMPORT_LINE = "from genlab.checks.recorded import OracleRemoved  # the student build's oracles raise it\n"


@dataclass(frozen=True)
class Part:
    """One ``graded`` entry: ``module`` (``"genlab.nn.attention"``), ``name`` (``"f"``,
    ``"C"``, ``"C.method"`` or ``"*"``) and the lab that grades it (``"03"``, ``"the Transformer"``)."""

    module: str
    name: str
    lab: str
    title: str

    @classmethod
    def parse(cls, entry: str, lab: str, title: str) -> Part:
        module, _, name = entry.partition(":")
        return cls(module, name, lab, title)

    @property
    def entry(self) -> str:
        return f"{self.module}:{self.name}"


class StubError(ValueError):
    """A ``graded`` entry names nothing in its module (a typo, or a renamed part)."""


def _stub_body(node: ast.FunctionDef | ast.AsyncFunctionDef, part_name: str, part: Part) -> list[ast.stmt]:
    body: list[ast.stmt] = []
    doc = ast.get_docstring(node, clean=False)
    if doc is not None:
        body.append(ast.Expr(ast.Constant(doc)))
    call = ast.Call(ast.Name("GradedPartError", ast.Load()),
                    [ast.Constant(part_name), ast.Constant(part.lab), ast.Constant(part.title)], [])
    body.append(ast.Raise(exc=call, cause=None))
    return body


def _stub_function(node, part_name: str, part: Part):
    node.body = _stub_body(node, part_name, part)
    return node


def _stub_class(node: ast.ClassDef, part: Part, only: str | None = None) -> ast.ClassDef:
    """Stub every method of ``node`` (or only the method ``only``)."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    if only is not None:
        methods = [s for s in node.body if isinstance(s, functions) and s.name == only]
        if not methods:
            raise StubError(f"{part.entry}: class {node.name} has no method {only!r}")
        for m in methods:   # a property's getter and setter share a name
            _stub_function(m, f"{node.name}.{only}", part)
        return node
    kept: list[ast.stmt] = []
    doc = ast.get_docstring(node, clean=False)
    if doc is not None:
        kept.append(ast.Expr(ast.Constant(doc)))
    has_init = False
    for stmt in node.body[1 if doc is not None else 0:]:
        if isinstance(stmt, functions):
            has_init |= stmt.name == "__init__"
            kept.append(_stub_function(stmt, node.name, part))
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is None:
            kept.append(stmt)
    if not has_init:
        init = ast.parse("def __init__(self, *args, **kwargs):\n    pass").body[0]
        kept.insert(1 if doc is not None else 0, _stub_function(init, node.name, part))
    node.body = kept
    return node


def _top_level_defs(tree: ast.Module) -> dict[str, ast.stmt]:
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {s.name: s for s in tree.body if isinstance(s, kinds)}


def _span(node: ast.stmt) -> tuple[int, int]:
    """First and last line (1-based, inclusive) of a top-level def, decorators included."""
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return first, node.end_lineno


def stub_source(source: str, parts: list[Part], filename: str = "<module>") -> tuple[str, list[str]]:
    """Return ``(new_source, stubbed_names)`` with ``parts`` (all of one module) stubbed.

    Raises ``StubError`` when an entry names nothing in the module.
    """
    tree = ast.parse(source, filename)
    defs = _top_level_defs(tree)
    changed: dict[str, ast.stmt] = {}
    stubbed: list[str] = []
    for part in parts:
        if part.name == "*":
            names = [n for n in defs if not n.startswith("_")]
            if not names:
                raise StubError(f"{part.entry}: {filename} defines no public function or class")
        else:
            names = [part.name.split(".")[0]]
        for name in names:
            node = changed.get(name, defs.get(name))
            if node is None:
                raise StubError(
                    f"{part.entry}: {filename} has no top-level function or class {name!r}; "
                    "fix the entry in the lab's lab.toml `graded` list")
            if isinstance(node, ast.ClassDef):
                method = part.name.split(".", 1)[1] if "." in part.name else None
                _stub_class(node, part, only=method)
            elif "." in part.name:
                raise StubError(f"{part.entry}: {name} is a function, not a class with methods")
            else:
                _stub_function(node, name, part)
            changed[name] = node
            stubbed.append(name if part.name == "*" else part.name)
    lines = source.splitlines(keepends=True)
    for node in sorted(changed.values(), key=lambda n: -_span(n)[0]):
        first, last = _span(node)
        lines[first - 1:last] = [ast.unparse(node) + "\n"]
    return _add_import("".join(lines)), stubbed


def _is_oracle(node: ast.stmt) -> bool:
    """A top-level function decorated ``@oracle`` (or ``@recorded.oracle``)."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    return any((isinstance(d, ast.Name) and d.id == "oracle") or (isinstance(d, ast.Attribute) and d.attr == "oracle")
               for d in node.decorator_list)


def stub_oracles(source: str, module: str, filename: str = "<module>") -> tuple[str, list[str]]:
    """Return ``(new_source, names)``: every ``@oracle`` function of ``module`` keeps its
    decorator, signature and docstring, and its body raises ``OracleRemoved``."""
    tree = ast.parse(source, filename)
    oracles = [node for node in tree.body if _is_oracle(node)]
    if not oracles:
        return source, []
    lines = source.splitlines(keepends=True)
    for node in sorted(oracles, key=lambda n: -_span(n)[0]):
        doc = ast.get_docstring(node, clean=False)
        message = f"{module}:{node.name} is recorded, not computed, in the student build"
        node.body = ([ast.Expr(ast.Constant(doc))] if doc is not None else []) + [
            ast.Raise(exc=ast.Call(ast.Name("OracleRemoved", ast.Load()), [ast.Constant(message)], []), cause=None)]
        first, last = _span(node)
        lines[first - 1:last] = [ast.unparse(node) + "\n"]
    return _add_import("".join(lines), ORACLE_IMPORT_LINE), [node.name for node in oracles]


def _add_import(source: str, line: str = IMPORT_LINE) -> str:
    """Insert ``line`` (``IMPORT_LINE``) after the docstring and ``from __future__`` imports."""
    tree = ast.parse(source)
    at = None
    for i, stmt in enumerate(tree.body):
        if i == 0 and isinstance(stmt, ast.Expr) and isinstance(getattr(stmt, "value", None), ast.Constant):
            continue
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            continue
        at = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", []))])
        break
    lines = source.splitlines(keepends=True)
    if at is None:
        return source + ("" if source.endswith("\n") else "\n") + line
    lines.insert(at - 1, line)
    return "".join(lines)


def names_used(source: str) -> set[str]:
    """Every identifier ``source`` reads: names, attributes and imported names."""
    used: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.alias):
            used.add(node.name.split(".")[-1])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
            used.add(node.value)   # __all__ entries, getattr(module, "name")
    return used


def drop_dead_private(source: str, used_elsewhere: set[str]) -> tuple[str, list[str]]:
    """Delete private top-level functions and classes that neither this module (outside
    their own body) nor ``used_elsewhere`` names; repeat until nothing more goes."""
    dropped: list[str] = []
    while True:
        tree = ast.parse(source)
        private = {n: s for n, s in _top_level_defs(tree).items() if n.startswith("_") and not n.startswith("__")}
        if not private:
            return source, dropped
        lines = source.splitlines(keepends=True)
        dead = []
        for name, node in private.items():
            first, last = _span(node)
            rest = "".join(lines[:first - 1] + ["\n"] * (last - first + 1) + lines[last:])
            if name not in names_used(rest) and name not in used_elsewhere:
                dead.append((first, last, name))
        if not dead:
            return source, dropped
        for first, last, name in sorted(dead, reverse=True):
            lines[first - 1:last] = []
            dropped.append(name)
        source = "".join(lines)
