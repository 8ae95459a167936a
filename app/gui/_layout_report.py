"""What a person sees of the main window's layout, measured: used by the GUI tests, the README's
screenshots and anyone checking a screen size by hand.

:func:`layout_report` gives the frame against the screen, the canvas's share of the width,
the Findings table's visible rows, each dock's reachability (visible, or one tab away, with a
viewport taller than zero once in front) and every label whose text is cut with no tooltip
saying it whole (a label under :mod:`app.gui._text_tips` shows it when hovered).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qtpy.QtCore import QRect
from qtpy.QtWidgets import QAbstractItemView, QApplication, QComboBox, QLabel, QWidget

from app.gui import _text_tips


@dataclass
class LayoutReport:
    screen: QRect
    frame: QRect
    canvas_share: float  # the photo canvas's width / the window's width
    findings_rows: float  # rows of the Findings table in view (0 when its dock is not in front)
    unreachable: list[str] = field(default_factory=list)  # docks neither shown nor a tab away
    cut: list[str] = field(default_factory=list)  # "dock: text" of texts cut without a tooltip

    @property
    def fits(self) -> bool:
        return self.screen.contains(self.frame)

    def summary(self) -> str:
        return (f"screen {self.screen.width()}×{self.screen.height()}, frame "
                f"{self.frame.width()}×{self.frame.height()} at ({self.frame.x()}, "
                f"{self.frame.y()}) {'inside' if self.fits else 'OUTSIDE'}; canvas "
                f"{self.canvas_share:.0%} of the width; Findings rows {self.findings_rows:.1f}; "
                f"unreachable {self.unreachable or 'none'}; cut {self.cut or 'none'}")


def _settle() -> None:
    app = QApplication.instance()
    for _ in range(3):
        app.processEvents()


def visible_rows(table: QAbstractItemView) -> float:
    """Rows of ``table`` a person sees: its viewport's height, clipped by any scroll area or
    dock around it, over the row height (0 when the table is not on screen)."""
    if not in_front(table):
        return 0.0
    view = table.viewport()
    rect = view.visibleRegion().boundingRect()
    return rect.height() / max(table.verticalHeader().defaultSectionSize(), 1)


def in_front(widget: QWidget) -> bool:
    """Whether any of ``widget`` is on screen (a dock behind another's tab is "visible" to Qt)."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


def _cut_text(w: QWidget) -> str | None:
    """The text of a label or combo box that is cut with no tooltip saying it whole."""
    if isinstance(w, QLabel):
        text = _text_tips.plain(w.text())
        if not text or w.pixmap() is not None and not w.pixmap().isNull():
            return None
        said = text in w.toolTip()
        short = (w.wordWrap() and w.hasHeightForWidth()
                 and w.heightForWidth(w.width()) > w.height() + 1)  # lines lost at the bottom
        lines = text.splitlines() or [text]
        need = min(w.width(), max(w.fontMetrics().horizontalAdvance(ln) for ln in lines))
        hidden = w.visibleRegion().boundingRect().width() < need - 1  # scrolled off sideways
        wide = _text_tips.label_cut(w) is not None or (
            not w.wordWrap() and w.sizeHint().width() > w.width() + 1)
        hover = w.property(_text_tips.PROPERTY) and _text_tips.label_cut(w) is not None
        if (short or hidden) and not said or wide and not (said or hover):
            return text
        return None
    if isinstance(w, QComboBox):
        text = w.currentText()
        need = w.fontMetrics().horizontalAdvance(text) + 40  # the arrow and the frame
        return text if text and need > w.width() and text not in w.toolTip() else None
    return None


def _cut_in(dock) -> list[str]:
    out = []
    for w in dock.widget().findChildren(QWidget):
        if isinstance(w, (QLabel, QComboBox)) and in_front(w):
            text = _cut_text(w)
            if text is not None:
                out.append(f"{dock.windowTitle()}: {text[:60]!r}")
    return out


def layout_report(inspector, findings_dock_title: str = "Findings") -> LayoutReport:
    """Measure ``inspector``'s window as it stands; each dock is brought to the front in turn
    (then the tabs in front before are brought back)."""
    win = inspector.viewer.window._qt_window
    _settle()
    screen = win.screen().availableGeometry()
    canvas = inspector.viewer.window._qt_viewer
    share = canvas.width() / max(win.width(), 1)
    docks = inspector.docks.docks()
    front = [d for d in docks if in_front(d)]
    unreachable, cut, rows = [], [], 0.0
    for dock in docks:
        if dock in inspector.docks.groups["napari"]:
            continue
        if dock.isHidden() and not inspector.docks._tabbed(dock):
            unreachable.append(dock.windowTitle())
            continue
        dock.raise_()
        _settle()
        inner = dock.widget()
        if not in_front(dock) or inner is None or inner.height() <= 0:
            unreachable.append(dock.windowTitle())
            continue
        cut.extend(_cut_in(dock))
        if dock.windowTitle() == findings_dock_title:
            rows = visible_rows(inspector.findings.table)
    for dock in front:
        dock.raise_()
    _settle()
    return LayoutReport(screen, win.frameGeometry(), share, rows, unreachable, cut)
