"""Small previews of a project's photos, made in a background thread."""

from __future__ import annotations

import threading
from pathlib import Path

from qtpy.QtCore import QObject, Signal
from qtpy.QtGui import QImage

from ml.common.images import ImageError, thumbnail


def make_thumbnail(path: Path, size: int) -> QImage:
    """A ``size``-bounded RGB QImage of the photo; ml.common.images.ImageError names a bad file."""
    im = thumbnail(path, size)
    data = im.tobytes()
    qimg = QImage(data, im.width, im.height, 3 * im.width, QImage.Format.Format_RGB888)
    return qimg.copy()  # own the pixels: ``data`` dies with this frame


class ThumbnailLoader(QObject):
    """Makes thumbnails for (key, path) pairs one after the other; ``stop()`` abandons them."""

    ready = Signal(str, QImage)

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, items: list[tuple[str, Path]]) -> None:
        self.stop()
        self._stop = threading.Event()
        stop = self._stop
        self._thread = threading.Thread(target=self._run, args=(items, stop), daemon=True,
                                        name="b2p-thumbnails")
        self._thread.start()

    def _run(self, items: list[tuple[str, Path]], stop: threading.Event) -> None:
        for key, path in items:
            if stop.is_set():
                return
            try:
                img = make_thumbnail(path, self.size)
            except ImageError:  # an unreadable photo keeps its placeholder; opening names it
                continue
            self.ready.emit(key, img)

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
