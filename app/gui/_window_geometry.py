"""The main window's size and place between runs, kept in QSettings (maximised the first time).

The preview uses the same geometry, so the viewer replaces it where it stood. Tall docks scroll
(:func:`scrolled`) so that the window fits a laptop screen at all.
"""

from __future__ import annotations

from qtpy.QtCore import QByteArray, QEvent, QObject, QSettings
from qtpy.QtWidgets import QFrame, QScrollArea, QWidget

from app.gui import _constants as C

MIN_SIZE = (320, 240)  # a saved geometry smaller than this is not restored


def _settings() -> QSettings:
    return QSettings(C.SETTINGS_ORG, C.SETTINGS_APP)


def saved_geometry() -> QByteArray | None:
    raw = _settings().value(C.GEOMETRY_KEY)
    return raw if isinstance(raw, QByteArray) and not raw.isEmpty() else None


def save_geometry(window: QWidget) -> None:
    _settings().setValue(C.GEOMETRY_KEY, window.saveGeometry())


def show_at_saved_geometry(window: QWidget) -> None:
    """Show ``window`` where the app's window was last closed, else maximised."""
    geom = saved_geometry()
    if (geom is not None and window.restoreGeometry(geom) and not window.isMaximized()
            and window.width() >= MIN_SIZE[0] and window.height() >= MIN_SIZE[1]):
        window.show()
    else:  # first run, closed maximised, or a saved size too small to use
        window.showMaximized()


class GeometryKeeper(QObject):
    """Saves its parent window's geometry when the window closes (the window owns it; holding
    the window in a Python attribute would keep a closed viewer alive)."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        window.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt name)
        if event.type() == QEvent.Type.Close and obj is self.parent():
            save_geometry(obj)
        return False


def scrolled(panel: QWidget) -> QScrollArea:
    """``panel`` in a scroll area, so its dock may be shorter than the panel: the window's
    minimum height is the sum of a column's docks' minimum heights (1362 px with every panel
    at full height, more than a 1080-pixel screen holds), and a window that does not fit the
    screen cannot be maximised."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(panel)
    return area
