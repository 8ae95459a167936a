"""The findings review: the defect regions of the photo (or project) with severity and notes.

Keys while the table has focus: N / P or Down / Up move between findings (the viewer zooms to
each, opening its photo), 1-5 set the reviewer's severity, 0 drops it, Enter accepts the
finding and moves on, Ctrl+Z undoes the last decision. The table claims these keys before
the window's shortcuts (1-9 pick a box class elsewhere). Every decision is saved at once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from html import escape

from qtpy.QtCore import QEvent, QObject, Qt, Signal
from qtpy.QtGui import QKeyEvent, QKeySequence
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.gui._jobs import Job
from app.gui._resources import icon
from app.gui.findings.changes import CHANGE_COLUMNS, ChangeControls
from app.gui.findings.filters import FindingFilters
from app.gui.findings.model import COLUMNS, PHOTO_COLUMNS, FindingsModel
from app.gui.findings.note import NoteField
from ml.common.images import ImageError
from ml.findings.review import (
    FindingFilter,
    FindingList,
    FindingRow,
    RegionReview,
    list_findings,
    photo_findings,
    restore_review,
    set_review,
    with_reviews,
)
from ml.project.store import ChangedElsewhere, Project, ProjectError

_LEVEL_KEYS = {getattr(Qt.Key, f"Key_{n}"): n for n in range(1, 6)}


class FindingsPanel(QWidget):
    """Emits ``region_chosen(key, bbox)`` when the person moves to a finding."""

    region_chosen = Signal(str, object)

    def __init__(self, project_fn: Callable[[], Project | None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._project_fn = project_fn
        self.project: Project | None = None
        self.key: str | None = None  # the photo on screen
        self.source = "student"  # the masks a report reads by default
        self._all: list[FindingRow] = []
        self._undo: list[tuple[str, str, RegionReview, tuple]] = []  # key, id, before, bbox
        self._shown: tuple[str, str] | None = None  # the finding the viewer was last sent to
        self._note_target: tuple[str, str] | None = None
        self._job: Job | None = None
        self._seen: dict[str, tuple] = {}  # key -> the mask records its rows were read from
        self._problem = ""  # why the last listing is incomplete, shown in the status line
        self._told = ""  # whose decision the last one replaced (ChangedElsewhere), shown too
        self._want: tuple[str, str] | None = None  # to select when the running listing is in
        self._build()

    def _build(self) -> None:
        self.filters = FindingFilters()
        self.filters.whole.toggled.connect(lambda _on: self.refresh())
        self.filters.changed.connect(lambda: self._apply(self._current_id()))
        f = self.filters  # the widgets stay reachable as the panel's own, as tests use them
        self.whole, self.severity, self.cls = f.whole, f.severity, f.cls
        self.turbine, self.blade, self.unreviewed = f.turbine, f.blade, f.unreviewed
        self.changes = ChangeControls(self._project_fn)
        self.changes.changed.connect(self._changes_changed)
        self.model = FindingsModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setWordWrap(False)
        self.table.setMinimumHeight(5 * (self.fontMetrics().height() + 8))
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.selectionModel().currentRowChanged.connect(self._on_current)
        self.table.doubleClicked.connect(self._double_clicked)
        self.table.installEventFilter(self)
        self.details, self.rule = QLabel(), QLabel()
        self.rule.setWordWrap(True)
        self.rule.setTextFormat(Qt.TextFormat.PlainText)
        self.note = NoteField()
        self.note.returnPressed.connect(self._note_entered)
        self.note.editingFinished.connect(self.commit_note)
        self.undo_btn = QPushButton(icon("fa5s.undo"), "Undo")
        self.undo_btn.setToolTip("Undo the last severity, note or accept (Ctrl+Z)")
        self.undo_btn.clicked.connect(self.undo)
        self.status = QLabel()
        note_row = QHBoxLayout()
        note_row.addWidget(self.note, 1)
        note_row.addWidget(self.undo_btn)
        lay = QVBoxLayout(self)
        lay.addWidget(self.filters)
        lay.addWidget(self.changes)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.details)
        lay.addWidget(self.rule)
        lay.addLayout(note_row)
        lay.addWidget(self.status)
        self._show_columns()
        self._update_controls()

    # ------------------------------------------------------------------ what is listed
    def show_photo(self, key: str) -> None:
        """The photo on screen changed; list its findings unless the whole project is listed."""
        self._sync_project()
        self.key = key
        if not self.whole.isChecked():
            self.refresh()

    def photo_changed(self, key: str) -> None:
        """A photo's record was saved: list it again if its masks differ (not for box edits)."""
        if self.project is None or not (self.whole.isChecked() or key == self.key):
            return
        seen = self._seen.get(key)
        if seen is not None and all(a is b for a, b in zip(seen, self._masks_of(key), strict=True)):
            return
        if self.whole.isChecked():  # one photo of many: read it again here
            self._reload_key(key)
            self._apply(self._current_id())
        else:
            self.refresh()

    def _masks_of(self, key: str) -> tuple:
        """What the findings of ``key`` are read from: every mask save makes new records."""
        rec = self.project.record(key)
        return rec.teacher, rec.student, rec.reviewed

    def refresh(self) -> None:
        """List again from the project, in the background (reading masks takes a while)."""
        self._sync_project()
        self._show_columns()
        self._problem = ""
        if self._job is not None:
            self._job.cancel()
            self._job = None
        key = None if self.whole.isChecked() else self.key
        if self.project is None or (key is None and not self.whole.isChecked()):
            self._set_rows([])
            return
        for k in [key] if key else self.project.keys():
            self._seen[k] = self._masks_of(k)  # before reading: a save meanwhile reads again
        self.status.setText("Listing findings…")
        self._job = Job("findings", list_findings, self.project, key=key, source=self.source,
                        positions=False)  # the dock shows no radius: no photo read for it
        self._job.succeeded.connect(self._on_listed)
        self._job.failed.connect(self.status.setText)
        self._job.start()

    def _sync_project(self) -> None:
        project = self._project_fn()
        if project is not self.project:
            self.project, self.key = project, None
            self._undo.clear()
            self._seen.clear()
            self._shown = self._note_target = None
            self._told = ""
            self.changes.enabled.setChecked(False)  # another project: compare again on demand
            self._fill_filters()

    def _photo_rows(self, key: str) -> list[FindingRow]:
        self._problem = ""
        try:
            self._seen[key] = self._masks_of(key)
            return photo_findings(self.project, key, self.source) or []
        except (ImageError, ProjectError) as e:
            self._problem = f"{key}: {e}"
            return []

    def _on_listed(self, result: object) -> None:
        if result is None or self._job is None or result is not self._job.result:
            return  # stopped, or a listing started before the latest one
        self._job = None
        if isinstance(result, FindingList):
            self._set_rows(result.rows)
            problems = [f"{k}: {why}" for k, why in result.failed.items()]
            if problems:
                self._problem = "could not read " + "; ".join(problems[:3])
                self._apply(self._current_id())

    def _set_rows(self, rows: list[FindingRow]) -> None:
        self._all = list(rows)
        self._fill_filters()
        self._apply(self._want or self._current_id())
        self._want = None
        self.table.resizeColumnsToContents()  # measures the rows in view only

    def _reload_key(self, key: str) -> None:
        """Read one photo's findings again and put them in its place in the list."""
        fresh = self._photo_rows(key)
        if not self.whole.isChecked():
            self._all = fresh
            return
        order = {k: i for i, k in enumerate(self.project.keys())}
        rows = [r for r in self._all if r.key != key] + fresh
        self._all = sorted(rows, key=lambda r: order.get(r.key, len(order)))  # stable

    def _fill_filters(self) -> None:
        self.filters.fill(self.project)

    def filter(self) -> FindingFilter:
        return self.filters.value()

    def _apply(self, select: tuple[str, str] | None = None, fallback: int | None = None) -> None:
        """Show the rows that pass the filters; select ``select``, else row ``fallback``."""
        where = self.filter()
        self.model.set_rows([r for r in self._all if where.matches(r) and self.changes.passes(r)])
        n = len(self.model.rows)
        row = self.model.index_of(*select) if select else None
        if row is None and fallback is not None and n:
            row = min(fallback, n - 1)
        if row is not None:
            self.table.setCurrentIndex(self.model.index(row, 1))
        else:
            self._on_current(None)
        accepted = sum(r.finding.accepted for r in self._all)
        self.status.setText(f"{n} of {len(self._all)} findings shown · {accepted} accepted · "
                            + (self._problem or self._told or "N/P move, 1-5 severity, 0 "
                                                             "clears, Enter accepts, Ctrl+Z undo"))

    def _show_columns(self) -> None:
        for i, (name, _, _) in enumerate(COLUMNS):
            self.table.setColumnHidden(i, (name in PHOTO_COLUMNS and not self.whole.isChecked())
                                       or (name in CHANGE_COLUMNS and not self.model.changes))

    def _changes_changed(self) -> None:
        self.model.changes = self.changes.index
        self._show_columns()
        self._apply(self._current_id())

    # ------------------------------------------------------------------ the current finding
    def current(self) -> FindingRow | None:
        i = self.table.currentIndex()
        return self.model.rows[i.row()] if i.isValid() and i.row() < len(self.model.rows) \
            else None

    def _current_id(self) -> tuple[str, str] | None:
        row = self.current()
        return (row.key, row.region_id) if row else None

    def _on_current(self, index, _previous=None) -> None:
        row = self.current() if index is not None else None
        target = (row.key, row.region_id) if row else None
        same = target is not None and target == self._note_target  # the list was read again
        if not same:
            self.commit_note()  # a note typed for the finding being left belongs to it
        self._note_target = target
        self.note.show_note(row.finding.note if row else "", same)
        f = row.finding if row else None
        self.details.setText("" if f is None else
                             f"<b>{escape(f.category.name)}</b>: {escape(f.category.action)} "
                             f"({escape(f.category.time_frame)})")
        self.rule.setText("" if f is None else f"Suggested {f.suggested} by the rule {f.rule}")
        self.changes.show(row)
        self._update_controls()
        if row is not None and self._note_target != self._shown:
            self._shown = self._note_target
            self.region_chosen.emit(row.key, row.finding.region.bbox)

    def _double_clicked(self, index) -> None:
        """A double click on a change column opens the spot in both inspections."""
        if COLUMNS[index.column()][0] in CHANGE_COLUMNS:
            self.changes.open_view()

    def _update_controls(self) -> None:
        self.note.setEnabled(self.current() is not None)
        self.undo_btn.setEnabled(bool(self._undo))

    def step(self, delta: int) -> None:
        """Move to the next (``delta`` 1) or previous (-1) finding on the list."""
        n = len(self.model.rows)
        if not n:
            return
        i = self.table.currentIndex()
        row = (0 if delta > 0 else n - 1) if not i.isValid() else \
            max(0, min(n - 1, i.row() + delta))
        self.table.setCurrentIndex(self.model.index(row, 1))

    # ------------------------------------------------------------------ decisions
    def _decide(self, target: tuple[str, str], select: tuple[str, str] | None,
                fallback: int | None, **change) -> None:
        key, region_id = target
        row = next(r for r in self._all if (r.key, r.region_id) == target)
        f = row.finding  # the decisions as listed: another writer's since then is told
        seen = RegionReview(f.reviewer, self.note.base if "note" in change else f.note,
                            f.accepted)
        try:
            with warnings.catch_warnings(record=True) as told:
                warnings.simplefilter("always", ChangedElsewhere)
                prev = set_review(self.project, key, region_id, seen=seen, **change)
        except (OSError, ProjectError) as e:  # e.g. a read-only project folder
            self.status.setText(f"Not saved: {e}")
            return
        self._told = next((str(w.message) for w in told
                           if issubclass(w.category, ChangedElsewhere)), "")
        self._undo.append((key, region_id, prev, row.finding.region.bbox))
        self._take_decisions(key)
        self._apply(select, fallback)

    def _take_decisions(self, key: str) -> None:
        """The listed rows of ``key`` with the decisions stored now (masks are not read)."""
        at = [i for i, r in enumerate(self._all) if r.key == key]
        fresh = with_reviews(self.project, [self._all[i] for i in at])
        for i, row in zip(at, fresh, strict=True):
            self._all[i] = row

    def set_severity(self, level: int | None) -> None:
        """The reviewer's severity of the current finding (None: the suggestion stands)."""
        row = self.current()
        if row is not None:
            here = (row.key, row.region_id)
            self._decide(here, here, self.table.currentIndex().row(), level=level)

    def accept(self) -> None:
        """Mark the current finding reviewed and move to the next one."""
        row = self.current()
        if row is None:
            return
        i = self.table.currentIndex().row()
        rows = self.model.rows
        after = (rows[i + 1].key, rows[i + 1].region_id) if i + 1 < len(rows) else None
        here = (row.key, row.region_id)
        self._decide(here, after or here, i + 1 if after else i, accepted=True)

    def commit_note(self) -> None:
        """Save the note field for the finding it was filled for, if it changed."""
        target = self._note_target
        if target is None or self.project is None:
            return
        row = next((r for r in self._all if (r.key, r.region_id) == target), None)
        text = self.note.typed()
        if row is not None and text != row.finding.note:
            self._decide(target, self._current_id() or target, None, note=text)

    def _note_entered(self) -> None:
        self.commit_note()
        self.table.setFocus()  # back to the keys of the review

    def undo(self) -> None:
        """Put back the decisions before the last change (and show that finding)."""
        if not self._undo or self.project is None:
            return
        key, region_id, prev, bbox = self._undo.pop()
        try:
            restore_review(self.project, key, region_id, prev)
        except (OSError, ProjectError) as e:
            self.status.setText(f"Not saved: {e}")
            return
        if any(r.key == key for r in self._all):
            self._take_decisions(key)
            self._apply((key, region_id), self.table.currentIndex().row())
        else:  # a decision on another photo: show that photo, so the undo is seen
            self._want = self._shown = (key, region_id)
            self.region_chosen.emit(key, bbox)

    # ------------------------------------------------------------------ keys
    def _action(self, event: QKeyEvent) -> Callable[[], None] | None:
        if event.matches(QKeySequence.StandardKey.Undo):
            return self.undo
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if mods != Qt.KeyboardModifier.NoModifier:
            return None
        k = event.key()
        if k in _LEVEL_KEYS:
            return lambda: self.set_severity(_LEVEL_KEYS[k])
        return {Qt.Key.Key_0: lambda: self.set_severity(None), Qt.Key.Key_N: lambda: self.step(1),
                Qt.Key.Key_P: lambda: self.step(-1), Qt.Key.Key_Return: self.accept,
                Qt.Key.Key_Enter: self.accept}.get(k)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if obj is self.table and event.type() == QEvent.Type.FocusIn and \
                self.current() is None and self.model.rows:
            self.table.setCurrentIndex(self.model.index(0, 1))  # entering the list: the first
        if obj is self.table and event.type() in (QEvent.Type.ShortcutOverride,
                                                  QEvent.Type.KeyPress):
            action = self._action(event)
            if action is not None:
                event.accept()  # an accepted override keeps the window's shortcuts off it
                if event.type() == QEvent.Type.KeyPress:
                    action()
                return True
        return False
