"""The findings dock's filter row: whole project or this photo, severity, class, turbine,
blade and "not yet accepted". Emits ``changed`` when a filter that narrows the list changes;
``whole`` is the panel's to connect (it changes what is listed, not how it is filtered)."""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QCheckBox, QComboBox, QGridLayout, QWidget

from ml.findings.review import FindingFilter
from ml.project.store import Project

# Combo item data is never None: PySide6 6.12's currentData() then drops a reference to None
# (a crash at exit after a few thousand calls); 0 and "" stand for "any".
_SEVERITIES = [("Any severity", 0, False)] + [(str(n), n, False) for n in range(1, 6)] + \
    [(f"{n} and above", n, True) for n in range(2, 6)]


class FindingFilters(QWidget):
    """The filter widgets in three rows of two (narrow enough for a laptop's dock column);
    :meth:`value` is the :class:`FindingFilter` they set."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.whole = QCheckBox("Whole project")
        self.whole.setToolTip("List the findings of every photo, not only the one on screen")
        self.severity = QComboBox()
        for text, level, at_least in _SEVERITIES:
            self.severity.addItem(text, (level, at_least))
        self.cls, self.turbine, self.blade = QComboBox(), QComboBox(), QComboBox()
        self.unreviewed = QCheckBox("Not yet accepted")
        for w in (self.severity, self.cls, self.turbine, self.blade):
            w.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.unreviewed.toggled.connect(lambda _on: self.changed.emit())
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        for i, w in enumerate((self.whole, self.severity, self.cls, self.unreviewed,
                               self.turbine, self.blade)):
            grid.addWidget(w, i // 2, i % 2)

    def fill(self, project: Project | None) -> None:
        """Class, turbine and blade choices from the project (the current choice is kept)."""
        meta = [r.meta for r in project.images.values()] if project else []
        names = project.class_names()[1:] if project else []
        for combo, label, values in (
                (self.cls, "All classes", names),
                (self.turbine, "All turbines", sorted({str(m.get("turbine") or "") for m in meta}
                                                     - {""})),
                (self.blade, "All blades", sorted({str(m.get("blade") or "") for m in meta}
                                                 - {""}))):
            current = combo.currentData() if combo.count() else ""
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(label, "")
            for v in values:
                combo.addItem(v, v)
            combo.setCurrentIndex(max(combo.findData(current), 0) if current else 0)
            combo.blockSignals(False)

    def value(self) -> FindingFilter:
        level, at_least = self.severity.currentData()
        return FindingFilter(level or None, at_least, self.cls.currentData() or None,
                             self.turbine.currentData() or None,
                             self.blade.currentData() or None, self.unreviewed.isChecked())
