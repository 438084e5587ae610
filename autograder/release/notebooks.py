"""The bundle's copies of the release notebooks, each starting with an install cell.

The install cell installs the student wheel from the location the instructor gave
(``--wheel-url``: a URL, or a path on a shared hub volume) only when ``import genlab``
fails, so on a hub with one shared install, and on a laptop where the student already
installed the wheel, it does nothing. A torch that is already installed (Colab's CUDA
build) is pinned for that ``pip install``, so pip never replaces it. The committed
``labs/*.ipynb`` are not touched: only the bundle's copies get the cell.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

INSTALL_TAG = "install"

INSTALL_CELL = '''\
# Setup: installs genlab (the course library, student build) if this Python does not have it yet,
# e.g. on Colab or a fresh laptop environment. On the course hub it is already installed.
# A torch that is already here (Colab's GPU build) is kept: pip is told not to replace it.
GENLAB_WHEEL = {wheel!r}

import importlib.metadata, importlib.util, subprocess, sys, tempfile

if importlib.util.find_spec("genlab") is None:
    keep = []
    for name in ("torch", "torchvision"):
        try:
            keep.append(f"{{name}}=={{importlib.metadata.version(name)}}")
        except importlib.metadata.PackageNotFoundError:
            pass
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pins:
        pins.write("\\n".join(keep) + "\\n")
    print(f"installing genlab from {{GENLAB_WHEEL}} (keeping {{', '.join(keep) or 'no preinstalled torch'}}) ...")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-c", pins.name, GENLAB_WHEEL], check=True)
    importlib.invalidate_caches()
import genlab
print("genlab", importlib.metadata.version("genlab"), "is ready")
'''


def install_cell(wheel_url: str) -> nbformat.NotebookNode:
    """A code cell (tagged ``install``, no nbgrader metadata) that installs ``wheel_url``."""
    if not wheel_url or "\n" in wheel_url:
        raise ValueError(f"--wheel-url must be one URL or path, got {wheel_url!r}")
    cell = nbformat.v4.new_code_cell(INSTALL_CELL.format(wheel=wheel_url))
    cell.metadata["tags"] = [INSTALL_TAG]
    cell.pop("id", None)
    return cell


def write_release_notebook(release: Path, dest: Path, wheel_url: str) -> Path:
    """Copy the release notebook ``release`` to ``dest`` with the install cell first."""
    nb = nbformat.read(release, as_version=4)
    cell = install_cell(wheel_url)
    if any(c.get("id") for c in nb.cells):   # nbformat >= 4.5 wants an id on every cell
        cell["id"] = "genlab-install"
        nb.nbformat_minor = max(nb.nbformat_minor, 5)
    nb.cells.insert(0, cell)
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest
