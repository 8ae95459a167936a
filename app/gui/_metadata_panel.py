"""Inspection metadata of the selected photo(s): edit, bulk set, auto-fill, confirm guesses.

Every edit is saved at once through :func:`ml.metadata.values.set_values` (the store writes its
index atomically) and counts as the person's value. Guessed values (from folders, EXIF/XMP
or the GSD estimate) show in grey italics with a ✓ button that confirms them.
"""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.gui._jobs import Job
from app.gui._resources import icon
from ml.metadata.values import BLADES, FIELDS, SHORT_SIDES, confirm, guessed, set_values
from ml.project.store import Project, ProjectError

_LABELS = {"turbine": "Turbine", "blade": "Blade", "side": "Side", "date": "Date",
           "distance_m": "Distance (m)", "gsd_mm": "GSD (mm/px)", "radius_m": "Radius (m)"}
PANEL_FIELDS = (*FIELDS, "radius_m")  # radius: from the blade root (ml.metadata.position)
_CHOICES = {"blade": [(b, b) for b in BLADES],
            "side": [(short, side) for side, short in SHORT_SIDES.items()]}
_HINTS = {"turbine": "e.g. WTG07", "date": "YYYY-MM-DD", "distance_m": "camera to blade",
          "gsd_mm": "mm per pixel", "radius_m": "from the blade root"}
MIXED = "(several values)"
GUESSED_STYLE = "color: #9a9a9a; font-style: italic;"


def _auto_fill(project, keys, progress=None, should_stop=None):
    from ml.metadata.autofill import auto_fill

    return auto_fill(project, keys, progress=progress, should_stop=should_stop)


def _text(name: str, value) -> str:
    if value in (None, ""):
        return ""
    if name == "side":
        return SHORT_SIDES.get(value, str(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


class MetadataPanel(QWidget):
    """Emits ``changed(keys)`` after it wrote metadata of those photos."""

    changed = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.keys: list[str] = []
        self.job: Job | None = None
        self._job_done = True  # the finished signal of the last job was handled
        self.title = QLabel("No photo selected")
        self.title.setWordWrap(True)
        grid = QGridLayout()
        self.editors: dict[str, QLineEdit | QComboBox] = {}
        self.confirm_btns: dict[str, QToolButton] = {}
        for row, name in enumerate(PANEL_FIELDS):
            editor = self._combo(name) if name in _CHOICES else self._line(name)
            btn = QToolButton()
            btn.setIcon(icon("fa5s.check"))
            btn.setToolTip(f"Confirm: the guessed {_LABELS[name].lower()} is right")
            btn.clicked.connect(lambda _c=False, n=name: self.confirm_fields([n]))
            grid.addWidget(QLabel(_LABELS[name]), row, 0)
            grid.addWidget(editor, row, 1)
            grid.addWidget(btn, row, 2)
            self.editors[name], self.confirm_btns[name] = editor, btn
        self.autofill_btn = QPushButton(icon("fa5s.magic"), "Auto-fill")
        self.autofill_btn.setToolTip("Guess from the photos' EXIF/XMP, their folder names and "
                                     "a GSD estimate; values you set are kept")
        self.autofill_btn.clicked.connect(self.auto_fill)
        self.confirm_all_btn = QPushButton(icon("fa5s.check-double"), "Confirm all")
        self.confirm_all_btn.setToolTip("Every guessed value of the selected photos is right")
        self.confirm_all_btn.clicked.connect(lambda: self.confirm_fields(None))
        buttons = QHBoxLayout()
        buttons.addWidget(self.autofill_btn)
        buttons.addWidget(self.confirm_all_btn)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addLayout(grid)
        lay.addLayout(buttons)
        lay.addWidget(self.status)
        lay.addStretch(1)
        self.refresh()

    def _line(self, name: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setPlaceholderText(_HINTS.get(name, ""))
        edit.editingFinished.connect(lambda n=name: self._line_done(n))
        return edit

    def _combo(self, name: str) -> QComboBox:
        box = QComboBox()
        box.addItem("", "")  # clears the field
        for label, value in _CHOICES[name]:
            box.addItem(label, value)
        box.activated.connect(lambda i, n=name: self.set_field(n, box.itemData(i)))
        return box

    # ------------------------------------------------------------------ state
    def set_project(self, project: Project | None) -> None:
        self.project, self.keys = project, []
        self.refresh()

    def set_keys(self, keys: list[str]) -> None:
        """Show the photos ``keys`` (the project list's selection); edits apply to all."""
        self.keys = [k for k in keys if self.project is not None and k in self.project.images]
        self.refresh()

    def refresh(self) -> None:
        metas = [self.project.record(k).meta for k in self.keys] if self.project else []
        n = len(metas)
        self.title.setText("No photo selected" if not n else
                           f"<b>{self.keys[0]}</b>" if n == 1 else f"<b>{n} photos</b>: "
                           "an edit sets the field on all of them")
        any_guess = False
        for name, editor in self.editors.items():
            values = {_text(name, m.get(name)) for m in metas}
            hows = [guessed(m)[name] for m in metas if name in guessed(m)]
            self._show(name, editor, next(iter(values)) if len(values) == 1 else "",
                       len(values) > 1)
            editor.setEnabled(bool(n))
            style = GUESSED_STYLE if hows else ""
            if editor.styleSheet() != style:  # a style sheet set restyles the widget (ms each)
                editor.setStyleSheet(style)
            tip = (f"Guessed ({hows[0]})" + (f" on {len(hows)} of {n} photos" if n > 1 else "")
                   + "; ✓ confirms it, an edit replaces it") if hows else ""
            editor.setToolTip(tip)
            self.confirm_btns[name].setEnabled(bool(hows))
            any_guess |= bool(hows)
        # busy until the finished signal is handled, not until the thread ends: a fast job
        # may end before this runs, and the button must not flicker back before its result
        busy = self.job is not None and not self._job_done
        self.autofill_btn.setEnabled(bool(n) and not busy)
        self.confirm_all_btn.setEnabled(any_guess)

    def _show(self, name: str, editor, value: str, mixed: bool) -> None:
        if isinstance(editor, QLineEdit):
            editor.setText(value)
            editor.setPlaceholderText(MIXED if mixed else _HINTS.get(name, ""))
            editor.setModified(False)
            return
        editor.setPlaceholderText(MIXED)
        labels = [editor.itemText(i) for i in range(editor.count())]
        editor.setCurrentIndex(-1 if mixed or value not in labels else labels.index(value))

    def is_guessed(self, name: str) -> bool:
        """True when ``name`` is shown as guessed (any selected photo holds a guess)."""
        return self.confirm_btns[name].isEnabled()

    # ------------------------------------------------------------------ edits
    def _line_done(self, name: str) -> None:
        editor = self.editors[name]
        if editor.isModified():  # focus moving on without a change writes nothing
            editor.setModified(False)
            self.set_field(name, editor.text())

    def set_field(self, name: str, value) -> bool:
        """A person's value for every selected photo; False (and a message) if refused."""
        if self.project is None or not self.keys:
            return False
        try:
            set_values(self.project, self.keys, **{name: value})
        except (ProjectError, OSError) as e:
            self._say(str(e), error=True)
            self.refresh()
            return False
        self._say(f"{_LABELS[name]} saved on {len(self.keys)} photo(s)")
        self._done()
        return True

    def confirm_fields(self, fields: list[str] | None) -> int:
        if self.project is None or not self.keys:
            return 0
        try:
            n = confirm(self.project, self.keys, fields)
        except OSError as e:
            self._say(f"could not save: {e}", error=True)
            return 0
        self._say(f"confirmed {n} value(s)")
        self._done()
        return n

    def auto_fill(self) -> Job | None:
        """Guess the selected photos' metadata in a background job."""
        if self.project is None or not self.keys or (self.job and self.job.is_running()):
            return None
        self.job = Job("auto-fill metadata", _auto_fill, self.project, list(self.keys))
        self._job_done = False
        self.job.finished.connect(self._on_job_finished)
        self._say("reading the photos…")
        self.job.start()
        self.refresh()
        return self.job

    def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel a running auto-fill (window closing); what it read is still saved."""
        if self.job is not None and self.job.is_running():
            self.job.cancel()
            self.job.wait(timeout_s)

    def _on_job_finished(self) -> None:
        job = self.job
        if job is None:
            return
        self._job_done = True
        if job.error:
            self._say(f"auto-fill failed: {job.error}", error=True)
        elif job.result is not None:
            self._say(job.result.summary().replace("\n", "<br>"))
            self.status.setToolTip(job.result.summary())
        self.refresh()
        self.changed.emit(list(job.result.done) if job.result is not None else [])

    def _done(self) -> None:
        self.refresh()
        self.changed.emit(list(self.keys))

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #e05a47;" if error else "")
