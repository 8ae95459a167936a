"""Pseudo-label and predict, for this image or all, as background jobs with progress."""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui._jobs import Job
from app.gui._preload import preload_torch
from app.gui._progress_panel import ProgressPanel
from app.gui._resources import icon
from ml.project.store import Project
from ml.student.checkpoint import current_model
from ml.student.config import DEFAULT_TEACHER


def teacher_choices() -> list[tuple[str, str, dict]]:
    """(label, teacher name, options) for every teacher usable now, the default first: auto
    (which also asks SAM where its weights are cached), SAM types whose weights are installed,
    GrabCut, ridge and box fill."""
    from ml.weights import SOURCES, list_status

    out: list[tuple[str, str, dict]] = [("Auto (per box)", "auto", {})]
    sams = [n for n, s in SOURCES.items() if s.kind == "sam"]
    for row in list_status(sams):
        if row.present:
            out.append((f"SAM {SOURCES[row.name].arch}", "sam",
                        {"model_type": SOURCES[row.name].arch}))
    return out + [("GrabCut", "grabcut", {}), ("Ridge (thin cracks)", "ridge", {}),
                  ("Box fill", "box", {})]


def _pseudo_label(project: Project, teacher: str, options: dict, keys: list[str] | None,
                  only_missing: bool, progress=None, should_stop=None):
    from ml.teachers import make_teacher
    from ml.teachers.pseudo_label import pseudo_label_project

    t = make_teacher(teacher, **options)
    return pseudo_label_project(project, t, keys=keys, only_missing=only_missing,
                                progress=progress, should_stop=should_stop)


def _predict(project: Project, model_dir: str, keys: list[str] | None, tiled: bool,
             progress=None, should_stop=None):
    from ml.prediction.batch_predict import predict_project

    return predict_project(project, model_dir, keys=keys, tiled=tiled, box_constraint=True,
                           progress=progress, should_stop=should_stop)


class BatchPanel(QWidget):
    """Builds jobs from the current project/image; emits ``job_started`` and ``job_finished``."""

    job_started = Signal(object)
    job_finished = Signal(object)

    def __init__(self, state: Callable[[], tuple[Project | None, str | None]],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self.job: Job | None = None
        self.teacher = QComboBox()
        self.refresh_teachers()
        self.tiled = QCheckBox("tiled (native resolution)")
        self.pl_one = QPushButton(icon("fa5s.magic"), "Pseudo-label this")
        self.pl_all = QPushButton(icon("fa5s.layer-group"), "… all without masks")
        self.pr_one = QPushButton(icon("fa5s.brain"), "Predict this")
        self.pr_all = QPushButton(icon("fa5s.images"), "Predict all")
        self.pl_one.clicked.connect(lambda: self.pseudo_label(all_images=False))
        self.pl_all.clicked.connect(lambda: self.pseudo_label(all_images=True))
        self.pr_one.clicked.connect(lambda: self.predict(all_images=False))
        self.pr_all.clicked.connect(lambda: self.predict(all_images=True))
        self.model_label = QLabel("model: none yet")
        self.model_label.setWordWrap(True)
        self.progress = ProgressPanel()
        grid = QGridLayout()
        grid.addWidget(QLabel("Teacher"), 0, 0)
        grid.addWidget(self.teacher, 0, 1)
        grid.addWidget(self.pl_one, 1, 0)
        grid.addWidget(self.pl_all, 1, 1)
        grid.addWidget(self.pr_one, 2, 0)
        grid.addWidget(self.pr_all, 2, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(grid)
        lay.addWidget(self.tiled)
        lay.addWidget(self.model_label)
        lay.addWidget(self.progress)
        self.sync()

    def refresh_teachers(self) -> None:
        self.teacher.clear()
        for label, name, opts in teacher_choices():
            self.teacher.addItem(label, (name, opts))
        self.set_teacher(DEFAULT_TEACHER)  # b2p pseudo-label's default

    def set_teacher(self, name: str) -> None:
        for i in range(self.teacher.count()):
            if self.teacher.itemData(i)[0] == name:
                self.teacher.setCurrentIndex(i)
                return
        raise ValueError(f"teacher '{name}' is not available here")

    def sync(self) -> None:
        project, key = self._state()
        busy = self.job is not None and self.job.is_running()
        model = current_model(project) if project else None
        self.model_label.setText(f"model: {model.name}" if model else "model: none yet (train)")
        for b in (self.pl_one, self.pr_one):
            b.setEnabled(not busy and key is not None)
        self.pl_all.setEnabled(not busy and project is not None)
        self.pr_one.setEnabled(self.pr_one.isEnabled() and model is not None)
        self.pr_all.setEnabled(not busy and model is not None)

    def pseudo_label(self, all_images: bool) -> Job | None:
        project, key = self._state()
        if project is None or (key is None and not all_images):
            return None
        name, opts = self.teacher.currentData()
        keys = None if all_images else [key]
        if name == "sam":
            preload_torch(("ml.teachers.sam",))
        return self.run_job(Job(f"pseudo-label ({name})", _pseudo_label, project, name, opts,
                             keys, all_images))

    def predict(self, all_images: bool, model_dir: str | None = None,
                on_start: Callable[[Job], None] | None = None) -> Job | None:
        """Predict with ``model_dir`` (default: the current model); the masks it replaces are
        kept as the previous model's (``ml.prediction.batch_predict.predict_project``).
        ``on_start(job)`` runs before the job starts (another panel following its progress)."""
        project, key = self._state()
        model = model_dir or (current_model(project) if project else None)
        if project is None or model is None or (key is None and not all_images):
            return None
        keys = None if all_images else [key]
        preload_torch(("ml.prediction.predict",))
        return self.run_job(Job("predict", _predict, project, str(model), keys,
                                self.tiled.isChecked()), on_start)

    def is_busy(self) -> bool:
        return self.job is not None and self.job.is_running()

    def run_job(self, job: Job, on_start: Callable[[Job], None] | None = None) -> Job:
        if self.is_busy():
            raise RuntimeError("a job is already running")
        self.job = job
        self.progress.attach(job)
        job.finished.connect(lambda: self._on_finished(job))
        if on_start is not None:
            on_start(job)
        self.job_started.emit(job)
        job.start()
        self.sync()
        return job

    def _on_finished(self, job: Job) -> None:
        self.sync()
        self.job_finished.emit(job)
