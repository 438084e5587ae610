"""Write the student bundle: ``wheel/``, ``labs/NN_name/*.ipynb`` and ``README.md``.

The bundle holds no ``autograder/``, no ``solutions/`` and no reference implementation of a
graded part of the labs it releases (see ``library`` for what the public checks keep).
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from autograder.runner.lab import AUTOGRADER_DIR, Lab

from .library import stub_library
from .notebooks import write_release_notebook
from .recordings import require_recordings
from .wheel import build_wheel, project_metadata, student_requirements


@dataclass(frozen=True)
class Bundle:
    """What ``write_bundle`` wrote."""

    out: Path
    wheel: Path
    notebooks: tuple[Path, ...]
    readme: Path
    stubbed: int


def all_labs() -> list[Lab]:
    """Every lab under ``autograder/`` that has a release notebook, by name."""
    labs = [Lab.load(p) for p in sorted(AUTOGRADER_DIR.glob("*/lab.toml"))]
    return sorted((lab for lab in labs if lab.release.is_file()), key=lambda lab: lab.name)


def select_labs(names: Sequence[str] | None) -> list[Lab]:
    """The labs named (``"03_transformer"`` or just ``"03"``), or every lab with a release."""
    labs = all_labs()
    if not names:
        return labs
    chosen = []
    for name in names:
        found = [lab for lab in labs if name in (lab.name, lab.number)]
        if not found:
            known = ", ".join(lab.name for lab in labs)
            raise ValueError(f"no lab {name!r} with a release; known labs: {known}")
        chosen += [lab for lab in found if lab not in chosen]
    return chosen


def write_bundle(out: Path, wheel_url: str, labs: Sequence[Lab],
                 progress: Callable[[str], None] = print) -> Bundle:
    """Write the student bundle for ``labs`` to ``out`` (replacing an earlier bundle there).

    ``wheel_url`` is where students' notebooks install the wheel from (the instructor
    uploads ``out/wheel/*.whl`` there, or it is a path on a shared hub volume).
    """
    out = Path(out)
    require_recordings(labs)
    if out.exists():
        if not (out / "README.md").is_file() or not (out / "wheel").is_dir():
            raise ValueError(f"{out} exists and is not a student bundle: give an empty or new --out folder")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    names = ", ".join(lab.name for lab in labs)
    with tempfile.TemporaryDirectory(prefix="genlab-release-") as tmp:
        progress(f"[1/4] stubbing the graded parts of {names}")
        report = stub_library(Path(tmp), labs)
        progress(f"      {report.count()} parts stubbed in {len(report.stubbed)} modules")
        progress("[2/4] building the student wheel")
        wheel = build_wheel(report.package, out / "wheel")
        progress(f"      {wheel.relative_to(out)}")
    progress(f"[3/4] copying {len(labs)} release notebook(s) with an install cell for {wheel_url}")
    notebooks = tuple(write_release_notebook(lab.release, out / "labs" / lab.name / lab.release.name, wheel_url)
                      for lab in labs)
    progress("[4/4] writing README.md")
    readme = out / "README.md"
    readme.write_text(student_readme(labs, wheel.name, wheel_url), encoding="utf-8")
    progress(f"done: {out}")
    return Bundle(out, wheel, notebooks, readme, report.count())


def student_readme(labs: Sequence[Lab], wheel_name: str, wheel_url: str) -> str:
    """The bundle's README: install, run a lab, submit."""
    torch_req = next(r for r in student_requirements(project_metadata()) if r.startswith("torch"))
    rows = "\n".join(f"| {lab.number} | {lab.display_title} | `labs/{lab.name}/{lab.release.name}` |" for lab in labs)
    return f"""# genlab labs: student bundle

| lab | title | notebook |
|---|---|---|
{rows}

## Install

- **Colab or the course hub**: nothing to do. Open a lab notebook and run its first cell: it
  installs genlab from `{wheel_url}` only if it is missing, and keeps the torch already there.
- **Your own computer** (Python 3.11 or newer):

      python -m venv genlab-env && source genlab-env/bin/activate   # Windows: genlab-env\\Scripts\\activate
      pip install jupyterlab wheel/{wheel_name}

  genlab needs `{torch_req}`; a torch you installed yourself (a CUDA build, say) is kept.

## Run a lab

    jupyter lab labs/

Work top to bottom. Each graded cell says what to write; the check cell under it prints a ✓
line or tells you what is wrong. Calling a library function that a lab grades raises
`GradedPartError` ("... is graded in lab NN ...: write it yourself in the notebook").
Set `GENLAB_SMALL=1` before starting Jupyter for quick, tiny training runs while you debug.

## Submit

Save the notebook and hand in the `.ipynb` file as your course says (keep its file name and
do not delete or re-order the graded cells). It is graded by hidden tests on other inputs,
so passing the public checks is necessary but not sufficient.
"""
