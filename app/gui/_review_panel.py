"""Corrections legend with per-kind toggles and counts, Accept corrections and its undo.

"Compare with" picks what the student's mask is held against: the teacher's pseudo-mask (the
corrections, which Accept folds in) or the previous model's mask (what the new model changed:
gained, lost and reclassified pixels, per class; :mod:`ml.evaluation.model_diff`).
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from app.gui import _constants as C
from app.gui._resources import icon
from ml.evaluation import model_diff
from ml.evaluation.corrections import NAMES


class ReviewPanel(QWidget):
    """Emits ``shown_changed(set of codes)``, ``compare_changed(mode)``, ``accept``, ``undo``."""

    shown_changed = Signal(object)
    compare_changed = Signal(str)  # "teacher" | "previous"
    accept = Signal()
    undo = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        self.compare = QComboBox()
        self.compare.addItem("teacher", "teacher")
        self.compare.addItem("previous model", "previous")
        self.compare.setToolTip("Hold the student's mask against the teacher's pseudo-mask, or "
                                "against the masks of the model before (what the new one changed)")
        self.compare.currentIndexChanged.connect(self._on_compare)
        grid.addWidget(QLabel("Compare with"), 0, 0, 1, 2)
        grid.addWidget(self.compare, 0, 2)
        self.toggles: dict[int, QCheckBox] = {}
        self.counts: dict[int, QLabel] = {}
        for row, (code, name) in enumerate(NAMES.items(), start=1):
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
        grid.addLayout(row, len(NAMES) + 1, 0, 1, 3)
        self.detail = QLabel("")  # per class, against the previous model
        self.detail.setWordWrap(True)
        grid.addWidget(self.detail, len(NAMES) + 2, 0, 1, 3)
        self.set_corrections(None)
        self.set_can_undo(False)

    def mode(self) -> str:
        return self.compare.currentData()

    def set_mode(self, mode: str) -> None:
        self.compare.setCurrentIndex(self.compare.findData(mode))

    def _on_compare(self, _index: int) -> None:
        names = model_diff.NAMES if self.mode() == "previous" else NAMES
        for code, box in self.toggles.items():
            box.setText(names[code])
        self.accept_btn.setVisible(self.mode() == "teacher")
        self.undo_btn.setVisible(self.mode() == "teacher")
        self.compare_changed.emit(self.mode())

    def set_diff(self, diff: model_diff.ModelDiff | None, class_names: list[str]) -> None:
        """Show what changed against the previous model (None: this photo has no such mask)."""
        self.set_corrections(None if diff is None else diff.changes)
        self.accept_btn.setEnabled(False)  # Accept folds the teacher's corrections only
        self.detail.setText("no mask of an earlier model for this photo" if diff is None
                            else diff.summary(class_names))

    def shown(self) -> set[int]:
        return {code for code, box in self.toggles.items() if box.isChecked()}

    def set_shown(self, code: int, on: bool) -> None:
        self.toggles[code].setChecked(on)

    def set_corrections(self, corrections: np.ndarray | None) -> None:
        """Update the pixel counts and whether there is anything to accept."""
        self.detail.setText("")
        for code, label in self.counts.items():
            label.setText("–" if corrections is None else f"{int((corrections == code).sum())} px")
        self.accept_btn.setEnabled(corrections is not None and bool(corrections.any()))

    def set_can_undo(self, can: bool) -> None:
        self.undo_btn.setEnabled(can)

    def _emit_shown(self, _checked: bool = False) -> None:
        self.shown_changed.emit(self.shown())
