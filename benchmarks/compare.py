"""Compare benchmark JSON from an earlier run with the latest one, figure by figure.

    python benchmarks/compare.py OLD [NEW] [--threshold 5] [--fail-on-regression]

OLD and NEW are each a JSON file or a folder of them (NEW defaults to runs/bench/). Two folders
are compared file by file (same file names); a file against a folder uses the folder's file
of the same name. Both JSON trees are walked and their numeric leaves (booleans count as
0/1) paired by path, e.g. ``median_step_s.32-true`` or ``rows[2].tokens_per_s``; lists of more
than ``--max-list`` numbers (loss trajectories) are left out.

Whether a figure is better higher or lower comes from its name (``direction``): the path's
components are read from the leaf up, and the first that matches a rule decides:

* **lower is better**: ``overhead``, ``loss``, ``nelbo``, ``wall``, ``time`` (a whole word
  between underscores), ``latency``, ``perplexity``/``ppl``, ``bits_per``/``bpp``/``bpd``,
  ``memory``/``mem``/``_bytes``/``_mb``/``_mib``/``_gb``/``_gib``,
  ``error``, ``diff``, or a name ending in ``_s`` / ``_ms`` / ``seconds`` (a duration) --
  except a rate (``per_s``), which is higher-is-better;
* **higher is better**: ``per_s``, ``throughput``, ``speedup``, ``accuracy``, ``exact_match``,
  ``ratio`` or ``vs`` as a word (a figure against a reference, e.g. ``vs_reference``),
  ``modes``, ``coverage``, ``score``, ``bleu``, ``finite``, ``passed``, ``meets`` (a target);
* otherwise **unknown** (step counts, batch sizes): shown, never judged. So is everything
  under a settings component (``config``, ``settings``, ``args``, ``model``, ``trainer``,
  ``data``, ``machine``), e.g. ``config.seconds`` is a budget, not a result.

A figure that got worse by more than ``--threshold`` percent is a regression. The exit code is
1 when one is flagged and ``--fail-on-regression`` is given, 2 on a missing or unreadable
file, else 0.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

DEFAULT_NEW = Path("runs/bench")
HIGHER, LOWER, UNKNOWN = "higher", "lower", "unknown"
#: Path components that hold run settings, not results: everything under them is unknown.
SETTINGS = {"config", "settings", "args", "model", "trainer", "data", "machine"}
# Checked in this order within each path component; the first match wins.
RULES = [
    (LOWER, re.compile(r"overhead")),
    (HIGHER, re.compile(r"per_s|throughput|speedup|accuracy|exact_match|(^|_)(ratio|vs)(_|$)|modes|coverage|score|bleu|"
                        r"finite|passed|meets")),
    (LOWER, re.compile(r"loss|nelbo|wall|(^|_)time(_|$)|latency|perplexity|ppl|bits_per|bpp|bpd|memory|(^|_)mem(_|$)|_bytes|_mi?b|_gi?b|error|diff")),
    (LOWER, re.compile(r"(_s|_ms|seconds)$")),
]


class CompareError(Exception):
    """A file or folder that cannot be compared; the message says which and what to do."""


def direction(path: str) -> str:
    """``higher``, ``lower`` or ``unknown`` for a figure's path, by the rules above (leaf first)."""
    parts = re.split(r"[.\[\]]+", path.lower())
    if SETTINGS & set(parts):
        return UNKNOWN
    for part in reversed(parts):
        for verdict, pattern in RULES:
            if part and pattern.search(part):
                return verdict
    return UNKNOWN


def leaves(tree, max_list: int = 10, prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a JSON tree by dotted path; long numeric lists are left out."""
    if isinstance(tree, bool) or isinstance(tree, (int, float)):
        return {prefix: float(tree)}
    out: dict[str, float] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.update(leaves(value, max_list, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(tree, list) and not (len(tree) > max_list and all(isinstance(v, (int, float)) for v in tree)):
        for i, value in enumerate(tree):
            out.update(leaves(value, max_list, f"{prefix}[{i}]"))
    return out


def load(path: Path) -> dict:
    """A JSON file's content; a missing or malformed file raises ``CompareError``."""
    if not path.is_file():
        raise CompareError(f"{path}: no such file. Run the benchmark first (python benchmarks/run_all.py NAME) "
                           f"or pass the path of an existing JSON report.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CompareError(f"{path}: not valid JSON ({err}); rerun the benchmark that wrote it.") from err


def pair_files(old: Path, new: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(old file, new file) pairs to compare, and notes on files present on one side only."""
    for p in (old, new):
        if not p.exists():
            raise CompareError(f"{p}: no such file or folder. Give a benchmark JSON file or a folder of them "
                               f"(the default NEW is {DEFAULT_NEW}/, written by `make bench`).")
    if old.is_file() and new.is_file():
        return [(old, new)], []
    if old.is_file() or new.is_file():
        file, folder = (old, new) if old.is_file() else (new, old)
        other = folder / file.name
        return ([(old, other)] if old.is_file() else [(other, new)]), []
    old_names, new_names = {p.name for p in old.glob("*.json")}, {p.name for p in new.glob("*.json")}
    if not old_names & new_names:
        raise CompareError(f"{old} and {new} have no JSON file name in common; nothing to compare.")
    notes = [f"only in {old}: {n}" for n in sorted(old_names - new_names)]
    notes += [f"only in {new}: {n}" for n in sorted(new_names - old_names)]
    return [(old / n, new / n) for n in sorted(old_names & new_names)], notes


def compare(old: dict, new: dict, threshold: float, max_list: int = 10) -> list[dict]:
    """One row per figure present in both trees: old, new, change in %, direction and verdict."""
    a, b = leaves(old, max_list), leaves(new, max_list)
    rows = []
    for path in [p for p in a if p in b]:
        x, y, way = a[path], b[path], direction(path)
        change = (y - x) / abs(x) * 100 if x else (0.0 if y == x else math.copysign(math.inf, y - x))
        worse = -change if way == HIGHER else change
        verdict = "" if way == UNKNOWN else "REGRESSION" if worse > threshold else "better" if worse < -threshold else "same"
        rows.append(dict(figure=path, old=x, new=y, change_pct=change, direction=way, verdict=verdict))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old", type=Path, help="earlier JSON report, or a folder of them")
    parser.add_argument("new", type=Path, nargs="?", default=DEFAULT_NEW, help=f"latest (default {DEFAULT_NEW}/)")
    parser.add_argument("--threshold", type=float, default=5.0, help="percent worse that counts (default 5)")
    parser.add_argument("--max-list", type=int, default=10, help="longer numeric lists are left out (default 10)")
    parser.add_argument("--fail-on-regression", action="store_true", help="exit 1 when a regression is flagged")
    args = parser.parse_args(argv)
    try:
        pairs, notes = pair_files(args.old, args.new)
        reports = [(o, n, compare(load(o), load(n), args.threshold, args.max_list)) for o, n in pairs]
    except CompareError as err:
        print(f"compare.py: {err}", file=sys.stderr)
        return 2
    regressions = 0
    for old, new, rows in reports:
        print(f"\n{old} -> {new}")
        width = max([len(r["figure"]) for r in rows] + [6])
        print(f"  {'figure':<{width}}  {'old':>12}  {'new':>12}  {'change':>9}  {'better':<7}  verdict")
        for r in rows:
            print(f"  {r['figure']:<{width}}  {r['old']:>12.5g}  {r['new']:>12.5g}  {r['change_pct']:>+8.1f}%  "
                  f"{r['direction']:<7}  {r['verdict'] or '(no verdict)'}")
        regressions += sum(r["verdict"] == "REGRESSION" for r in rows)
        differ = [r["figure"] for r in rows if r["direction"] == UNKNOWN and r["old"] != r["new"]]
        if differ:
            print(f"  note: {len(differ)} setting(s) or unjudged figure(s) differ ({', '.join(differ[:5])}"
                  f"{', ...' if len(differ) > 5 else ''}): the two runs may not measure the same thing")
    for note in notes:
        print(note)
    print(f"\n{regressions} regression(s) worse than {args.threshold:g} %")
    return 1 if regressions and args.fail_on_regression else 0


if __name__ == "__main__":
    raise SystemExit(main())
