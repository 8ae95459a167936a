"""A progress bar with count, ETA and Cancel, plus a list of per-image errors."""

from __future__ import annotations

from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qthrottled

from app.gui import _constants as C
from app.gui._jobs import Job
from ml.common.progress import Progress


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "--:--"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def set_bar(bar: QProgressBar, done: int, total: int, text: str | None = None) -> None:
    """Set a progress bar without QProgressBar's synchronous repaint: with napari's OpenGL
    canvas in the window each repaint re-composes the whole window (15-80 ms of the GUI thread
    with software OpenGL); deferred, it joins the next ordinary paint with every other change."""
    bar.setUpdatesEnabled(False)
    try:
        bar.setRange(0, total)
        bar.setValue(min(done, total) if total else 0)
        if text is not None:
            bar.setFormat(text)
    finally:
        bar.setUpdatesEnabled(True)  # schedules one ordinary paint


class ProgressPanel(QWidget):
    """Shows one job at a time; hidden errors list appears when a job reports failures."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job: Job | None = None
        self._throttle = qthrottled(self.on_progress, C.PROGRESS_UI_MS, parent=self)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.label = QLabel("idle")
        # wrapped: a longer line (a photo's name, the summary) must not widen the dock, which
        # would resize napari's canvas and redraw it in the middle of a job
        self.label.setWordWrap(True)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        self.errors = QListWidget()
        self.errors.setMaximumHeight(90)
        self.errors.hide()
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_btn)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.label)
        lay.addWidget(self.errors)

    def attach(self, job: Job) -> None:
        """Follow ``job`` (call before job.start())."""
        self._throttle.cancel()
        self.job = job
        self.errors.clear()
        self.errors.hide()
        set_bar(self.bar, 0, 0)  # busy until the first progress event
        self.label.setText(f"{job.name}: starting")
        self.cancel_btn.setEnabled(True)
        job.progress.connect(self._throttle)
        job.item_error.connect(self.add_error)
        job.succeeded.connect(self._on_succeeded)
        job.failed.connect(self._on_failed)

    def on_progress(self, p: Progress) -> None:
        set_bar(self.bar, int(p.done), max(int(p.total), 1), f"{p.done}/{p.total}")
        name = self.job.name if self.job else ""
        msg = f" · {p.message}" if p.message else ""
        self.label.setText(f"{name}: {p.done}/{p.total} · ETA {format_eta(p.eta_s)}{msg}")

    def add_error(self, text: str) -> None:
        self.errors.addItem(text)
        self.errors.show()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.label.setText(f"{self.job.name}: stopping after the current image…")
            self.cancel_btn.setEnabled(False)

    def _finish(self, text: str) -> None:
        if self.bar.maximum() == 0:
            set_bar(self.bar, 0, 1)
        self.cancel_btn.setEnabled(False)
        self.label.setText(text)

    def _on_succeeded(self, _result: object) -> None:
        self._throttle.flush()  # the bar shows the last step before the summary reads it
        job = self.job
        if job is None:
            return
        n_err = self.errors.count()
        state = "cancelled" if job.cancelled else "done"
        count = f" · {self.bar.value()}/{self.bar.maximum()}" if self.bar.maximum() else ""
        from ml.teachers.pseudo_label import PseudoLabelResult

        # pseudo-labelling also says how many boxes each teacher left (nearly) empty
        empty = f" · {_result.empty_line()}" if isinstance(_result, PseudoLabelResult) else ""
        self._finish(f"{job.name}: {state}{count}" + (f" · {n_err} error(s)" if n_err else "")
                     + empty)

    def _on_failed(self, message: str) -> None:
        self._throttle.flush()
        self._finish(f"{self.job.name if self.job else 'job'} failed: {message}")
