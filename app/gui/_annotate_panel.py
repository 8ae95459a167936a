"""Annotation controls: class picker, class manager, box undo/redo, reviewed flag, save state."""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.gui._class_picker import ClassPicker
from app.gui._resources import icon
from ml.common.classes import ClassInfo


class AnnotatePanel(QWidget):
    """Buttons only; the parent wires them to the session and the project."""

    manage_classes = Signal()
    reviewed_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.picker = ClassPicker()
        self.manage_btn = QPushButton(icon("fa5s.tags"), "Classes…")
        self.manage_btn.clicked.connect(self.manage_classes)
        self.undo_btn = QPushButton(icon("fa5s.undo"), "Undo box")
        self.redo_btn = QPushButton(icon("fa5s.redo"), "Redo box")
        self.reviewed = QCheckBox("Reviewed")
        self.reviewed.toggled.connect(self._on_reviewed)
        self.state = QLabel("saved")
        self.state.setToolTip("Every change is written to the project as you make it")
        hint = QLabel("R: draw box · 1-9: class · PgUp/PgDn: image")
        hint.setToolTip("Draw boxes with the rectangle tool (R). Keys 1-9 pick the class; with "
                        "boxes selected they change it. Paint the pseudo-mask with its brush "
                        "(P) / eraser (E); your edits are never overwritten by batch runs.")
        hint.setStyleSheet("color: #8e8e93;")
        row = QHBoxLayout()
        row.addWidget(self.manage_btn)
        row.addWidget(self.undo_btn)
        row.addWidget(self.redo_btn)
        row2 = QHBoxLayout()
        row2.addWidget(self.reviewed)
        row2.addStretch(1)
        row2.addWidget(self.state)
        lay = QVBoxLayout(self)
        lay.addWidget(self.picker)
        lay.addLayout(row)
        lay.addLayout(row2)
        lay.addWidget(hint)
        self._quiet = False

    def set_classes(self, classes: list[ClassInfo]) -> None:
        self.picker.set_classes(classes)

    def show_reviewed(self, value: bool) -> None:
        """Reflect the record without emitting ``reviewed_toggled``."""
        self._quiet = True
        try:
            self.reviewed.setChecked(value)
        finally:
            self._quiet = False

    def _on_reviewed(self, value: bool) -> None:
        if not self._quiet:
            self.reviewed_toggled.emit(value)
