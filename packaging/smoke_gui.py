"""Smoke-test mode of the frozen GUI, on only when ``B2P_SMOKE_SHOT`` names a PNG to write.

packaging/smoke.sh cannot reach inside the bundle, so the bundle itself reports the moment its
window is up ("smoke: window shown"), saves a screenshot of the whole window a moment later and
closes the window the way a person would, so the run ends through the app's own shutdown
(pending edits saved, workers stopped) with the GUI's real exit code.
"""

from __future__ import annotations

import os

SHOT_ENV = "B2P_SMOKE_SHOT"
SETTLE_MS = 2500  # let the canvas draw the photo and the docks lay out before the screenshot


def install() -> None:
    """Wrap ``napari.run`` so the GUI takes its screenshot and quits on its own."""
    path = os.environ.get(SHOT_ENV)
    if not path:
        return
    import napari

    real_run = napari.run

    def run(*args, **kwargs):
        from qtpy.QtCore import QTimer

        viewer = napari.current_viewer()
        QTimer.singleShot(0, lambda: print("smoke: window shown", flush=True))
        QTimer.singleShot(SETTLE_MS, lambda: _shoot_and_close(viewer, path))
        return real_run(*args, **kwargs)

    napari.run = run


def _shoot_and_close(viewer, path: str) -> None:
    try:
        viewer.screenshot(path, canvas_only=False)
        print(f"smoke: screenshot {path} title={viewer.title!r}", flush=True)
    finally:
        viewer.close()
