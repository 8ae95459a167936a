"""Small previews of a project's photos, made in a background thread."""

from __future__ import annotations

import threading
from pathlib import Path

from PIL import Image, ImageOps
from qtpy.QtCore import QObject, Signal
from qtpy.QtGui import QImage


def make_thumbnail(path: Path, size: int) -> QImage:
    """A ``size``-bounded RGB QImage of the photo (JPEG draft mode keeps big files fast)."""
    with Image.open(path) as im:
        im.draft("RGB", (size * 2, size * 2))
        im = ImageOps.exif_transpose(im).convert("RGB")
        im.thumbnail((size, size))
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
            except Exception:  # an unreadable photo keeps its placeholder; opening names it
                continue
            self.ready.emit(key, img)

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
