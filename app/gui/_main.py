"""The Inspector: napari viewer plus our docks, menus and shortcuts, wired to one project."""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import QEvent, QObject
from qtpy.QtGui import QKeySequence, QShortcut
from qtpy.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from app.gui import _constants as C
from app.gui._annotate_panel import AnnotatePanel
from app.gui._batch_panel import BatchPanel
from app.gui._blade_map_panel import BladeMapPanel
from app.gui._class_manager import ClassManager
from app.gui._jobs import Job
from app.gui._layers import ImageLayers
from app.gui._metadata_panel import MetadataPanel
from app.gui._project_panel import ProjectPanel
from app.gui._recent import add_recent
from app.gui._review_panel import ReviewPanel
from app.gui._session import ImageSession
from app.gui._window_geometry import scrolled
from app.gui.findings.panel import FindingsPanel
from app.gui.training.panel import TrainingPanel
from ml.project.store import INDEX_NAME, Project

__all__ = ["Inspector"]


def _export(project, fmt, source, out, progress=None, should_stop=None):
    from ml.datasets.export import export_masks

    return export_masks(project, fmt, source, out, progress=progress, should_stop=should_stop)


def _report(project, out, progress=None, should_stop=None):
    from ml.findings.report import write_report

    return write_report(project, out, progress=progress, should_stop=should_stop)


def unreadable(project: Project) -> dict[str, str]:
    """Key -> reason for each photo of ``project`` whose size could not be read."""
    from ml.common.images import ImageError

    out = {}
    for key, rec in project.images.items():
        if not rec.width:
            try:
                project.image_size(key)
            except ImageError as e:
                out[key] = e.reason
    return out


class Inspector(QObject):
    """Owns the docks and the image session; ``open_project`` and ``show_key`` drive it."""

    def __init__(self, viewer, dock: bool = True) -> None:
        """``dock=False`` leaves the panels undocked (the napari plugin docks its own hosts)."""
        super().__init__()
        self.viewer = viewer
        self.project: Project | None = None
        self.layers = ImageLayers(viewer)
        self.session = ImageSession(self.layers)
        self.projects = ProjectPanel()
        self.annotate = AnnotatePanel()
        self.review = ReviewPanel()
        self.batch = BatchPanel(lambda: (self.project, self.session.key))
        self.training = TrainingPanel()
        self.metadata = MetadataPanel()
        self.findings = FindingsPanel(lambda: self.project)
        self.blade_map = BladeMapPanel(lambda: self.project)
        win = viewer.window
        if dock:
            win.add_dock_widget(self.projects, name="Project", area="left")
            win.add_dock_widget(scrolled(self.metadata), name="Metadata", area="left")
            win.add_dock_widget(self.annotate, name="Annotate", area="right")
            win.add_dock_widget(scrolled(self.review), name="Corrections", area="right")
            win.add_dock_widget(scrolled(self.batch), name="Pseudo-label / predict",
                                area="right")
            win.add_dock_widget(self.training, name="Train", area="right", tabify=True)
            win.add_dock_widget(scrolled(self.findings), name="Findings", area="bottom")
            win.add_dock_widget(scrolled(self.blade_map), name="Blade map", area="bottom",
                                tabify=True)
        self._wire()
        self._shortcuts()
        from app.gui._menus import ProjectMenu

        self.menu = ProjectMenu(win.main_menu, {
            "open": self.ask_open, "open_path": self.open_project, "classes": self.manage_classes,
            "weights": self.show_weights, "export": self.ask_export, "report": self.ask_report})
        qt_viewer = win._qt_viewer
        qt_viewer.installEventFilter(self)
        win._qt_window.installEventFilter(self)
        self.update_title()

    # ------------------------------------------------------------------ wiring
    def _wire(self) -> None:
        self.projects.key_selected.connect(self.show_key)
        self.projects.open_requested.connect(self.ask_open)
        self.projects.selection_changed.connect(self.metadata.set_keys)
        self.annotate.picker.class_chosen.connect(self.choose_class)
        self.annotate.manage_classes.connect(self.manage_classes)
        self.annotate.undo_btn.clicked.connect(self.session.undo_boxes)
        self.annotate.redo_btn.clicked.connect(self.session.redo_boxes)
        self.annotate.reviewed_toggled.connect(self._set_reviewed)
        self.review.shown_changed.connect(self.layers.set_corrections_shown)
        self.review.compare_changed.connect(self.set_compare)
        self.review.accept.connect(self.accept_corrections)
        self.review.undo.connect(self.undo_accept)
        self.session.saved.connect(self._on_saved)
        self.session.save_failed.connect(self._on_save_failed)
        self.layers.mask_painted.connect(lambda: self._set_state("saving…"))
        self.batch.job_finished.connect(self._on_job_finished)
        self.training.model_ready.connect(lambda _d: self.batch.sync())
        self.training.predict_all.connect(self.predict_with_new_model)
        self.session.image_changed.connect(self.findings.show_photo)
        self.session.saved.connect(self.findings.photo_changed)
        self.batch.job_finished.connect(lambda _j: self.findings.refresh())
        self.findings.region_chosen.connect(self.go_to_region)
        self.blade_map.region_chosen.connect(self.go_to_region)
        self.session.image_changed.connect(self.blade_map.show_photo)
        self.layers.boxes.bind_key("Control-z", lambda _l: self.session.undo_boxes(),
                                   overwrite=True)
        self.layers.boxes.bind_key("Control-Shift-z", lambda _l: self.session.redo_boxes(),
                                   overwrite=True)

    def _shortcuts(self) -> None:
        # Window-level shortcuts come before napari's layer keys, so 1-9 pick classes even
        # while drawing; text fields still take digits (Qt lets focused editors override).
        win = self.viewer.window._qt_window
        self._keys = []
        for n in range(1, 10):
            sc = QShortcut(QKeySequence(str(n)), win)
            sc.activated.connect(lambda n=n: self.choose_class(n))
            self._keys.append(sc)
        for seq, delta in (("PgDown", 1), ("PgUp", -1)):
            sc = QShortcut(QKeySequence(seq), win)
            sc.activated.connect(lambda d=delta: self.projects.step(d))
            self._keys.append(sc)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt name)
        et = event.type()
        if et in (QEvent.Type.DragEnter, QEvent.Type.Drop) and self._dropped_folder(event):
            if et == QEvent.Type.Drop:
                self.open_project(self._dropped_folder(event))
            event.acceptProposedAction()
            return True
        if et == QEvent.Type.Close and obj is self.viewer.window._qt_window:
            self.shutdown()
        return False

    @staticmethod
    def _dropped_folder(event) -> str | None:
        mime = event.mimeData()
        urls = mime.urls() if mime is not None and mime.hasUrls() else []
        if len(urls) == 1 and urls[0].isLocalFile() and Path(urls[0].toLocalFile()).is_dir():
            return urls[0].toLocalFile()
        return None

    # ------------------------------------------------------------------ project
    def ask_open(self) -> None:
        """Open a project folder; a folder of photos without one is offered a new project."""
        from app.gui._new_project import offer_project

        parent = self.viewer.window._qt_window
        folder = QFileDialog.getExistingDirectory(parent, "Open a folder of photos or a project")
        if not folder:
            return
        if (Path(folder) / INDEX_NAME).exists():
            self.open_project(folder)
            return
        try:
            new = offer_project(parent, folder)
        except OSError as e:  # an unreadable folder
            self._error(f"Cannot read {folder}: {e}")
            return
        if new is not None:
            self.start_project(new.photos, new.root, new.labels)

    def start_project(self, photos: Path, root: Path, labels=None) -> Job | None:
        """Create the project and import ``labels`` in a job, then open it on its first photo."""
        from ml.datasets.project_start import start_project

        job = Job("new project", start_project, photos, root, labels)
        job.succeeded.connect(self._on_project_started)
        job.failed.connect(lambda msg: self._error(f"Cannot create the project: {msg}"))
        try:
            return self.batch.run_job(job)
        except RuntimeError as e:  # another job is running
            self._error(f"{e}; start the project when it ends")
            return None

    def _on_project_started(self, started) -> None:
        if started is None or self.open_project(started.root) is None:
            return
        self.viewer.status = started.summary()
        imported = started.imported
        problems = imported.problems() + list(imported.warnings) if imported else []
        if problems:
            more = f"\n… and {len(problems) - 10} more" if len(problems) > 10 else ""
            self._error(f"{started.summary()}\n" + "\n".join(problems[:10]) + more)

    def open_project(self, folder: str | Path) -> Project | None:
        try:
            project = Project.open_or_create(folder)
        except Exception as e:  # shown, never raised into the event loop
            self._error(f"Cannot open {folder}: {e}")
            return None
        self.session.set_project(project)
        self.project = project
        add_recent(project.root)
        self.annotate.set_classes(project.classes)
        self.layers.set_draw_class(self.annotate.picker.current)
        self.training.set_project(project)
        self.metadata.set_project(project)
        self.projects.set_project(project)
        if project.keys():
            self.projects.step(0)  # selects the first image, which shows it
        self._warn_unreadable(project)
        self.batch.sync()
        self.blade_map.refresh()
        self.update_title()
        return project

    def _warn_unreadable(self, project: Project) -> None:
        """Name the photos that cannot be read (listed, skipped by every job) once on open."""
        bad = unreadable(project)
        if bad:
            lines = [f"{k}: {why}" for k, why in list(bad.items())[:10]]
            more = f"\n… and {len(bad) - 10} more" if len(bad) > 10 else ""
            self._error(f"{len(bad)} photo(s) cannot be read; every job skips them:\n"
                        + "\n".join(lines) + more)

    def show_key(self, key: str) -> None:
        if self.project is None:
            return
        try:
            self.session.open(key)
        except Exception as e:
            self._error(f"Cannot show {key}: {e}")
            return
        self.projects.select(key)
        self._refresh_review()
        self.annotate.show_reviewed(self.project.record(key).reviewed)
        self.batch.sync()
        self.update_title()

    def go_to_region(self, key: str, bbox: tuple[int, int, int, int]) -> None:
        """Show photo ``key`` (if another is on screen) zoomed to a finding's box."""
        if key != self.session.key:
            self.show_key(key)
        if key == self.session.key:
            self.layers.zoom_to(bbox)

    def update_title(self, state: str = "saved") -> None:
        if self.project is None:
            self.viewer.title = C.APP_TITLE
            return
        key = self.session.key
        where = ""
        if key is not None:
            keys = self.project.keys()
            where = f" — {key} ({keys.index(key) + 1}/{len(keys)})"
        self.viewer.title = f"{self.project.name}{where} — {state} — {C.APP_TITLE}"

    def _set_state(self, state: str) -> None:
        self.annotate.state.setText(state)
        self.update_title(state)

    def _on_saved(self, key: str) -> None:
        self.projects.update_status(key)
        if not self.session.has_pending():
            self._set_state("saved")

    def _on_save_failed(self, message: str) -> None:
        self._set_state("NOT saved")
        self._error(message)

    def _error(self, message: str) -> None:
        self.viewer.status = message
        if not getattr(self, "quiet", False):
            QMessageBox.warning(self.viewer.window._qt_window, C.APP_TITLE, message)

    # ------------------------------------------------------------------ annotation
    def choose_class(self, cls: int) -> None:
        if self.project is None or not self.annotate.picker.choose(cls, emit=False):
            return
        self.layers.set_draw_class(cls)
        self.layers.reclass_selected(cls)

    def manage_classes(self) -> None:
        if self.project is None:
            return
        dlg = ClassManager(self.project.classes, self.viewer.window._qt_window)
        if dlg.exec():
            self.apply_classes(dlg.classes())

    def apply_classes(self, classes) -> None:
        self.project.set_classes(classes)
        self.annotate.set_classes(self.project.classes)
        self.layers.set_classes(self.project.classes)
        self.layers.set_draw_class(self.annotate.picker.current)

    def _set_reviewed(self, value: bool) -> None:
        if self.project is not None and self.session.key is not None:
            self.project.set_reviewed(self.session.key, value)
            self.projects.update_status(self.session.key)

    def _refresh_review(self) -> None:
        shown = self.project is not None and self.session.key is not None
        if self.session.compare == "previous":
            self.review.set_diff(self.session.diff if shown else None,
                                 self.project.class_names() if self.project else [])
        else:
            self.review.set_corrections(
                self.project.load_student_extra(self.session.key, "corrections") if shown
                else None)
        self.review.set_can_undo(self.session.can_undo_accept())

    def set_compare(self, mode: str) -> None:
        """The Corrections dock compares the student with the teacher or the previous model."""
        self.session.set_compare(mode)
        self._refresh_review()

    def accept_corrections(self) -> None:
        if self.session.accept_corrections():
            self._set_state("saving…")
        self._refresh_review()

    def undo_accept(self) -> None:
        self.session.undo_accept()
        self._refresh_review()

    # ------------------------------------------------------------------ jobs
    def predict_with_new_model(self, model_dir: str) -> Job | None:
        """Predict every photo with a newly trained model; the Train panel shows its progress."""
        if self.batch.is_busy():
            self.training.predict_status.setText("another job is running; predict when it ends")
            self.training.predict_status.show()
            return None
        return self.batch.predict(all_images=True, model_dir=model_dir,
                                  on_start=self.training.follow)

    def _on_job_finished(self, job: Job) -> None:
        self.session.reload_masks()
        self.projects.refresh_all()
        self._refresh_review()
        if job.name.startswith("pseudo-label"):  # photos to train on may be new: plan for them
            self.training.settings.replan_if_missing()

    def show_weights(self) -> None:
        from app.gui._weights_dialog import WeightsDialog

        dlg = WeightsDialog(self.viewer.window._qt_window)
        dlg.finished.connect(lambda _r: (self.batch.refresh_teachers(),
                                         self.training.settings.refresh_backbones()))
        dlg.show()
        self.weights_dialog = dlg

    def ask_export(self) -> None:
        from ml.datasets.export import FORMATS

        if self.project is None:
            return
        parent = self.viewer.window._qt_window
        fmt, ok = QInputDialog.getItem(parent, "Export masks", "Format", list(FORMATS), 0, False)
        if not ok:
            return
        source, ok = QInputDialog.getItem(parent, "Export masks", "Masks",
                                          ["reviewed", "student", "teacher"], 0, False)
        out = QFileDialog.getExistingDirectory(parent, "Export to folder") if ok else ""
        if out:
            self.batch.run_job(Job(f"export {fmt}", _export, self.project, fmt, source, out))

    def ask_report(self) -> None:
        if self.project is None:
            return
        out = QFileDialog.getExistingDirectory(self.viewer.window._qt_window, "Report folder")
        if out:
            self.batch.run_job(Job("report", _report, self.project, out))

    def shutdown(self) -> None:
        """Save pending edits, cancel jobs and stop a training worker (window closing)."""
        self.projects.thumbs.stop()
        self.metadata.stop()
        self.blade_map.stop()
        self.findings.changes.stop()
        if self.batch.job is not None:
            self.batch.job.cancel()
        if self.training.process.is_running():
            self.training.process.stop()
            if not self.training.process.wait(C.STOP_GRACE_MS):
                self.training.process.proc.kill()
        self.session.close()


