"""Find bundled resources whether installed, frozen by PyInstaller, or run from a checkout."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


def resources() -> Traversable:
    """The top-level ``resources/`` folder, installed (wheel, editable, bundle) as app.resources."""
    try:
        return importlib.resources.files("app.resources")
    except ModuleNotFoundError:  # a checkout run without installing it (PYTHONPATH=.)
        return Path(__file__).resolve().parents[2] / "resources"


def resource_path(name: str) -> Path:
    """Path of ``resources/<name>``; raises FileNotFoundError naming where it looked."""
    found = resources() / name
    if not found.is_file():
        raise FileNotFoundError(f"resource '{name}' not found in {resources()}")
    return Path(str(found))


def icon(name: str, color: str | None = None):
    """A qtawesome icon (``fa5s.play``) or, for a file name, an icon from resources/."""
    from qtpy.QtGui import QIcon

    if name.endswith((".png", ".svg", ".ico")):
        return QIcon(str(resource_path(name)))
    import qtawesome as qta

    return qta.icon(name, color=color) if color else qta.icon(name)
