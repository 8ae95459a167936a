"""Start-up in two steps: the project's first photo on screen at once, then the napari viewer.

``Startup(folder)`` makes the QApplication and paints the first photo of the project in a plain
window (Qt, Pillow and ml.store only: no napari widgets, no torch); ``finish()`` builds the
napari viewer and our docks, opens the project and closes the preview. Importing napari and
making its window and first layers is most of the start-up time on a laptop.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ml.store import Project

from . import _constants as C


def make_qapp():
    """The QApplication, made the way napari makes it (napari finds and uses it later)."""
    import napari  # light (its modules load lazily); applies napari's platform fixes first
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1] or ["b2p"])
        app.setApplicationName("napari")  # what napari.Viewer would have set
        app.setApplicationVersion(napari.__version__)
        app.setOrganizationName("napari")
        app.setOrganizationDomain("napari.org")
    return app


class Startup:
    """``first_image_s``: seconds until the preview was painted (None: nothing to preview);
    ``ready_s``: seconds until ``finish()`` had the viewer ready."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self._t0 = time.monotonic()
        self.folder = folder
        self.app = make_qapp()
        self.preview = None
        self.first_image_s: float | None = None
        self.ready_s: float | None = None
        if folder is not None:
            self._show_preview(folder)

    def _show_preview(self, folder: str | Path) -> None:
        from ._preview import FirstImagePreview

        try:
            project = Project.open_or_create(folder)
        except Exception:  # the viewer reports it when it opens the folder
            return
        keys = project.keys()
        if not keys:
            return
        self.preview = FirstImagePreview.for_photo(project.image_path(keys[0]),
                                                   f"{project.name} — {keys[0]}")
        if self.preview is not None and self.preview.show_now():
            self.first_image_s = time.monotonic() - self._t0

    def finish(self):
        """Build the viewer and docks, open the folder, close the preview; the Inspector."""
        import napari

        from ._main import Inspector
        from ._resources import icon

        viewer = napari.Viewer(title=C.APP_TITLE)
        _rich_tooltips(self.app)
        try:
            viewer.window._qt_window.setWindowIcon(icon("b2p.svg"))
        except FileNotFoundError:
            pass
        inspector = Inspector(viewer)
        if self.folder is not None:
            inspector.open_project(self.folder)
        if self.preview is not None:
            self.preview.close()
            self.preview.deleteLater()
            self.preview = None
        self.ready_s = time.monotonic() - self._t0
        viewer.status = f"ready in {self.ready_s:.1f} s"
        return inspector


def _rich_tooltips(app) -> None:
    """napari wraps tooltips with an event filter on the app it creates; ours needs it too."""
    if getattr(app, "_b2p_tooltips", None) is not None:
        return
    try:
        from napari._qt.qt_event_loop import QtToolTipEventFilter
    except ImportError:  # private in napari: plain tooltips if it moves
        return
    app._b2p_tooltips = QtToolTipEventFilter()
    app.installEventFilter(app._b2p_tooltips)
