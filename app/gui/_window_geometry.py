"""The main window's size and place between runs, kept in QSettings (maximised the first time).

The preview uses the same geometry, so the viewer replaces it where it stood. The first time,
both open maximised on the screen the mouse is on, and never larger than that screen. Docks
fit a laptop screen: tall panels scroll (:func:`scrolled`), combo boxes shrink with their text
in a tooltip (:func:`narrow_combos`), so no dock's minimum size pushes the window off screen.
"""

from __future__ import annotations

from qtpy.QtCore import QByteArray, QEvent, QObject, QRect, QSettings
from qtpy.QtGui import QCursor, QGuiApplication
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QFrame,
    QLabel,
    QScrollArea,
    QWidget,
)

from app.gui import _constants as C

MIN_SIZE = (320, 240)  # a saved geometry smaller than this is not restored
LABEL_MIN_PX = 40  # a wrapping label may be this narrow (its cut text shows in a tooltip)
COMBO_CHARS = 8  # a combo box is at least this many characters wide, its text elided beyond


def _settings() -> QSettings:
    return QSettings(C.SETTINGS_ORG, C.SETTINGS_APP)


def saved_geometry() -> QByteArray | None:
    raw = _settings().value(C.GEOMETRY_KEY)
    return raw if isinstance(raw, QByteArray) and not raw.isEmpty() else None


def save_geometry(window: QWidget) -> None:
    _settings().setValue(C.GEOMETRY_KEY, window.saveGeometry())


def mouse_screen_area() -> QRect:
    """The available geometry (without task bars) of the screen the mouse is on."""
    screen = QGuiApplication.screenAt(QCursor.pos()) or QGuiApplication.primaryScreen()
    return screen.availableGeometry()


def show_at_saved_geometry(window: QWidget) -> None:
    """Show ``window`` where the app's window was last closed, else maximised on the screen the
    mouse is on (its normal size that screen's available area, so it never is larger)."""
    geom = saved_geometry()
    if (geom is not None and window.restoreGeometry(geom) and not window.isMaximized()
            and window.width() >= MIN_SIZE[0] and window.height() >= MIN_SIZE[1]):
        window.show()
    elif geom is not None and window.isMaximized():  # closed maximised: where it was
        window.showMaximized()
    else:  # first run, or a saved size too small to use
        window.setGeometry(mouse_screen_area())
        window.showMaximized()


def keep_on_screen(window: QWidget) -> None:
    """Shrink and move a normal (not maximised) window whose frame runs past its screen's
    available area, e.g. when no window manager maximised it."""
    screen = window.screen()
    if screen is None or window.isMaximized() or window.isFullScreen():
        return
    avail, frame = screen.availableGeometry(), window.frameGeometry()
    if avail.contains(frame):
        return
    extra_w, extra_h = frame.width() - window.width(), frame.height() - window.height()
    w = min(window.width(), avail.width() - extra_w)
    h = min(window.height(), avail.height() - extra_h)
    window.resize(w, h)
    x = min(max(frame.x(), avail.x()), avail.right() + 1 - w - extra_w)
    y = min(max(frame.y(), avail.y()), avail.bottom() + 1 - h - extra_h)
    window.move(x, y)


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
    minimum height is the sum of a column's docks' minimum heights, and a window that does not
    fit the screen cannot be maximised. It scrolls up and down only: its width follows the
    dock's (see :func:`narrow_combos`)."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(panel)
    return area


def fit_width(panel: QWidget) -> None:
    """Let ``panel`` be as narrow as its dock's column: its labels wrap (:func:`wrap_labels`)
    and its combo boxes elide (:func:`narrow_combos`), instead of making the column wider; what
    is still cut (a long file name) shows whole in a tooltip (:mod:`app.gui._text_tips`)."""
    from app.gui import _text_tips

    wrap_labels(panel)
    narrow_combos(panel)
    _text_tips.install(panel)
    if isinstance(panel, QScrollArea) and panel.widget() is not None:
        # as wide as the panel needs beside a scroll bar: it scrolls up and down, never sideways
        bar = panel.verticalScrollBar().sizeHint().width()
        panel.setMinimumWidth(panel.widget().minimumSizeHint().width() + bar)


def wrap_labels(panel: QWidget) -> None:
    """Text labels wrap: a label that does not wrap is at least as wide as its text (a status
    line of 60 characters made the Findings dock 400 px wide)."""
    for label in panel.findChildren(QLabel):
        if label.pixmap() is None or label.pixmap().isNull():
            label.setWordWrap(True)
            if not _form_label(label):  # a form's row is one line tall: its labels keep words
                # nor as wide as its longest word: a photo's file name does not break, and
                # would make the dock scroll sideways; it is cut at the edge, whole on hover
                label.setMinimumWidth(LABEL_MIN_PX)


def _form_label(label: QLabel) -> bool:
    parent = label.parentWidget()
    lay = parent.layout() if parent is not None else None
    if not isinstance(lay, QFormLayout) or lay.indexOf(label) < 0:
        return False
    return lay.getItemPosition(lay.indexOf(label))[1] == QFormLayout.ItemRole.LabelRole


def narrow_combos(panel: QWidget, chars: int = COMBO_CHARS) -> None:
    """Let ``panel``'s combo boxes be narrower than their longest item (the text elides, the
    drop-down shows it whole), so that a long item ("auto → cpu (no CUDA found)") never makes
    a dock wider than its column; a combo without a tooltip of its own shows its current text
    as one."""
    for combo in panel.findChildren(QComboBox):
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(chars)
        if not combo.toolTip():
            combo.setProperty("b2p_text_tip", True)
        if combo.property("b2p_text_tip"):
            _text_tip(combo)
            combo.currentTextChanged.connect(lambda _t, c=combo: _text_tip(c))
            model = combo.model()  # the item text changes too (the device probe renames auto)
            model.dataChanged.connect(lambda *_a, c=combo: _text_tip(c))


def _text_tip(combo: QComboBox) -> None:
    combo.setToolTip(combo.currentText())


def show_rows(table: QAbstractItemView, rows: int) -> None:
    """A table at least ``rows`` rows tall (plus its header, frame and a horizontal scroll bar,
    which columns wider than a laptop's dock bring)."""
    row_h = table.verticalHeader().defaultSectionSize()
    head = table.horizontalHeader()
    head_h = head.sizeHint().height() if not head.isHidden() else 0
    bar_h = table.horizontalScrollBar().sizeHint().height()
    table.setMinimumHeight(rows * row_h + head_h + bar_h + 2 * table.frameWidth() + 2)
