"""The same spot in both inspections, side by side or swiped one over the other.

The panels come from :func:`ml.findings.history_crops.spot_views` (the earlier photo registered
onto the new one, each inspection's region filled and the other's outlined), computed in a
job. A swipe needs both panels in one frame, so it is offered only for a registered pair. A
missing photo says "photo missing" and still shows the region its stored mask holds.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import (
    QComboBox,
    QDialog,
    QGridLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.gui._jobs import Job
from ml.findings.history import Change, Comparison
from ml.findings.history_crops import SpotViews, spot_views

SIDE = 360  # px, each panel's side
MODES = ("Side by side", "Swipe")


def to_pixmap(rgb: np.ndarray) -> QPixmap:
    """An RGB uint8 array as a pixmap (copied: the array may go)."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QPixmap.fromImage(QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())


def swipe(earlier: np.ndarray, current: np.ndarray, at: float) -> np.ndarray:
    """The earlier panel left of ``at`` (share of the width), the current right, a line between."""
    w = current.shape[1]
    x = int(round(min(1.0, max(0.0, at)) * w))
    out = current.copy()
    out[:, :x] = earlier[:, :x]
    out[:, max(0, x - 1):min(w, x + 1)] = 255
    return out


def _views(change: Change, comp: Comparison, progress=None, should_stop=None) -> SpotViews:
    return spot_views(change, comp, SIDE)


class SpotView(QDialog):
    """One change's spot in both inspections; :meth:`show_change` fills it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Same spot, both inspections")
        self.views: SpotViews | None = None
        self._job: Job | None = None
        self._names = ("", "")
        self.title = QLabel()
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.mode.currentIndexChanged.connect(lambda _i: self._render())
        self.earlier, self.current, self.swiped = QLabel(), QLabel(), QLabel()
        self.earlier_caption, self.current_caption = QLabel(), QLabel()
        for lab in (self.earlier, self.current, self.swiped):
            lab.setFixedSize(SIDE, SIDE)
            lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setValue(50)
        self.slider.setToolTip("Drag: the earlier inspection left of the line, this one right")
        self.slider.valueChanged.connect(lambda _v: self._render())
        self.how = QLabel()
        self.how.setWordWrap(True)
        self.pair = QWidget()
        grid = QGridLayout(self.pair)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.earlier, 0, 0)
        grid.addWidget(self.current, 0, 1)
        grid.addWidget(self.earlier_caption, 1, 0)
        grid.addWidget(self.current_caption, 1, 1)
        self.swipe_box = QWidget()
        box = QVBoxLayout(self.swipe_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.swiped)
        box.addWidget(self.slider)
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addWidget(self.mode)
        lay.addWidget(self.pair)
        lay.addWidget(self.swipe_box)
        lay.addWidget(self.how)
        self._render()

    def show_change(self, change: Change, comp: Comparison) -> Job:
        """Show ``change``'s spot (the panels are made in a job; the old one is dropped)."""
        self.stop()
        self.views = None
        self._names = (comp.earlier.name, comp.current.name)
        self.title.setText(f"<b>{change.ident}</b>: {change.status}"
                           f"{'' if change.certain else ' (by position only)'} · "
                           f"{comp.earlier.name} → {comp.current.name}")
        self.how.setText(change.how + (f"; {change.note}" if change.note else ""))
        self.earlier_caption.setText("loading…")
        self.current_caption.setText("")
        self._job = Job("spot view", _views, change, comp)
        self._job.succeeded.connect(self._loaded)
        self._job.failed.connect(self.earlier_caption.setText)
        self._job.start()
        return self._job

    def stop(self) -> None:
        if self._job is not None:
            self._job.abandon()
            self._job = None

    def _loaded(self, views: SpotViews | None) -> None:
        self._job = None
        self.views = views
        self._render()

    def _render(self) -> None:
        v = self.views
        can_swipe = v is not None and v.registered
        self.mode.model().item(1).setEnabled(can_swipe)
        self.mode.setItemData(1, None if can_swipe else "The photos are not registered: a "
                              "swipe needs both in one frame", Qt.ItemDataRole.ToolTipRole)
        if not can_swipe and self.mode.currentIndex() == 1:
            self.mode.setCurrentIndex(0)  # calls back here
            return
        swiping = self.mode.currentIndex() == 1
        self.pair.setVisible(not swiping)
        self.swipe_box.setVisible(swiping)
        if v is None:
            return
        for lab, cap, img, name, note in (
                (self.earlier, self.earlier_caption, v.earlier, self._names[0], v.earlier_note),
                (self.current, self.current_caption, v.current, self._names[1], v.current_note)):
            lab.setPixmap(to_pixmap(img))
            cap.setText(name + (f": {note}" if note else ""))
        if swiping:
            self.swiped.setPixmap(to_pixmap(swipe(v.earlier, v.current,
                                                  self.slider.value() / 100)))

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.stop()
        super().closeEvent(event)
