"""Training panel: settings, Start / Stop / Resume / Fine-tune, progress with ETA, live plot,
and after a run one click to predict every photo with the new model."""

from __future__ import annotations

import json
from pathlib import Path

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qthrottled

from app.gui import _constants as C
from app.gui._jobs import Job
from app.gui._progress_panel import ProgressPanel, format_eta, set_bar
from app.gui._resources import icon
from app.gui.training.plot import TrainingPlot
from app.gui.training.process import TrainProcess
from app.gui.training.settings import TrainSettings
from ml.evaluation.free_threshold import summary_line
from ml.project.store import Project
from ml.student.checkpoint import (
    can_resume,
    current_model,
    is_model,
    load_card,
    new_model_dir,
    resumable_run,
)
from ml.student.config import ConfigError
from ml.training.events import (
    CacheProgress,
    Checkpoint,
    Done,
    Note,
    Setup,
    Step,
    Stopped,
    TrainEvent,
    Validation,
)


class TrainingPanel(QWidget):
    """Runs ml.training.trainer.train in a supervised worker process; emits ``model_ready(dir)``,
    and ``predict_all(dir)`` when the person asks to predict every photo with that model."""

    model_ready = Signal(str)
    predict_all = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.out_dir: Path | None = None
        self.new_model: Path | None = None  # the last run's model, for "predict all"
        self.predict_job: Job | None = None
        self.overrides: tuple[dict, dict] = ({}, {})  # extra Student/Train fields (tests, CLI)
        self.settings = TrainSettings()
        self.process = TrainProcess(self)
        self._show = qthrottled(self._show_progress, C.PROGRESS_UI_MS, parent=self)
        self.process.progress.connect(self.on_progress)
        self.process.finished_ok.connect(self._on_done)
        self.process.crashed.connect(self._on_crash)
        self.start_btn = QPushButton(icon("fa5s.play"), "Start")
        self.start_btn.clicked.connect(lambda: self.start())
        self.stop_btn = QPushButton(icon("fa5s.stop"), "Stop")
        self.stop_btn.clicked.connect(self.stop)
        self.resume_btn = QPushButton(icon("fa5s.step-forward"), "Resume")
        self.resume_btn.clicked.connect(lambda: self.start(resume=True))
        self.finetune_btn = QPushButton(icon("fa5s.sync"), "Fine-tune current")
        self.finetune_btn.setToolTip("Train a new model starting from the current one (--from)")
        self.finetune_btn.clicked.connect(lambda: self.start(finetune=True))
        self.bar = QProgressBar()
        self.status = QLabel("no training yet")
        self.status.setWordWrap(True)
        self.plot = TrainingPlot()
        self.error = QPlainTextEdit()
        self.error.setReadOnly(True)
        self.error.setMaximumHeight(110)
        self.error.hide()
        self.predict_btn = QPushButton(icon("fa5s.images"), "Predict all photos with the new model")
        self.predict_btn.setToolTip("Predict every photo in the background with the model just "
                                    "trained; the masks of the model before are kept, so the "
                                    "Corrections dock can compare with them")
        self.predict_btn.clicked.connect(self._ask_predict)
        self.predict_btn.hide()
        self.predict_progress = ProgressPanel()
        self.predict_progress.hide()
        self.predict_status = QLabel("")
        self.predict_status.setWordWrap(True)
        self.predict_status.hide()
        buttons = QGridLayout()
        buttons.addWidget(self.start_btn, 0, 0)
        buttons.addWidget(self.stop_btn, 0, 1)
        buttons.addWidget(self.resume_btn, 1, 0)
        buttons.addWidget(self.finetune_btn, 1, 1)
        # in a scroll area: a dock shorter than the panel scrolls instead of squeezing rows
        # into each other (the plan's two lines, the predict-all summary)
        inner = QWidget()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        lay = QVBoxLayout(inner)
        lay.addWidget(self.settings)
        lay.addLayout(buttons)
        lay.addWidget(self.bar)
        lay.addWidget(self.status)
        lay.addWidget(self.plot)
        lay.addWidget(self.error)
        lay.addWidget(self.predict_btn)
        lay.addWidget(self.predict_progress)
        lay.addWidget(self.predict_status)
        self._sync_buttons()

    def set_project(self, project: Project | None) -> None:
        self.project = project
        self.new_model = None
        for w in (self.predict_btn, self.predict_progress, self.predict_status):
            w.hide()
        self.settings.set_project(project.root if project is not None else None)
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        running = self.process.is_running()
        has = self.project is not None
        self.start_btn.setEnabled(has and not running)
        self.stop_btn.setEnabled(running)
        self.resume_btn.setEnabled(has and not running and resumable_run(self.project) is not None)
        self.finetune_btn.setEnabled(has and not running and current_model(self.project)
                                     is not None)
        predicting = self.predict_job is not None and self.predict_job.is_running()
        self.predict_btn.setVisible(self.new_model is not None)
        self.predict_btn.setEnabled(has and not running and not predicting
                                    and self.new_model is not None)

    def _ask_predict(self) -> None:
        if self.new_model is not None:
            self.predict_all.emit(str(self.new_model))

    def follow(self, job: Job) -> None:
        """Show a predict-all job's progress (with Cancel) here; its summary when it ends."""
        self.predict_job = job
        self.predict_progress.attach(job)
        self.predict_progress.show()
        self.predict_status.hide()
        job.succeeded.connect(self._on_predicted)
        job.finished.connect(self._sync_buttons)
        self._sync_buttons()

    def _on_predicted(self, result: object) -> None:
        names = self.project.class_names() if self.project is not None else []
        self.predict_status.setText(describe_predictions(result, names))
        self.predict_status.show()

    def worker_args(self, resume: bool = False, finetune: bool = False) -> list[str]:
        """Arguments for app.workers.train (public so tests and the bench can start the same
        run)."""
        p = self.project
        if p is None:
            raise RuntimeError("no project is open")
        student, cfg = self.settings.configs(p.num_classes)
        base = None
        if finetune and not resume:
            base = current_model(p)
            if base is None:
                raise RuntimeError("no trained model to fine-tune from")
            # fine-tuning keeps the model's build (members, heads, ...)
            student = student.shaped_as(load_card(base).student)
        s = {**student.to_dict(), **self.overrides[0]}
        t = {**cfg.to_dict(), **self.overrides[1]}
        args = [str(p.root), "--student", json.dumps(s), "--train", json.dumps(t)]
        if resume:
            run = resumable_run(p)
            if run is None:
                raise RuntimeError("nothing to resume in this project")
            self.out_dir = run
            args.append("--resume")
        else:
            self.out_dir = new_model_dir(p, "finetune" if finetune else "student")
            if base is not None:
                args += ["--from", str(base)]
        return [*args[:1], "--out", str(self.out_dir), *args[1:]]

    def start(self, resume: bool = False, finetune: bool = False) -> None:
        try:
            args = self.worker_args(resume, finetune)
        except (RuntimeError, ConfigError) as e:  # ConfigError: settings out of range, said once
            self.status.setText(str(e))
            return
        self._show.cancel()
        self.plot.clear()
        self.error.hide()
        set_bar(self.bar, 0, 0)
        self.status.setText(f"starting worker → {self.out_dir.name}")
        self.process.start(args)
        self._sync_buttons()

    def stop(self) -> None:
        self.status.setText("stopping: the worker saves its state for Resume…")
        self.process.stop()

    def on_progress(self, ev: TrainEvent) -> None:
        """Record the event's plot points now; show bar, text and plot a few times a second."""
        match ev:
            case Step():
                steps_per_epoch = max(ev.total_steps / max(ev.epochs, 1), 1e-9)
                self.plot.add_loss(ev.step / steps_per_epoch, ev.loss, redraw=False)
            case Validation():
                self.plot.add_miou(float(ev.epoch), ev.val_anomaly_miou, redraw=False)
        self._show(ev)

    def _show_progress(self, ev: TrainEvent) -> None:
        done, total, text = describe(ev)
        if total > 0:
            set_bar(self.bar, done, total)
        self.plot.update()
        self.status.setText(text)
        self._sync_buttons()

    def _on_done(self, ev: Done | Stopped | None) -> None:
        self._show.flush()
        if isinstance(ev, Stopped):
            self.status.setText("stopped; state saved — Resume continues it")
        elif ev is None:  # the worker did not stop in time and was ended
            saved = self.out_dir is not None and can_resume(self.out_dir)
            self.status.setText("stopped (the worker was ended); Resume continues from its "
                                "last saved state" if saved else
                                "stopped before the worker saved any state; Start begins again")
        else:
            res = ev.result
            text = f"done: {res.epochs_run} epochs, {res.kept_line()}"
            if is_model(res.out_dir):
                free = summary_line(load_card(res.out_dir).free_threshold)
                text += f"\n{free}" if free else ""
            self.status.setText(text)
        if self.bar.maximum() == 0:
            set_bar(self.bar, 0, 1)
        self._sync_buttons()
        if self.out_dir is not None and is_model(self.out_dir):
            self.new_model = self.out_dir
            self._sync_buttons()
            self.model_ready.emit(str(self.out_dir))

    def _on_crash(self, message: str) -> None:
        self._show.flush()
        first, _, rest = message.partition("\n")
        self.status.setText(first)
        self.error.setPlainText(rest or first)
        self.error.show()
        if self.bar.maximum() == 0:
            set_bar(self.bar, 0, 1)
        self._sync_buttons()


def describe_predictions(result: object, class_names: list[str]) -> str:
    """What a predict-all job did, with what changed against the previous model's masks."""
    if result is None:
        return "prediction cancelled; the photos done so far keep their new masks"
    text = result.summary() if hasattr(result, "summary") else str(result)
    changes = getattr(result, "changes", None)
    if changes is None:
        return f"{text}; no earlier model's masks to compare with"
    return (f"{text}. Against the previous model ({changes.photos_changed} of {changes.photos} "
            f"photos changed): {changes.summary(class_names)} — Corrections dock: compare with "
            "previous model")


def describe(ev: TrainEvent) -> tuple[int, int, str]:
    """(done, total, one line) for the progress bar and status of a training event."""
    match ev:
        case Setup():
            start = f"; resuming at epoch {ev.start_epoch + 1}" if ev.start_step else ""
            return (ev.start_step, ev.total_steps, f"trainable {ev.trainable_params:,} / total "
                    f"{ev.total_params:,} params; {ev.train_images} training images{start}")
        case CacheProgress():
            return ev.done, ev.total, "caching backbone features"
        case Step():
            eta = f" · ETA {format_eta(ev.eta_s)}" if ev.eta_s is not None else ""
            return ev.step, ev.total_steps, f"epoch {ev.epoch}/{ev.epochs}{eta}"
        case Validation():
            return (ev.step, ev.total_steps,
                    f"epoch {ev.epoch}: val anomaly mIoU {ev.val_anomaly_miou:.3f}")
        case Checkpoint():
            return 0, 0, f"epoch {ev.epoch} saved" + (" (best so far)" if ev.best else "")
        case Note():
            return 0, 0, f"note: {ev.message}"
    return 0, 0, ""
