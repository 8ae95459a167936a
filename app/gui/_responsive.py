"""Keeping the GUI thread first: helper threads below it, and work put off until after a paint.

On a busy machine (two cores, a training run beside the app) a key press competes with the
threads it starts: the decision being written, the next photo being read. Those threads run
at a lower CPU priority than the GUI (:func:`lower_priority`, a thread pool's initializer),
and the docks that only follow the photo on screen update after the canvas has drawn it
(:func:`after_paint`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from qtpy.QtCore import QTimer

from app.gui import _constants as C

FALLBACK_MS = 250  # after_paint runs its function by then even if nothing was drawn


def lower_priority() -> None:
    """Give the calling thread a nicer CPU priority than the GUI's (Linux: per thread)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(os.getpriority(os.PRIO_PROCESS, tid)
                                                 + C.HELPER_THREAD_NICE, 19))
    except (AttributeError, OSError):  # not Linux, or not allowed: run as it is
        pass


def after_paint(viewer, fn: Callable[[], None], fallback_ms: int = FALLBACK_MS) -> None:
    """Run ``fn`` on the GUI thread once napari's canvas has drawn its next frame (or after
    ``fallback_ms``, whichever comes first; once either way)."""
    done = [False]
    scene = getattr(getattr(getattr(viewer.window, "_qt_viewer", None), "canvas", None),
                    "_scene_canvas", None)

    def run(_event=None) -> None:
        if done[0]:
            return
        done[0] = True
        if scene is not None:
            scene.events.draw.disconnect(on_draw)
        fn()

    def on_draw(_event) -> None:  # inside the paint: run just after it
        QTimer.singleShot(0, run)

    if scene is not None:
        scene.events.draw.connect(on_draw)
    QTimer.singleShot(fallback_ms, run)
