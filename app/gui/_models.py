"""Where a project's trained students live and which one is current."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from ml.store import Project

WEIGHTS_FILE = "model.safetensors"


def model_dirs(project: Project) -> list[Path]:
    """Trained model folders, oldest first (by the time their weights were written)."""
    root = project.models_dir()
    if not root.is_dir():
        return []
    found = [d for d in root.iterdir() if (d / WEIGHTS_FILE).exists()]
    return sorted(found, key=lambda d: (d / WEIGHTS_FILE).stat().st_mtime)


def current_model(project: Project) -> Path | None:
    """The most recently trained model, or None."""
    dirs = model_dirs(project)
    return dirs[-1] if dirs else None


def resumable_run(project: Project) -> Path | None:
    """The newest model folder with a ``last/`` state that training can resume."""
    root = project.models_dir()
    if not root.is_dir():
        return None
    runs = [d for d in root.iterdir() if (d / "last" / "config.json").exists()]
    return max(runs, key=lambda d: (d / "last" / "config.json").stat().st_mtime, default=None)


def new_model_dir(project: Project, prefix: str = "student") -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = project.models_dir() / f"{prefix}-{stamp}"
    n = 1
    while out.exists():
        n += 1
        out = project.models_dir() / f"{prefix}-{stamp}-{n}"
    return out
