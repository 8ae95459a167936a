"""Dialog to add, rename and recolour classes; the result goes to project.set_classes."""

from __future__ import annotations

from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QColorDialog,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ml.common.classes import BACKGROUND, ClassInfo, make_classes


class _ClassRow(QWidget):
    def __init__(self, info: ClassInfo) -> None:
        super().__init__()
        self.id = info.id
        self.color = info.color
        self.name = QLineEdit(info.name)
        self.swatch = QPushButton()
        self.swatch.setFixedWidth(40)
        self.swatch.clicked.connect(self._pick)
        self._paint()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel(str(info.id)))
        lay.addWidget(self.name, 1)
        lay.addWidget(self.swatch)

    def _paint(self) -> None:
        self.swatch.setStyleSheet(f"background: {self.color};")

    def _pick(self) -> None:
        c = QColorDialog.getColor(QColor(self.color), self, "Class colour")
        if c.isValid():
            self.set_color(c.name())

    def set_color(self, color: str) -> None:
        self.color = color
        self._paint()

    def info(self) -> ClassInfo:
        return ClassInfo(self.id, self.name.text().strip(), self.color)


class ClassManager(QDialog):
    """Edits defect classes; background (id 0) is fixed. ``classes()`` gives the result."""

    def __init__(self, classes: list[ClassInfo], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Classes")
        self._background = next(c for c in classes if c.id == 0)
        self.rows: list[_ClassRow] = []
        self.rows_box = QVBoxLayout()
        for c in sorted(classes, key=lambda c: c.id):
            if c.id:
                self._add_row(c)
        add = QPushButton("Add class")
        add.clicked.connect(lambda: self.add_class())
        self.error = QLabel("")
        self.error.setStyleSheet("color: #ff453a;")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._try_accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(self.rows_box)
        lay.addWidget(add)
        lay.addWidget(self.error)
        lay.addWidget(buttons)

    def _add_row(self, info: ClassInfo) -> _ClassRow:
        row = _ClassRow(info)
        self.rows.append(row)
        self.rows_box.addWidget(row)
        return row

    def add_class(self, name: str = "") -> _ClassRow:
        new_id = len(self.rows) + 1
        color = make_classes([f"c{i}" for i in range(1, new_id + 1)])[new_id].color
        return self._add_row(ClassInfo(new_id, name or f"class{new_id}", color))

    def classes(self) -> list[ClassInfo]:
        return [self._background] + [r.info() for r in self.rows]

    def validate(self) -> str:
        """An error message, or '' when the classes are usable."""
        names = [r.info().name for r in self.rows]
        if any(not n for n in names):
            return "every class needs a name"
        if len(set(names)) != len(names) or BACKGROUND in names:
            return f"class names must be unique and not '{BACKGROUND}'"
        return ""

    def _try_accept(self) -> None:
        msg = self.validate()
        self.error.setText(msg)
        if not msg:
            self.accept()
