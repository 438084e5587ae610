"""Gradescope: build the autograder zip, and grade inside Gradescope's container.

``build_zip`` writes a zip whose root holds:

    setup.sh          run once when Gradescope builds the image: a venv with the pinned
                      torch and the bundled project (``pip install ./genlab-src``)
    run_autograder    run per submission: grades /autograder/submission and writes
                      /autograder/results/results.json
    genlab-src/       pyproject.toml, README.md, shared/genlab, autograder/ (runner, probes,
                      this lab's hidden tests only) and the lab's release notebook

``run_autograder`` calls ``python -m autograder.runner.gradescope run LAB`` (``main``
below). The root is ``$GENLAB_GRADESCOPE_ROOT`` (default ``/autograder``) and the Python
is ``$GENLAB_GRADESCOPE_PYTHON`` (default the venv setup.sh made), so the same script runs
locally against a fake root. It always writes a results.json, even when grading fails.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

from .lab import REPO_ROOT

SRC = "genlab-src"
EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".ruff_cache"}


def pinned_requirements(constraints: Path) -> list[str]:
    """The ``name==version`` pins of the project's ``constraints.txt`` (torch, torchvision, ...):
    setup.sh installs them first and explicitly, so the image gets exactly the versions the
    project tests (pyproject.toml itself holds only ranges). No file: no pins."""
    if not constraints.is_file():
        return []
    pins = []
    for line in constraints.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].replace(" ", "")
        if re.match(r"^[A-Za-z0-9_.\-\[\]]+==[^=]+$", line):
            pins.append(line)
    return pins


def setup_sh(pins: list[str]) -> str:
    pins_txt = " ".join(f'"{p}"' for p in pins)
    install_pins = (("# The project's pinned builds (constraints.txt) first, then the bundled project and its\n"
                     "# other dependencies.\n"
                     f"/autograder/venv/bin/python -m pip install {pins_txt}\n") if pins else "")
    return f"""#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image (Ubuntu).
set -euxo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-pip python3-venv
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --upgrade pip
{install_pins}/autograder/venv/bin/python -m pip install ./{SRC}
"""


def run_autograder_sh(lab_rel: str) -> str:
    return f"""#!/usr/bin/env bash
# Gradescope runs this for every submission. It grades the notebook in $ROOT/submission
# and writes $ROOT/results/results.json. Set GENLAB_GRADESCOPE_ROOT (default /autograder)
# and GENLAB_GRADESCOPE_PYTHON to try it outside Gradescope.
set -uo pipefail
ROOT="${{GENLAB_GRADESCOPE_ROOT:-/autograder}}"
SRC="$ROOT/source/{SRC}"
PY="${{GENLAB_GRADESCOPE_PYTHON:-$ROOT/venv/bin/python}}"
export PATH="$(dirname "$PY"):$PATH"
export PYTHONPATH="$SRC/shared:$SRC${{PYTHONPATH:+:$PYTHONPATH}}"
export PYTHONDONTWRITEBYTECODE=1
export MPLBACKEND=Agg
cd "$SRC"
exec "$PY" -m autograder.runner.gradescope run --root "$ROOT" "$SRC/{lab_rel}"
"""


def _walk(folder: Path, skip_labs: bool) -> list[Path]:
    """Files under ``folder``, without caches; with ``skip_labs``, without lab folders."""
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part in _SKIP_DIRS for part in rel.parts) or p.suffix in {".pyc", ".pyo"} or not p.is_file():
            continue
        if skip_labs and len(rel.parts) > 1 and (folder / rel.parts[0] / "lab.toml").is_file():
            continue
        out.append(p)
    return out


def bundle_files(lab_dir: Path, release: Path | None, repo: Path) -> dict[str, Path]:
    """``{path inside genlab-src: file on disk}`` for one lab."""
    lab_dir, repo = lab_dir.resolve(), repo.resolve()
    if not lab_dir.is_relative_to(repo):
        raise ValueError(f"lab folder {lab_dir} is outside the project {repo}; a Gradescope zip can only "
                         "bundle labs that live in the project")
    files: dict[str, Path] = {}
    for name in ("pyproject.toml", "constraints.txt", "README.md", "LICENSE"):
        if (repo / name).is_file():
            files[name] = repo / name
    for top, skip_labs in ((repo / "shared" / "genlab", False), (repo / "autograder", True), (lab_dir, False)):
        for p in _walk(top, skip_labs):
            files[p.relative_to(repo).as_posix()] = p
    if release is not None:
        release = release.resolve()
        if not release.is_relative_to(repo):
            raise ValueError(f"release notebook {release} is outside the project {repo}")
        files[release.relative_to(repo).as_posix()] = release
    if "pyproject.toml" not in files:
        raise ValueError(f"{repo} has no pyproject.toml: build the zip from a genlab checkout")
    return files


def _add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
    zf.writestr(info, data)


def build_zip(lab_dir: Path, release: Path | None, out: Path, repo: Path | None = None) -> Path:
    """Write the Gradescope autograder zip for the lab in ``lab_dir`` to ``out``.

    Deterministic (sorted entries, fixed timestamps): the same tree gives the same bytes.
    """
    repo = (repo or REPO_ROOT).resolve()
    files = bundle_files(Path(lab_dir), Path(release) if release else None, repo)
    lab_rel = Path(lab_dir).resolve().relative_to(repo).as_posix()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        _add(zf, "setup.sh", setup_sh(pinned_requirements(repo / "constraints.txt")).encode(), executable=True)
        _add(zf, "run_autograder", run_autograder_sh(lab_rel).encode(), executable=True)
        for name in sorted(files):
            _add(zf, f"{SRC}/{name}", files[name].read_bytes())
    tmp.replace(out)
    return out


# --------------------------------------------------------------------------- inside Gradescope

def _fallback(results_dir: Path, message: str) -> None:
    from autograder.runner.reports import write_atomic

    payload = {"score": 0.0, "execution_time": 0.0, "output": message, "tests": []}
    write_atomic(results_dir / "results.json", json.dumps(payload, indent=2) + "\n")


def run(root: Path, lab_ref: str) -> int:
    """Grade ``root/submission`` and write ``root/results/results.json``. Always writes it."""
    from autograder.runner.batch import LabInfo, grade_batch
    from autograder.runner.discover import discover
    from autograder.runner.lab import Lab

    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    try:
        lab = LabInfo.from_lab(Lab.load(lab_ref))
        found = discover([root / "submission"], lab.name, lab.notebook)
        sub = found.submissions[0]
        work = root / "genlab-grades"
        outcome = grade_batch(lab, [sub], work, force=True, progress=False)
        shutil.copyfile(work / sub.student / "results.json", results_dir / "results.json")
        result = outcome.results[sub.student]
        print(f"{sub.student}: {result.score:g}/{result.max_score:g}"
              + (f" ({result.pending_points:g} GPU points pending)" if result.pending_points else ""))
        return 0
    except Exception as e:  # the student must still see something on Gradescope
        _fallback(results_dir, f"The autograder could not grade this submission: {type(e).__name__}: {e}")
        print(f"genlab gradescope: {type(e).__name__}: {e}", file=sys.stderr)
        return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder.runner.gradescope")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="grade inside Gradescope's container (called by run_autograder)")
    r.add_argument("lab", help="lab folder")
    r.add_argument("--root", type=Path, default=Path("/autograder"))
    args = p.parse_args(argv)
    return run(args.root, args.lab)


if __name__ == "__main__":
    raise SystemExit(main())
