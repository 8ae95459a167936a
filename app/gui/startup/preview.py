"""The project's first photo in a plain window, painted the moment the app starts.

napari's import and first layers take several seconds; this window needs only Qt and Pillow,
so the person sees their photo (and that the app is loading) within about a second. It stands
where the main window will (its last geometry, else maximised) and stays live while napari is
imported in the background; it is closed when the viewer is ready. Closing it quits the start.
"""

from __future__ import annotations

import time
from pathlib import Path

from PIL import Image
from qtpy.QtCore import QRectF, Qt, Signal
from qtpy.QtGui import QColor, QImage, QPainter
from qtpy.QtWidgets import QApplication, QWidget

from app.gui import _constants as C
from app.gui._thumbnails import make_thumbnail
from app.gui._window_geometry import show_at_saved_geometry

PREVIEW_PX = 1600  # longest side decoded (JPEG draft mode keeps big photos fast)
BACKGROUND = "#262930"  # napari's dark canvas, so the switch to the viewer is calm


class FirstImagePreview(QWidget):
    """Shows ``image`` scaled to fit with a "loading" line; ``painted`` once it was drawn;
    ``closed_by_user`` when the person closes it before the viewer is ready."""

    closed_by_user = Signal()

    def __init__(self, image: QImage, caption: str) -> None:
        super().__init__()
        self.image = image
        self.caption = caption
        self.painted = False
        self.painted_at: float | None = None  # time.monotonic() of the first paint
        self.handed_over = False  # set before the app closes it itself
        self.setWindowTitle(f"{caption} — loading the viewer… — {C.APP_TITLE}")

    @classmethod
    def for_photo(cls, path: Path, caption: str) -> FirstImagePreview | None:
        """A preview of the photo at ``path``; None when it cannot be read (the viewer says why
        later)."""
        try:
            return cls(make_thumbnail(path, PREVIEW_PX), caption)
        except (OSError, ValueError, Image.DecompressionBombError):  # Pillow's unreadable photos
            return None

    def show_now(self, timeout_s: float = 1.0) -> bool:
        """Show and paint the window before returning."""
        show_at_saved_geometry(self)
        self.raise_()
        app = QApplication.instance()
        end = time.monotonic() + timeout_s
        while not self.painted and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.002)
        return self.painted

    def hand_over(self) -> None:
        """Close it because the viewer is ready."""
        self.handed_over = True
        self.close()
        self.deleteLater()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if not self.handed_over:
            self.closed_by_user.emit()
        super().closeEvent(event)

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(BACKGROUND))
        area = QRectF(self.rect()).adjusted(8, 8, -8, -32)
        if not self.image.isNull():  # null: no photo to show, "loading" alone
            iw, ih = self.image.width(), self.image.height()
            scale = min(area.width() / iw, area.height() / ih)
            w, h = iw * scale, ih * scale
            target = QRectF(area.center().x() - w / 2, area.center().y() - h / 2, w, h)
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            p.drawImage(target, self.image)
        p.setPen(QColor("#d1d2d4"))
        p.drawText(QRectF(8, self.height() - 28, self.width() - 16, 24),
                   Qt.AlignmentFlag.AlignCenter, f"{self.caption} — loading the viewer…")
        p.end()
        if not self.painted:
            self.painted, self.painted_at = True, time.monotonic()
