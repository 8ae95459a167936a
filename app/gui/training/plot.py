"""A small live plot of training loss and validation anomaly mIoU, painted with QPainter.

QPainter keeps start-up fast (no matplotlib import). A long run reports tens of thousands of
loss points; the line is drawn through at most two points per pixel column (each column's lowest
and highest loss), so a repaint stays a few milliseconds however long the run (50,000 points
drawn one by one took over half a second of the GUI thread).
"""

from __future__ import annotations

import math

import numpy as np
from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

LOSS_COLOR = "#ff9f0a"
MIOU_COLOR = "#30d158"


class TrainingPlot(QWidget):
    """Loss per step (left axis, own scale) and val mIoU per epoch (right axis, 0-1)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss: list[tuple[float, float]] = []  # (x in epochs, loss)
        self.miou: list[tuple[float, float]] = []  # (epoch, mIoU)
        self._loss_np = np.zeros((0, 2))  # self.loss as an array, extended as points come
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def clear(self) -> None:
        self.loss.clear()
        self.miou.clear()
        self._loss_np = np.zeros((0, 2))
        self.update()

    def add_loss(self, x: float, value: float, redraw: bool = True) -> None:
        if math.isfinite(value):
            self.loss.append((x, value))
            if redraw:
                self.update()

    def add_miou(self, epoch: float, value: float, redraw: bool = True) -> None:
        if math.isfinite(value):
            self.miou.append((epoch, value))
            if redraw:
                self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("#1c1c1e"))
        r = QRectF(self.rect()).adjusted(34, 8, -34, -18)
        p.setPen(QPen(QColor("#48484a"), 1))
        p.drawRect(r)
        loss = self._loss_array()
        x_max = max([x for x, _ in self.miou] + [float(loss[:, 0].max()) if len(loss) else 0.0,
                                                 1.0])
        top = max(float(loss[:, 1].max()) if len(loss) else 0.0, 1e-6)
        xs, ys = decimate(loss[:, 0], loss[:, 1], x_max, int(r.width()))
        self._line(p, r, list(zip(xs.tolist(), ys.tolist(), strict=True)), x_max, top,
                   LOSS_COLOR)
        self._line(p, r, self.miou, x_max, 1.0, MIOU_COLOR, dots=True)
        p.setPen(QColor(LOSS_COLOR))
        if self.loss:
            p.drawText(QRectF(0, r.top(), 32, 14), Qt.AlignmentFlag.AlignRight, f"{top:.2g}")
        p.drawText(QRectF(r.left(), r.bottom() + 2, 80, 14), 0, "loss")
        p.setPen(QColor(MIOU_COLOR))
        p.drawText(QRectF(r.right() + 2, r.top(), 32, 14), 0, "1.0")
        p.drawText(QRectF(r.right() - 120, r.bottom() + 2, 120, 14),
                   Qt.AlignmentFlag.AlignRight, "val anomaly mIoU")
        p.setPen(QColor("#8e8e93"))
        p.drawText(QRectF(r.left() + 40, r.bottom() + 2, 80, 14), 0, f"epochs: {x_max:.0f}")
        p.end()

    def _loss_array(self) -> np.ndarray:
        """``self.loss`` as an (N, 2) array; only points added since the last paint convert."""
        n = len(self._loss_np)
        if n < len(self.loss):
            self._loss_np = np.concatenate([self._loss_np,
                                            np.asarray(self.loss[n:], float).reshape(-1, 2)])
        return self._loss_np

    @staticmethod
    def _line(p: QPainter, r: QRectF, pts: list[tuple[float, float]], x_max: float,
              y_max: float, color: str, dots: bool = False) -> None:
        if not pts:
            return
        def at(x: float, y: float) -> QPointF:
            return QPointF(r.left() + r.width() * x / x_max,
                           r.bottom() - r.height() * min(max(y / y_max, 0.0), 1.0))
        path = QPainterPath(at(*pts[0]))
        for x, y in pts[1:]:
            path.lineTo(at(x, y))
        p.setPen(QPen(QColor(color), 1.6))
        p.drawPath(path)
        if dots:
            p.setBrush(QColor(color))
            for x, y in pts:
                p.drawEllipse(at(x, y), 2.5, 2.5)


def decimate(xs: np.ndarray, ys: np.ndarray, x_max: float, columns: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """At most two points per column of ``columns`` across [0, x_max]: each run of points in
    one column becomes its lowest and highest y, at the run's first x (the line's envelope)."""
    if len(xs) <= 2 * max(columns, 1):
        return xs, ys
    col = np.floor(xs / max(x_max, 1e-12) * columns).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])  # runs of equal columns
    lo, hi = np.minimum.reduceat(ys, starts), np.maximum.reduceat(ys, starts)
    x = xs[starts]
    return np.repeat(x, 2), np.column_stack([lo, hi]).ravel()
