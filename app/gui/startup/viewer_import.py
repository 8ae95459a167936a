"""napari's viewer modules, imported in a background thread while the preview is on screen.

Importing napari's Qt window, layers and vispy, and the libraries its first layers load lazily
(pandas for the boxes' features, scipy.ndimage for thumbnails, pint's unit registry), and
discovering its plugins, is most of the start-up; on the GUI thread it would freeze the preview.
None of it builds a Qt object, so it is safe off the GUI thread; the viewer itself is then
built on the GUI thread.
torch and timm are never imported here (the first job that needs them loads them).
"""

from __future__ import annotations

import importlib
import threading
import time

from qtpy.QtCore import QObject, Signal

# in dependency order, so each import finds most of its own imports done
VIEWER_MODULES = (
    "napari.components.viewer_model",
    "napari.layers",
    "napari._vispy",
    "napari._qt.qt_viewer",
    "napari._qt.qt_main_window",
    "napari._qt.layer_controls.qt_layer_controls_container",
    "napari._qt._qapp_model.qactions",
    "napari._qt._qplugins",
    "napari._qt.dialogs.qt_about",
    "napari.window",
    "napari.viewer",
    "napari.components.histogram",
    "pandas",
    "scipy.ndimage",
    "scipy.linalg",
    "skimage.color.colorconv",  # napari's label colours
    "OpenGL.arrays.numpymodule",
    "webbrowser",
    "qtawesome",
    "app.gui._main",  # our docks and the ml modules they import
    "app.gui._menus",
    "ml.weights",
)


def warm_napari() -> None:
    """Import the viewer's modules, find napari's plugins (npe2 reads every installed package's
    entry points) and make the unit registry the first layer needs."""
    for name in VIEWER_MODULES:
        importlib.import_module(name)
    from napari.plugins import _initialize_plugins

    _initialize_plugins()  # once per process (cached); napari.Viewer() calls it otherwise
    import pint

    pint.get_application_registry().pixel  # noqa: B018 (building the registry is the point)


class ViewerImport(QObject):
    """Runs :func:`warm_napari` in a daemon thread; ``done`` (queued to the GUI thread) at the
    end, with the error text if an import failed (the GUI thread then imports and raises)."""

    done = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.seconds: float | None = None
        self.cpu_seconds: float | None = None
        self.error = ""
        self._thread = threading.Thread(target=self._run, name="b2p-import-napari", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def is_done(self) -> bool:
        return self.seconds is not None

    def _run(self) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            warm_napari()
        except Exception as e:  # shown by the GUI thread's own import, with its traceback
            self.error = f"{type(e).__name__}: {e}"
        self.cpu_seconds = time.thread_time() - c0
        self.seconds = time.perf_counter() - t0
        self.done.emit(self.error)
