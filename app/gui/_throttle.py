"""Coalesce fast progress into a few screen updates a second.

Each visible change of a dock makes Qt repaint and re-compose the whole napari window (it holds
an OpenGL canvas); with software OpenGL that costs 15-60 ms of the GUI thread. A job or a
training run can report many steps a second, so panels show the latest state at most every
``interval_ms`` instead of every step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QObject, QTimer


class Throttle(QObject):
    """``throttle(value)`` calls ``fn(value)`` at once, then at most once per interval with
    the latest value; ``flush()`` delivers a held value now, ``cancel()`` drops it."""

    def __init__(self, fn: Callable[[Any], None], interval_ms: int,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fn = fn
        self._value: Any = None
        self._held = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def __call__(self, value: Any) -> None:
        self._value = value
        if self._timer.isActive():
            self._held = True
            return
        self._fn(value)
        self._timer.start()

    def _tick(self) -> None:
        if self._held:
            self._held = False
            self._fn(self._value)
            self._timer.start()

    def flush(self) -> None:
        self._timer.stop()
        self._tick()

    def cancel(self) -> None:
        self._timer.stop()
        self._held = False
