"""The desktop app: a napari viewer with Boxes2Pixels docks (``b2p gui``).

Public: :func:`launch` (start the app), :class:`Inspector` (attach the docks to a viewer) and
:class:`Startup` (launch's two steps: the first photo at once, then the viewer).
"""

from __future__ import annotations

from pathlib import Path


def launch(project: str | Path | None = None) -> int:
    """Open the app on a project folder (made from a folder of photos if needed), else on the
    last project opened."""
    from app.gui.startup.startup import Startup, folder_to_open

    inspector = Startup(folder_to_open(project)).finish()
    if inspector is None:  # the person closed the window while it loaded
        return 0
    import napari
    from qtpy.QtCore import QTimer

    QTimer.singleShot(1000, freeze_startup_objects)  # once the viewer has painted

    napari.run()
    del inspector
    return 0


def freeze_startup_objects() -> None:
    """Leave the objects made at start-up (about 330,000 with napari) out of Python's later
    full garbage collections: each one otherwise scans them all, a 150-200 ms freeze of the
    GUI thread every so often while jobs run. Startup's objects that become garbage later stay
    (a bounded cost: they are mostly modules, napari's window and our docks)."""
    import gc

    gc.collect()
    gc.freeze()


def __getattr__(name: str):
    if name == "Inspector":
        from app.gui._main import Inspector

        return Inspector
    if name == "Startup":
        from app.gui.startup.startup import Startup

        return Startup
    raise AttributeError(name)


__all__ = ["Inspector", "Startup", "freeze_startup_objects", "launch"]
