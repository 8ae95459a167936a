"""The desktop app: a napari viewer with Boxes2Pixels docks (``b2p gui``).

Public: :func:`launch` (start the app), :class:`Inspector` (attach the docks to a viewer) and
:class:`Startup` (launch's two steps: the first photo at once, then the viewer).
"""

from __future__ import annotations

from pathlib import Path


def launch(project: str | Path | None = None) -> int:
    """Open the app on a project folder (made from a folder of photos if needed), else on the
    last project opened."""
    from ._startup import Startup, folder_to_open

    inspector = Startup(folder_to_open(project)).finish()
    if inspector is None:  # the person closed the window while it loaded
        return 0
    import napari

    napari.run()
    del inspector
    return 0


def __getattr__(name: str):
    if name == "Inspector":
        from ._main import Inspector

        return Inspector
    if name == "Startup":
        from ._startup import Startup

        return Startup
    raise AttributeError(name)


__all__ = ["Inspector", "Startup", "launch"]
