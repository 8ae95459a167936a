"""Full text in a tooltip for what a narrow dock cuts: a label's long word (a photo's file name
does not wrap) or a list item wider than its list.

One event filter, installed on a dock's labels and list viewports (:func:`install`): on a
tooltip request for a widget without a tooltip of its own, it shows the whole text when what is
on screen is not all of it. Texts change all the time (the photo's name, a status line), so the
check runs when the person asks, not when the text is set.
"""

from __future__ import annotations

import re

from qtpy.QtCore import QEvent, QObject, Qt
from qtpy.QtWidgets import QAbstractItemView, QApplication, QLabel, QToolTip, QWidget

PROPERTY = "b2p_full_text_tip"  # set on the widgets that show their cut text this way
_TAG = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    """``text`` without its rich-text tags (a label's ``<b>name</b>``)."""
    return _TAG.sub("", text) if Qt.mightBeRichText(text) else text


def label_cut(label: QLabel) -> str | None:
    """The label's whole text when its width does not hold it (its longest line, or when it
    wraps, its longest word), else None."""
    text = plain(label.text())
    if not text:
        return None
    fm = label.fontMetrics()
    parts = text.split() if label.wordWrap() else text.splitlines()
    widest = max((fm.horizontalAdvance(p) for p in parts), default=0)
    room = label.contentsRect().width() - 2 * label.margin() - 2 * max(label.indent(), 0)
    return text if widest > room else None


def item_cut(view: QAbstractItemView, pos) -> str | None:
    """The whole text of the item at ``pos`` (viewport coordinates) when the view shows part."""
    index = view.indexAt(pos)
    if not index.isValid() or index.data(Qt.ItemDataRole.ToolTipRole):
        return None
    text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
    rect = view.visualRect(index)
    fm = view.fontMetrics()
    icon = view.iconSize().width() + 8 if index.data(Qt.ItemDataRole.DecorationRole) else 0
    widest = max((fm.horizontalAdvance(ln) for ln in text.splitlines()), default=0)
    shown = min(rect.right(), view.viewport().width()) - rect.left() - icon
    return text if text and widest > shown else None


class _FullTextTips(QObject):
    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt name)
        if event.type() != QEvent.Type.ToolTip:
            return False
        text = None
        if isinstance(obj, QLabel) and not obj.toolTip():
            text = label_cut(obj)
        elif isinstance(obj.parent(), QAbstractItemView):
            text = item_cut(obj.parent(), event.pos())
        if text is None:
            return False
        QToolTip.showText(event.globalPos(), text, obj)
        return True


def _filter() -> _FullTextTips:
    app = QApplication.instance()
    tips = getattr(app, "_b2p_full_text_tips", None)
    if tips is None:
        tips = app._b2p_full_text_tips = _FullTextTips(app)
    return tips


def install(panel: QWidget) -> None:
    """Full-text tooltips for ``panel``'s labels and item views."""
    tips = _filter()
    for label in panel.findChildren(QLabel):
        label.installEventFilter(tips)
        label.setProperty(PROPERTY, True)
    for view in panel.findChildren(QAbstractItemView):
        view.viewport().installEventFilter(tips)
        view.setProperty(PROPERTY, True)
