"""The Inspector: napari viewer plus our docks, menus and shortcuts, wired to one project."""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import QEvent, QObject
from qtpy.QtGui import QKeySequence, QShortcut
from qtpy.QtWidgets import QMessageBox

from app.gui import _constants as C
from app.gui._annotate_panel import AnnotatePanel
from app.gui._batch_panel import BatchPanel
from app.gui._blade_map_panel import BladeMapPanel
from app.gui._class_manager import ClassManager
from app.gui._dock_layout import DockLayout
from app.gui._jobs import Job
from app.gui._layers import ImageLayers
from app.gui._menus import ProjectMenu, add_layout_actions
from app.gui._metadata_panel import MetadataPanel
from app.gui._navigation import PhotoNavigation
from app.gui._photo_cache import PhotoCache
from app.gui._project_actions import ProjectActions, unreadable
from app.gui._project_panel import ProjectPanel
from app.gui._recent import add_recent
from app.gui._review_panel import ReviewPanel
from app.gui._session import ImageSession
from app.gui._watch import ProjectWatcher
from app.gui._window_geometry import fit_width, scrolled, show_rows
from app.gui.findings.panel import FindingsPanel
from app.gui.review.panel import ReviewQueuePanel
from app.gui.training.panel import TrainingPanel
from ml.project.store import Project

__all__ = ["Inspector"]

FINDINGS_ROWS = 8  # the Findings table shows at least this many rows whenever it is shown


class Inspector(ProjectActions, PhotoNavigation, QObject):
    """Owns the docks and the image session; ``open_project`` and ``show_key`` drive it."""

    def __init__(self, viewer, dock: bool = True, read_ahead: bool = True) -> None:
        """``dock=False`` leaves the panels undocked (the napari plugin docks its own hosts);
        ``read_ahead=False`` reads each photo when it is shown, into a single-resolution
        layer (the photo change before the Review dock's read-ahead: the baseline of
        ``bench/review_latency.py``)."""
        super().__init__()
        self.viewer = viewer
        self.project: Project | None = None
        self._review_shown = False
        self.layers = ImageLayers(viewer, pyramid=read_ahead)
        self.session = ImageSession(self.layers, PhotoCache() if read_ahead else None)
        self.projects = ProjectPanel()
        self.annotate = AnnotatePanel()
        self.review = ReviewPanel()
        self.batch = BatchPanel(lambda: (self.project, self.session.key))
        self.training = TrainingPanel()
        self.metadata = MetadataPanel()
        self.findings = FindingsPanel(lambda: self.project)
        self.watcher = ProjectWatcher(self)  # other writers' changes show within ~1 s
        self.watcher.changed.connect(self.reload_from_store)
        self.blade_map = BladeMapPanel(lambda: self.project)
        self.proposals = ReviewQueuePanel(lambda: self.project)
        win = viewer.window
        self.docks = DockLayout(win) if dock else None
        if dock:  # the plugin docks its own hosts of the panels
            for panel, name, group in (
                    (self.annotate, "Annotate", "annotate"),
                    (scrolled(self.review), "Corrections", "annotate"),
                    (scrolled(self.findings), "Findings", "findings"),
                    (scrolled(self.batch), "Predict", "predict"),
                    (self.training, "Train", "train"),
                    (self.projects, "Project", "photos"),
                    (scrolled(self.metadata), "Metadata", "metadata"),
                    (scrolled(self.proposals), "Review", "predict"),
                    (scrolled(self.blade_map), "Blade map", "findings")):
                self.add_dock(panel, name, group)
            show_rows(self.findings.table, FINDINGS_ROWS)
        self._wire()
        self._shortcuts()
        self.menu = ProjectMenu(win.main_menu, {
            "open": self.ask_open, "open_path": self.open_project, "classes": self.manage_classes,
            "import_photos": self.ask_import_photos,
            "weights": self.show_weights, "export": self.ask_export, "report": self.ask_report})
        if self.docks is not None:
            self.docks.arrange()
            add_layout_actions(win.view_menu, self.docks)
        qt_viewer = win._qt_viewer
        qt_viewer.installEventFilter(self)
        win._qt_window.installEventFilter(self)
        self.update_title()

    def add_dock(self, widget, name: str, group: str):
        """Dock ``widget`` as ``name`` in tab group ``group`` (annotate, predict, train, findings,
        photos, metadata: :data:`app.gui._dock_layout.GROUPS`); None when undocked (plugin)."""
        if self.docks is None:
            return None
        fit_width(widget)
        return self.docks.add(widget, name, group)

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
        self.session.saved.connect(self.findings.photo_changed)
        self.batch.job_finished.connect(lambda _j: self.findings.refresh())
        self.findings.region_chosen.connect(self.go_to_region)
        self.blade_map.region_chosen.connect(self.go_to_region)
        self.proposals.show_proposal.connect(self.show_proposal)
        self.proposals.decided.connect(self._on_decided)
        self.batch.job_finished.connect(lambda _j: self.proposals.refresh())
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
            if self.docks is not None:
                self.docks.save()
                self.docks.release()
            self.shutdown()
        return False

    # ------------------------------------------------------------------ project
    def open_project(self, folder: str | Path | Project) -> Project | None:
        """Open ``folder`` (or show a ``Project`` already opened, as start-up hands it over)."""
        try:
            project = folder if isinstance(folder, Project) else Project.open_or_create(folder)
        except Exception as e:  # shown, never raised into the event loop
            self._error(f"Cannot open {folder}: {e}")
            return None
        self.session.set_project(project)
        self.project = project
        self._review_shown = False  # the Review dock turns the student's mask on once
        add_recent(project.root)
        self.annotate.set_classes(project.classes)
        self.layers.set_draw_class(self.annotate.picker.current)
        self.training.set_project(project)
        self.metadata.set_project(project)
        self.projects.set_project(project)
        self.watcher.set_project(project)
        if project.keys():
            self.projects.step(0)  # selects the first image, which shows it
        self._warn_unreadable(project)
        self.batch.sync()
        self.blade_map.refresh()
        self.proposals.refresh()
        self.update_title()
        return project

    def reload_from_store(self) -> None:
        """Another writer changed the project: show its photos, boxes, masks and findings as
        stored now (an edit in progress here is kept)."""
        if self.project is None:
            return
        if self.project.keys() != self.projects.keys():
            self.projects.set_project(self.project)  # photos added or removed
            if self.session.key is not None:
                self.projects.select(self.session.key)
        else:
            self.projects.refresh_all()
        self.session.reload_from_store()
        self.findings.refresh()
        self._set_state("changed elsewhere: reloaded")

    def _warn_unreadable(self, project: Project) -> None:
        """Name the photos that cannot be read (listed, skipped by every job) once on open."""
        bad = unreadable(project)
        if bad:
            lines = [f"{k}: {why}" for k, why in list(bad.items())[:10]]
            more = f"\n… and {len(bad) - 10} more" if len(bad) > 10 else ""
            self._error(f"{len(bad)} photo(s) cannot be read; every job skips them:\n"
                        + "\n".join(lines) + more)

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
            self.review.set_corrections(self.session.corrections if shown else None)
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
        if self.session.cache is not None:  # masks may be new: read again when shown
            self.session.cache.clear()
        self.session.reload_masks()
        self.projects.refresh_all()
        self._refresh_review()
        if job.name.startswith("pseudo-label"):  # photos to train on may be new: plan for them
            self.training.settings.replan_if_missing()

    def shutdown(self) -> None:
        """Save pending edits, cancel jobs and stop a training worker (window closing)."""
        self.closed = True  # work put off until after a paint is dropped
        self.watcher.set_project(None)
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


