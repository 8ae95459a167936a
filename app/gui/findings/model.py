"""The findings table: one row per :class:`ml.findings.review.FindingRow`, read-only."""

from __future__ import annotations

from qtpy.QtCore import QAbstractTableModel, QModelIndex, Qt
from qtpy.QtGui import QColor, QFont

from app.gui.findings.changes import CHANGE_COLUMNS, change_text
from ml.findings.review import FindingRow
from ml.findings.severity import SEVERITY_COLORS


def _mm(v: float | None, digits: int = 0) -> str:
    return "" if v is None else f"{v:,.{digits}f}"


# (header, text of a row, tooltip of a row or None)
COLUMNS = [
    ("Photo", lambda r: r.key, None),
    ("Class", lambda r: r.finding.class_name, lambda r: r.region_id),
    ("Sev.", lambda r: str(r.finding.severity), lambda r: r.finding.category.name),
    *((name, None, None) for name in CHANGE_COLUMNS),  # the model's ``changes`` fill these
    ("Suggested", lambda r: str(r.finding.suggested), lambda r: r.finding.rule),
    ("Reviewer", lambda r: "" if r.finding.reviewer is None else str(r.finding.reviewer), None),
    ("Accepted", lambda r: "✓" if r.finding.accepted else "", None),
    ("Area px", lambda r: f"{r.finding.region.area:,}", None),
    ("Area mm²", lambda r: _mm(r.finding.area_mm2), None),
    ("Length mm", lambda r: _mm(r.finding.length_mm, 1), None),
    ("Conf.", lambda r: ("" if r.finding.region.confidence is None
                         else f"{r.finding.region.confidence:.2f}"), None),
    ("Action", lambda r: r.finding.category.action, lambda r: r.finding.category.time_frame),
    ("Region", lambda r: r.region_id, None),
    ("Turbine", lambda r: r.turbine, None),
    ("Blade", lambda r: r.blade, None),
    ("Side", lambda r: r.side, None),
    ("Note", lambda r: r.finding.note, lambda r: r.finding.note or None),  # last: it stretches
]
PHOTO_COLUMNS = {"Photo", "Turbine", "Blade", "Side"}  # hidden when one photo is listed
NUMERIC = {"Sev.", "Suggested", "Reviewer", "Area px", "Area mm²", "Length mm", "Conf.",
           "Δ mm²", "%/yr"}


class FindingsModel(QAbstractTableModel):
    """The rows on show; :meth:`set_rows` replaces them all."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[FindingRow] = []
        self.changes: dict = {}  # (key, region id) -> ml.findings.history.Change
        self._bold = QFont()
        self._bold.setBold(True)

    def set_rows(self, rows: list[FindingRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def index_of(self, key: str, region_id: str) -> int | None:
        for i, r in enumerate(self.rows):
            if r.key == key and r.region_id == region_id:
                return i
        return None

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        name, text, tip = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            if text is None:
                return change_text(name, self.changes.get((row.key, row.region_id)))
            return text(row)
        if role == Qt.ItemDataRole.ToolTipRole and tip is not None:
            return tip(row)
        if role == Qt.ItemDataRole.TextAlignmentRole and name in NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.DecorationRole and name == "Sev.":
            # a swatch, not a background: napari's style sheet paints item backgrounds
            return QColor(SEVERITY_COLORS[row.finding.severity])
        if role == Qt.ItemDataRole.FontRole and name == "Sev." and row.finding.overridden:
            return self._bold  # a person chose this level
        return None
