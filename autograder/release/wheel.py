"""Write a pure-Python wheel of a (stubbed) ``genlab`` package folder.

The wheel is written directly (a zip with ``*.dist-info``, as PEP 427 describes), so a
release needs no build backend and no network, and the same input gives the same bytes.
Its dependencies are the repository's own ranges (``pyproject.toml``) minus the
instructor-only ones (nbgrader, the notebook runners and pytest): a student's own torch, Colab's
CUDA build for instance, satisfies ``torch>=2.4`` and is kept.
"""
from __future__ import annotations

import base64
import hashlib
import re
import tomllib
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Requirements only the instructor's tools need (``genlab labs``, the grader, notebook CI).
INSTRUCTOR_ONLY = {"nbgrader", "nbclient", "nbformat", "pytest"}
LOCAL_VERSION = "student"
_EPOCH = (2020, 1, 1, 0, 0, 0)   # fixed timestamps: reproducible wheels


def project_metadata(pyproject: Path = REPO_ROOT / "pyproject.toml") -> dict:
    """``[project]`` of the repository's ``pyproject.toml``."""
    return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]


def _requirement_name(req: str) -> str:
    return re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0].lower().replace("_", "-")


def student_requirements(project: dict) -> list[str]:
    """The student wheel's ``Requires-Dist``: the project's ranges, without instructor tools."""
    return [r for r in project["dependencies"] if _requirement_name(r) not in INSTRUCTOR_ONLY]


def _metadata(project: dict, version: str) -> str:
    lines = ["Metadata-Version: 2.1", "Name: genlab", f"Version: {version}",
             f"Summary: {project.get('description', '')} (student build: graded parts are stubs)",
             f"Requires-Python: {project.get('requires-python', '>=3.11')}"]
    lines += [f"Requires-Dist: {r}" for r in student_requirements(project)]
    return "\n".join(lines) + "\n"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(package: Path, out_dir: Path, project: dict | None = None) -> Path:
    """Write ``genlab-<version>+student-py3-none-any.whl`` from the folder ``package``
    (``.../genlab``) into ``out_dir``; returns its path."""
    package = Path(package)
    if not (package / "__init__.py").is_file():
        raise FileNotFoundError(f"{package} is not a package folder (no __init__.py): stub the library first")
    project = project or project_metadata()
    version = f"{project['version']}+{LOCAL_VERSION}"
    dist_info = f"genlab-{version}.dist-info"
    files: list[tuple[str, bytes]] = []
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".pyo"}:
            files.append((f"genlab/{path.relative_to(package).as_posix()}", path.read_bytes()))
    scripts = project.get("scripts", {})
    entry_points = "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items())
    files += [
        (f"{dist_info}/METADATA", _metadata(project, version).encode()),
        (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: genlab-release\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
        (f"{dist_info}/entry_points.txt", entry_points.encode()),
    ]
    record = "\n".join([*(_record_line(n, d) for n, d in files), f"{dist_info}/RECORD,,"]) + "\n"
    files.append((f"{dist_info}/RECORD", record.encode()))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"genlab-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return wheel
