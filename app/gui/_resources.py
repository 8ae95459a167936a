"""Find bundled resources whether run from a checkout, installed, or frozen by PyInstaller."""

from __future__ import annotations

import sys
from pathlib import Path


def resource_dirs() -> list[Path]:
    """Folders that may hold our ``resources/``, most specific first."""
    dirs = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:  # PyInstaller unpacks data files here (add it as 'resources' in the spec)
        dirs.append(Path(bundle) / "resources")
    dirs.append(Path(__file__).resolve().parents[2] / "resources")  # checkout / editable
    dirs.append(Path(sys.prefix) / "share" / "boxes2pixels" / "resources")  # wheel data-files
    return dirs


def resource_path(name: str) -> Path:
    """Path of ``resources/<name>``; raises FileNotFoundError naming where it looked."""
    for d in resource_dirs():
        if (d / name).exists():
            return d / name
    looked = ", ".join(str(d) for d in resource_dirs())
    raise FileNotFoundError(f"resource '{name}' not found (looked in {looked})")


def icon(name: str, color: str | None = None):
    """A qtawesome icon (``fa5s.play``) or, for a file name, an icon from resources/."""
    from qtpy.QtGui import QIcon

    if name.endswith((".png", ".svg", ".ico")):
        return QIcon(str(resource_path(name)))
    import qtawesome as qta

    return qta.icon(name, color=color) if color else qta.icon(name)
