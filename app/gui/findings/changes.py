"""The Findings dock's changes since the last inspection: a column set and a new/grown filter.

``Changes since last inspection`` runs :func:`ml.findings.history.project_history` in a job;
each finding of the latest inspection then shows its status (``?``: matched by position
only), its area change and growth per year, and the filter keeps new, grown or both; the
selected finding's spot is shown in both inspections side by side (the earlier photo registered
onto the new, both outlines; a missing photo says so). "Side by side…" (or a double click on a
change column) opens it large, with a swipe (:mod:`app.gui.findings.spot_view`).
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui._jobs import Job
from ml.findings.history import Change, project_history
from ml.findings.history_crops import side_by_side
from ml.findings.review import FindingRow
from ml.project.store import Project

CHANGE_COLUMNS = ("Change", "Δ mm²", "%/yr")
_CHOICES = [("Any change", ""), ("New", "new"), ("Grown", "grown"), ("New or grown", "new grown")]


def change_text(name: str, ch: Change | None) -> str:
    if ch is None:
        return ""
    if name == "Change":
        return ch.status + ("" if ch.certain else "?")
    if name == "Δ mm²":
        return "" if ch.area_change_mm2 is None else f"{ch.area_change_mm2:+,.0f}"
    return "" if ch.growth_pct_per_year is None else f"{ch.growth_pct_per_year:+.0f} %"


def change_index(project: Project, progress=None, should_stop=None) -> tuple[dict, object]:
    """((key, region id) of each finding of the latest inspection -> its change, comparison)."""
    hist = project_history(project, progress=progress, should_stop=should_stop)
    out = {}
    for ch in hist.latest.changes if hist.latest else []:
        if ch.current is not None:
            out[(ch.current.key, ch.current.row.region_id)] = ch
    return out, hist.latest


class ChangeControls(QWidget):
    """The toggle that loads the changes, and the status filter; ``changed`` on either."""

    changed = Signal()

    def __init__(self, project_fn: Callable[[], Project | None]) -> None:
        super().__init__()
        self._project_fn = project_fn
        self.index: dict[tuple[str, str], Change] = {}
        self.comparison = None  # ml.findings.history.Comparison of the index
        self.change: Change | None = None  # the selected finding's
        self.view = None  # app.gui.findings.spot_view.SpotView, once opened
        self._job: Job | None = None
        self.enabled = QCheckBox("Changes since last inspection")
        self.enabled.setToolTip("Match the findings with the previous inspection's (new, grown, "
                                "stable, shrunk); '?' marks a match by position only")
        self.enabled.toggled.connect(self._toggled)
        self.status = QComboBox()
        for text, value in _CHOICES:
            self.status.addItem(text, value)
        self.status.setEnabled(False)
        self.status.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.note = QLabel("")
        self.preview = QLabel()  # the selected finding's spot in both inspections
        self.preview.setVisible(False)
        self.open_btn = QPushButton("Side by side…")
        self.open_btn.setToolTip("The spot in both inspections, large, side by side or swiped "
                                 "(double click a change column)")
        self.open_btn.clicked.connect(self.open_view)
        self.open_btn.setVisible(False)
        row = QHBoxLayout()  # the check box and its note; the drop-down gets a line of its own,
        row.setContentsMargins(0, 0, 0, 0)  # so the Findings dock stays narrow at 1366 x 768
        row.addWidget(self.enabled)
        row.addWidget(self.note, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.status)
        lay.addWidget(self.preview)
        lay.addWidget(self.open_btn)

    def _toggled(self, on: bool) -> None:
        self.status.setEnabled(on)
        if not on:
            self.index, self.comparison, self.change = {}, None, None
            self.preview.setVisible(False)
            self.open_btn.setVisible(False)
            self.note.setText("")
            self.changed.emit()
            return
        project = self._project_fn()
        if project is None:
            return
        self.note.setText("comparing inspections…")
        self._job = Job("changes", change_index, project)
        self._job.succeeded.connect(self._loaded)
        self._job.failed.connect(self.note.setText)
        self._job.start()

    def _loaded(self, result: tuple | None) -> None:
        if result is None or not self.enabled.isChecked():
            return
        index, self.comparison = result
        self.index = index
        self.note.setText(f"{len(index)} finding(s) compared" if index else
                          "one inspection only: nothing to compare")
        self.changed.emit()

    def stop(self) -> None:
        if self._job is not None:
            self._job.abandon()
            self._job = None
        if self.view is not None:
            self.view.stop()

    def show(self, row: FindingRow | None) -> None:
        """The spot of ``row`` in both inspections, registered, with both outlines."""
        ch = self.index.get((row.key, row.region_id)) if row is not None else None
        self.change = ch if self.comparison is not None else None
        self.preview.setVisible(self.change is not None)
        self.open_btn.setVisible(self.change is not None)
        if ch is None or self.comparison is None:
            return
        from qtpy.QtGui import QPixmap

        pix = QPixmap()
        pix.loadFromData(side_by_side(ch, self.comparison), "JPEG")
        self.preview.setPixmap(pix)
        if self.view is not None and self.view.isVisible():  # the open view follows the list
            self.view.show_change(ch, self.comparison)
        self.preview.setToolTip(ch.how + (f"; {ch.note}" if ch.note else ""))

    def open_view(self):
        """The selected finding's spot in both inspections in its own window; None if none."""
        if self.change is None or self.comparison is None:
            return None
        from app.gui.findings.spot_view import SpotView

        if self.view is None:
            self.view = SpotView(self)
            self.view.setWindowFlag(Qt.WindowType.Window)
        self.view.show_change(self.change, self.comparison)
        self.view.show()
        self.view.raise_()
        return self.view

    def passes(self, row: FindingRow) -> bool:
        want = self.status.currentData() or ""
        if not want or not self.enabled.isChecked():
            return True
        ch = self.index.get((row.key, row.region_id))
        return ch is not None and ch.status in want.split()
