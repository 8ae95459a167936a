"""Buttons to pick the class of new (and selected) boxes; keys 1-9 pick the same way."""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QButtonGroup, QGridLayout, QPushButton, QWidget

from ml.common.classes import ClassInfo


class ClassPicker(QWidget):
    """One checkable button per defect class; emits ``class_chosen(id)``."""

    class_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.group.idClicked.connect(self.class_chosen)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.current = 1

    def set_classes(self, classes: list[ClassInfo]) -> None:
        for b in self.group.buttons():
            self.group.removeButton(b)
            b.deleteLater()
        defects = [c for c in sorted(classes, key=lambda c: c.id) if c.id > 0]
        for i, c in enumerate(defects):
            key = f" [{c.id}]" if c.id <= 9 else ""
            b = QPushButton(f"{c.name}{key}")
            b.setCheckable(True)
            b.setStyleSheet(f"QPushButton {{ border-left: 6px solid {c.color}; }}")
            b.setToolTip(f"Class {c.id}: new boxes and the brush use it; "
                         "selected boxes change to it")
            self.group.addButton(b, c.id)
            self.grid.addWidget(b, i // 2, i % 2)
        ids = [c.id for c in defects]
        self.choose(self.current if self.current in ids else (ids[0] if ids else 0), emit=False)

    def choose(self, cls: int, emit: bool = True) -> bool:
        """Check class ``cls``'s button; False if there is no such defect class."""
        b = self.group.button(cls)
        if b is None:
            return False
        b.setChecked(True)
        self.current = cls
        if emit:
            self.class_chosen.emit(cls)
        return True
