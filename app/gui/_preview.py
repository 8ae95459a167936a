"""The project's first photo in a plain window, painted the moment the app starts.

napari's import and first layers take several seconds; this window needs only Qt and Pillow,
so the person sees their photo (and that the app is loading) within about a second. It is
closed when the viewer is ready.
"""

from __future__ import annotations

import time
from pathlib import Path

from PIL import Image
from qtpy.QtCore import QRectF, Qt
from qtpy.QtGui import QColor, QImage, QPainter
from qtpy.QtWidgets import QApplication, QWidget

from . import _constants as C
from ._thumbnails import make_thumbnail

PREVIEW_PX = 1600  # longest side decoded (JPEG draft mode keeps big photos fast)
BACKGROUND = "#262930"  # napari's dark canvas, so the switch to the viewer is calm


class FirstImagePreview(QWidget):
    """Shows ``image`` scaled to fit with a "loading" line; ``painted`` once it was drawn."""

    def __init__(self, image: QImage, caption: str) -> None:
        super().__init__()
        self.image = image
        self.caption = caption
        self.painted = False
        self.setWindowTitle(f"{caption} — loading the viewer… — {C.APP_TITLE}")
        self.resize(1200, 800)

    @classmethod
    def for_photo(cls, path: Path, caption: str) -> FirstImagePreview | None:
        """A preview of the photo at ``path``; None when it cannot be read (the viewer says why
        later)."""
        try:
            return cls(make_thumbnail(path, PREVIEW_PX), caption)
        except (OSError, ValueError, Image.DecompressionBombError):  # Pillow's unreadable photos
            return None

    def show_now(self, timeout_s: float = 1.0) -> bool:
        """Show and paint the window before returning (the caller then blocks in imports)."""
        self.show()
        self.raise_()
        app = QApplication.instance()
        end = time.monotonic() + timeout_s
        while not self.painted and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.002)
        return self.painted

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(BACKGROUND))
        area = QRectF(self.rect()).adjusted(8, 8, -8, -32)
        iw, ih = max(self.image.width(), 1), max(self.image.height(), 1)
        scale = min(area.width() / iw, area.height() / ih)
        w, h = iw * scale, ih * scale
        target = QRectF(area.center().x() - w / 2, area.center().y() - h / 2, w, h)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(target, self.image)
        p.setPen(QColor("#d1d2d4"))
        p.drawText(QRectF(8, self.height() - 28, self.width() - 16, 24),
                   Qt.AlignmentFlag.AlignCenter, f"{self.caption} — loading the viewer…")
        p.end()
        self.painted = True
