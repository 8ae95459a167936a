"""Start-up: the project's first photo on screen at once, napari imported meanwhile, the viewer.

``Startup(folder)`` makes the QApplication, paints the project's first photo in a plain window
(Qt, Pillow and ml.project.store only) and starts importing napari's viewer modules in a background
thread (``_viewer_import``). ``finish()`` keeps the preview live until that import is done, then
builds the napari viewer, our docks and the first photo on the GUI thread with the window
hidden, shows it once at its last geometry (maximised the first time), places the docks for
the screen's size and closes the preview. The project is opened once and handed over.
Without a folder the last project opened is reopened (:func:`folder_to_open`). Nothing here
imports torch or timm.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path

from qtpy.QtCore import QEventLoop

from app.gui import _constants as C
from app.gui._window_geometry import GeometryKeeper, keep_on_screen, show_at_saved_geometry
from app.gui.startup.viewer_import import ViewerImport
from ml.project.store import Project


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


def folder_to_open(folder: str | Path | None) -> str | Path | None:
    """The folder asked for, else the last project opened if it is still there."""
    if folder is not None:
        return folder
    from app.gui._recent import last_project

    return last_project()


class Startup:
    """``first_image_s``: seconds until the preview was painted (None: no photo to show);
    ``ready_s``: seconds until ``finish()`` had the viewer on screen."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self._t0 = time.monotonic()
        self.folder = folder
        self.app = make_qapp()
        self.preview = None
        self.project: Project | None = None  # opened once here, handed to the Inspector
        self.cancelled = False
        self.first_image_s: float | None = None
        self.ready_s: float | None = None
        self.importer = ViewerImport()
        self._show_preview(folder)
        self.importer.start()  # after the first paint: the import would slow it down

    def _show_preview(self, folder: str | Path | None) -> None:
        from qtpy.QtGui import QImage

        from app.gui.startup.preview import FirstImagePreview

        preview, caption = None, C.APP_TITLE
        try:
            project = Project.open_or_create(folder) if folder is not None else None
        except Exception:  # the viewer tries again and reports it when it opens the folder
            project = None
        self.project = project
        if project is not None and project.keys():
            key = project.keys()[0]
            caption = f"{project.name} — {key}"
            preview = FirstImagePreview.for_photo(project.image_path(key), caption)
        self._photo_shown = preview is not None
        self.preview = preview or FirstImagePreview(QImage(), caption)  # "loading" alone
        self.preview.closed_by_user.connect(self._cancel)
        self.preview.show_now()
        self._note_first_paint()

    def _note_first_paint(self) -> None:
        """``first_image_s`` once the preview's photo was painted (a busy machine may paint it
        only after ``show_now`` gave up waiting)."""
        p = self.preview
        if self.first_image_s is None and self._photo_shown and p is not None and p.painted_at:
            self.first_image_s = p.painted_at - self._t0

    def _cancel(self) -> None:
        self.cancelled = True

    def wait_for_import(self) -> bool:
        """Keep the preview live until napari is imported; False if the person closed it."""
        imp = self.importer
        if not imp.is_done() and not self.cancelled:
            loop = QEventLoop()
            imp.done.connect(loop.quit)
            if self.preview is not None:
                self.preview.closed_by_user.connect(loop.quit)
            if not imp.is_done():
                loop.exec()
        return not self.cancelled

    def finish(self):
        """The Inspector on screen with the folder open, or None if the preview was closed."""
        if not self.wait_for_import():
            return None
        import napari

        from app.gui._main import Inspector
        from app.gui._resources import icon

        with _napari_settings_unsaved():
            viewer = napari.Viewer(title=C.APP_TITLE, show=False)  # shown once, when complete
            _rich_tooltips(self.app)
            win = viewer.window._qt_window
            try:
                win.setWindowIcon(icon("b2p.svg"))
            except FileNotFoundError:
                pass
            inspector = Inspector(viewer)
        if self.project is not None or self.folder is not None:
            inspector.open_project(self.project if self.project is not None else self.folder)
        GeometryKeeper(win)  # owned by the window
        show_at_saved_geometry(win)
        self.app.processEvents()  # the window manager maximises it: its width is known
        keep_on_screen(win)
        inspector.docks.place()  # this screen size's last layout, else the plan for its width
        inspector.docks.follow_screen()
        win.raise_()
        win.activateWindow()
        viewer.window._qt_viewer.setFocus()
        if self.preview is not None:
            self.app.processEvents()  # the viewer paints before the preview goes
            self._note_first_paint()
            self.preview.hand_over()
            self.preview = None
        self.ready_s = time.monotonic() - self._t0
        viewer.status = f"ready in {self.ready_s:.1f} s"
        return inspector


@contextmanager
def _napari_settings_unsaved():
    """napari rewrites its settings file for each dock added (tens of ms each): not while the
    window is built (what changed is only where napari would put our docks next time)."""
    try:
        from napari.settings import get_settings

        settings = get_settings()
        was = settings._save_on_change
        settings._save_on_change = False
    except (ImportError, AttributeError):  # private in napari: the saves just happen
        yield
        return
    try:
        yield
    finally:
        settings._save_on_change = was


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
