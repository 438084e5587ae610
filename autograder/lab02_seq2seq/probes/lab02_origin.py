"""Probe: where a notebook global comes from, to refuse genlab's references under a student's name.

The grader's blockers refuse a reference when submission code calls it; they cannot see a
notebook that simply *names* one (``from genlab.search import beam_search``), or a class that
derives from one without code of its own, because then the grader itself makes the call.

``run(namespace, name)`` returns ``{"reference": "genlab.module.Name" or None}``: set when the
global ``name`` is (an alias of, a ``functools.partial`` of, a bound method of) an object
defined in a ``genlab`` module, or a class with such a class among its bases.
"""
import functools
import inspect


def _origin(obj):
    module = getattr(obj, "__module__", None) or ""
    return f"{module}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}" if (
        module == "genlab" or module.startswith("genlab.")) else None


def run(namespace, name):
    obj = namespace.get(name)
    seen = 0
    while seen < 10:
        seen += 1
        if isinstance(obj, functools.partial):
            obj = obj.func
        elif inspect.ismethod(obj):
            obj = obj.__func__
        else:
            break
    if inspect.isclass(obj):
        for cls in inspect.getmro(obj):
            found = _origin(cls)
            if found:
                return {"reference": found}
        return {"reference": None}
    return {"reference": _origin(obj) if callable(obj) else None}
