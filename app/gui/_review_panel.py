"""Corrections legend with per-kind toggles and counts, Accept corrections and its undo."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QCheckBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QWidget

from ml.corrections import NAMES

from . import _constants as C
from ._resources import icon


class ReviewPanel(QWidget):
    """Emits ``shown_changed(set of codes)``, ``accept`` and ``undo``."""

    shown_changed = Signal(object)
    accept = Signal()
    undo = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        self.toggles: dict[int, QCheckBox] = {}
        self.counts: dict[int, QLabel] = {}
        for row, (code, name) in enumerate(NAMES.items()):
            swatch = QLabel()
            swatch.setFixedSize(14, 14)
            swatch.setStyleSheet(f"background: {C.CORRECTION_COLORS[code]};")
            box = QCheckBox(name)
            box.setChecked(True)
            box.toggled.connect(self._emit_shown)
            count = QLabel("–")
            grid.addWidget(swatch, row, 0)
            grid.addWidget(box, row, 1)
            grid.addWidget(count, row, 2)
            self.toggles[code], self.counts[code] = box, count
        self.accept_btn = QPushButton(icon("fa5s.check"), "Accept corrections")
        self.accept_btn.setToolTip("Recovered and reclassified pixels take the student's class, "
                                   "rejected ones become background; saved as your edit")
        self.accept_btn.clicked.connect(self.accept)
        self.undo_btn = QPushButton(icon("fa5s.undo"), "Undo accept")
        self.undo_btn.clicked.connect(self.undo)
        row = QHBoxLayout()
        row.addWidget(self.accept_btn)
        row.addWidget(self.undo_btn)
        grid.addLayout(row, len(NAMES), 0, 1, 3)
        self.set_corrections(None)
        self.set_can_undo(False)

    def shown(self) -> set[int]:
        return {code for code, box in self.toggles.items() if box.isChecked()}

    def set_shown(self, code: int, on: bool) -> None:
        self.toggles[code].setChecked(on)

    def set_corrections(self, corrections: np.ndarray | None) -> None:
        """Update the pixel counts and whether there is anything to accept."""
        for code, label in self.counts.items():
            label.setText("–" if corrections is None else f"{int((corrections == code).sum())} px")
        self.accept_btn.setEnabled(corrections is not None and bool(corrections.any()))

    def set_can_undo(self, can: bool) -> None:
        self.undo_btn.setEnabled(can)

    def _emit_shown(self, _checked: bool = False) -> None:
        self.shown_changed.emit(self.shown())
