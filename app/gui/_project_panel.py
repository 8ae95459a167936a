"""The project's images with thumbnails and status; previous / next navigation."""

from __future__ import annotations

from qtpy.QtCore import QSize, Qt, Signal
from qtpy.QtGui import QBrush, QColor, QIcon, QImage, QPixmap
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui import _constants as C
from app.gui._resources import icon
from app.gui._thumbnails import ThumbnailLoader
from ml.project.store import ImageRecord, Project

KEY_ROLE = Qt.ItemDataRole.UserRole


class ProjectPanel(QWidget):
    """Emits ``key_selected`` when the person picks an image; Open asks for a folder.

    Ctrl/Shift-click selects several photos (``selection_changed``) for bulk metadata edits.
    """

    key_selected = Signal(str)
    selection_changed = Signal(list)  # keys of the selected photos, in list order
    open_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self._items: dict[str, QListWidgetItem] = {}
        self._shown: dict[str, ImageRecord] = {}  # the record each row shows
        self.title = QLabel("No project — open a folder of photos")
        self.title.setWordWrap(True)
        self.list = QListWidget()
        self.list.setIconSize(QSize(C.THUMB_PX, C.THUMB_PX))
        self.list.currentItemChanged.connect(self._on_current)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.itemSelectionChanged.connect(
            lambda: self.selection_changed.emit(self.selected_keys()))
        open_btn = QPushButton(icon("fa5s.folder-open"), "Open…")
        open_btn.clicked.connect(self.open_requested)
        self.prev_btn = QPushButton(icon("fa5s.chevron-left"), "")
        self.prev_btn.setToolTip("Previous image (PageUp)")
        self.prev_btn.clicked.connect(lambda: self.step(-1))
        self.next_btn = QPushButton(icon("fa5s.chevron-right"), "")
        self.next_btn.setToolTip("Next image (PageDown)")
        self.next_btn.clicked.connect(lambda: self.step(1))
        row = QHBoxLayout()
        row.addWidget(open_btn, 1)
        row.addWidget(self.prev_btn)
        row.addWidget(self.next_btn)
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addLayout(row)
        lay.addWidget(self.list, 1)
        self.thumbs = ThumbnailLoader(C.THUMB_PX)
        self.thumbs.ready.connect(self._on_thumb)

    def set_project(self, project: Project | None) -> None:
        self.thumbs.stop()
        self.project = project
        self.list.blockSignals(True)
        self.list.clear()
        self._items.clear()
        self._shown.clear()
        placeholder = QPixmap(C.THUMB_PX, C.THUMB_PX)
        placeholder.fill(QColor("#3a3a3c"))
        records = project.records() if project else {}  # one read of the whole campaign
        for key, rec in records.items():
            item = QListWidgetItem(QIcon(placeholder), key)
            item.setData(KEY_ROLE, key)
            self.list.addItem(item)
            self._items[key] = item
            self.update_status(key, rec)
        self.list.blockSignals(False)
        if project is None:
            self.title.setText("No project — open a folder of photos")
            return
        self.title.setText(f"<b>{project.name}</b> · {len(self._items)} images")
        root = project.image_root
        self.thumbs.start([(k, root / k) for k in records])

    def keys(self) -> list[str]:
        """The photos listed, in list order."""
        return list(self._items)

    def update_status(self, key: str, rec: ImageRecord | None = None) -> None:
        item = self._items.get(key)
        if item is None or self.project is None:
            return
        rec = rec if rec is not None else self.project.record(key)
        self._shown[key] = rec
        item.setText(f"{key}\n{rec.status} · {len(rec.boxes)} boxes")
        item.setForeground(QBrush(QColor(C.STATUS_COLORS.get(rec.status, "#ffffff"))))
        item.setToolTip(f"{key}: {rec.status}")

    def refresh_all(self) -> None:
        """Every photo's status again; only the rows whose record changed are touched."""
        records = self.project.records() if self.project is not None else {}
        for key in self._items:
            rec = records.get(key)
            if rec is None or self._shown.get(key) is not rec:
                self.update_status(key, rec)

    def status_of(self, key: str) -> str:
        return self._items[key].text().split("\n")[1] if key in self._items else ""

    def select(self, key: str) -> None:
        item = self._items.get(key)
        if item is not None and self.list.currentItem() is not item:
            self.list.setCurrentItem(item)

    def current_key(self) -> str | None:
        item = self.list.currentItem()
        return item.data(KEY_ROLE) if item else None

    def selected_keys(self) -> list[str]:
        return [self.list.item(i).data(KEY_ROLE) for i in range(self.list.count())
                if self.list.item(i).isSelected()]

    def step(self, delta: int) -> None:
        n = self.list.count()
        if n:
            row = self.list.currentRow()
            self.list.setCurrentRow(min(max(row + delta, 0), n - 1) if row >= 0 else 0)

    def _on_current(self, item: QListWidgetItem | None, _prev=None) -> None:
        if item is not None:
            self.key_selected.emit(item.data(KEY_ROLE))

    def _on_thumb(self, key: str, img: QImage) -> None:
        item = self._items.get(key)
        if item is not None:
            item.setIcon(QIcon(QPixmap.fromImage(img)))
