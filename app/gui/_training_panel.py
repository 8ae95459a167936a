"""Training panel: settings, Start / Stop / Resume / Fine-tune, progress with ETA, live plot."""

from __future__ import annotations

import json
from pathlib import Path

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QGridLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qthrottled

from ml.checkpoint import current_model, is_model, new_model_dir, resumable_run
from ml.store import Project
from ml.train_events import (
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

from . import _constants as C
from ._plot import TrainingPlot
from ._progress_panel import format_eta
from ._resources import icon
from ._train_process import TrainProcess
from ._train_settings import TrainSettings


class TrainingPanel(QWidget):
    """Runs ml.train.train in a supervised worker process; emits ``model_ready(dir)``."""

    model_ready = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.out_dir: Path | None = None
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
        buttons = QGridLayout()
        buttons.addWidget(self.start_btn, 0, 0)
        buttons.addWidget(self.stop_btn, 0, 1)
        buttons.addWidget(self.resume_btn, 1, 0)
        buttons.addWidget(self.finetune_btn, 1, 1)
        lay = QVBoxLayout(self)
        lay.addWidget(self.settings)
        lay.addLayout(buttons)
        lay.addWidget(self.bar)
        lay.addWidget(self.status)
        lay.addWidget(self.plot)
        lay.addWidget(self.error)
        self._sync_buttons()

    def set_project(self, project: Project | None) -> None:
        self.project = project
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

    def worker_args(self, resume: bool = False, finetune: bool = False) -> list[str]:
        """Arguments for app.worker (public so tests and the bench can start the same run)."""
        p = self.project
        if p is None:
            raise RuntimeError("no project is open")
        student, cfg = self.settings.configs(p.num_classes)
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
            base = current_model(p) if finetune else None
            if finetune and base is None:
                raise RuntimeError("no trained model to fine-tune from")
            self.out_dir = new_model_dir(p, "finetune" if finetune else "student")
            if base is not None:
                args += ["--from", str(base)]
        return [*args[:1], "--out", str(self.out_dir), *args[1:]]

    def start(self, resume: bool = False, finetune: bool = False) -> None:
        try:
            args = self.worker_args(resume, finetune)
        except RuntimeError as e:
            self.status.setText(str(e))
            return
        self._show.cancel()
        self.plot.clear()
        self.error.hide()
        self.bar.setRange(0, 0)
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
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        self.plot.update()
        self.status.setText(text)
        self._sync_buttons()

    def _on_done(self, ev: Done | Stopped | None) -> None:
        self._show.flush()
        if not isinstance(ev, Done):
            self.status.setText("stopped; state saved — Resume continues it")
        else:
            res = ev.result
            best = "n/a" if res.best_metric is None else f"{res.best_metric:.3f}"
            self.status.setText(f"done: {res.epochs_run} epochs, best val anomaly "
                                f"mIoU {best} (epoch {res.best_epoch})")
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 1)
        self._sync_buttons()
        if self.out_dir is not None and is_model(self.out_dir):
            self.model_ready.emit(str(self.out_dir))

    def _on_crash(self, message: str) -> None:
        self._show.flush()
        first, _, rest = message.partition("\n")
        self.status.setText(first)
        self.error.setPlainText(rest or first)
        self.error.show()
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 1)
        self._sync_buttons()


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
