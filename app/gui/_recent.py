"""Recently opened projects, kept in QSettings."""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import QSettings

from app.gui import _constants as C


def _settings() -> QSettings:
    return QSettings(C.SETTINGS_ORG, C.SETTINGS_APP)


def recent_projects() -> list[str]:
    """Paths, newest first, that still exist."""
    raw = _settings().value(C.RECENT_KEY, []) or []
    if isinstance(raw, str):  # QSettings gives a bare string for a one-item list
        raw = [raw]
    return [p for p in raw if Path(p).is_dir()]


def last_project() -> str | None:
    """The most recently opened project that is still a project, or None."""
    from ml.project.store import is_project

    return next((p for p in recent_projects() if is_project(p)), None)


def add_recent(path: str | Path) -> list[str]:
    p = str(Path(path).resolve())
    items = [p] + [q for q in recent_projects() if q != p]
    items = items[:C.MAX_RECENT]
    _settings().setValue(C.RECENT_KEY, items)
    return items
