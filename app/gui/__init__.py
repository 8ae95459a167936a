"""The desktop app: a napari viewer with Boxes2Pixels docks (``b2p gui``).

Public: :func:`launch` (start the app) and :class:`Inspector` (attach the docks to a viewer).
"""

from __future__ import annotations

import time
from pathlib import Path


def launch(project: str | Path | None = None) -> int:
    """Open the app, optionally on a project folder (made from a folder of photos if needed)."""
    import napari

    from ._constants import APP_TITLE
    from ._main import Inspector
    from ._resources import icon

    t0 = time.monotonic()
    viewer = napari.Viewer(title=APP_TITLE)
    try:
        viewer.window._qt_window.setWindowIcon(icon("b2p.svg"))
    except FileNotFoundError:
        pass
    inspector = Inspector(viewer)
    if project is not None:
        inspector.open_project(project)
    viewer.status = f"ready in {time.monotonic() - t0:.1f} s"
    napari.run()
    return 0


def __getattr__(name: str):
    if name == "Inspector":
        from ._main import Inspector

        return Inspector
    raise AttributeError(name)


__all__ = ["Inspector", "launch"]
