"""What the Inspector does with whole projects: open or start one, import photos, export,
report, weights.

:class:`ProjectActions` is the half of :class:`app.gui._main.Inspector` behind the project menu
and drag-and-drop (the Inspector provides the viewer, the panels and ``open_project``); the jobs
it starts run the same ``ml`` functions as ``b2p import --photos``, ``b2p export`` and
``b2p report``.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import QFileDialog, QInputDialog

from app.gui._jobs import Job
from ml.project.files import SOURCES
from ml.project.store import Project, is_project


def export_job(project, fmt, source, out, progress=None, should_stop=None):
    """Export the project's masks (run as a Job: torch-free until it starts)."""
    from ml.datasets.export import export_masks

    return export_masks(project, fmt, source, out, progress=progress, should_stop=should_stop)


def import_photos_job(project, folder, progress=None, should_stop=None):
    """Bring a folder of photos in as the next inspection (run as a Job; b2p import --photos)."""
    from ml.findings.photo_import import import_photos

    return import_photos(project, folder, progress=progress, should_stop=should_stop)


def report_job(project, out, progress=None, should_stop=None):
    """Write the inspection report (run as a Job)."""
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


class ProjectActions:
    """Project dialogs and jobs of the Inspector (which provides ``viewer``, ``project``,
    ``batch``, ``training``, ``open_project`` and ``_error``)."""

    @staticmethod
    def _dropped_folder(event) -> str | None:
        mime = event.mimeData()
        urls = mime.urls() if mime is not None and mime.hasUrls() else []
        if len(urls) == 1 and urls[0].isLocalFile() and Path(urls[0].toLocalFile()).is_dir():
            return urls[0].toLocalFile()
        return None

    def ask_open(self) -> None:
        """Open a project folder; a folder of photos without one is offered a new project."""
        from app.gui._new_project import offer_project

        parent = self.viewer.window._qt_window
        folder = QFileDialog.getExistingDirectory(parent, "Open a folder of photos or a project")
        if not folder:
            return
        if is_project(folder):
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

        return self._start(Job("new project", start_project, photos, root, labels),
                           self._on_project_started, "Cannot create the project",
                           "start the project when it ends")

    def _start(self, job: Job, done, failed: str, when_busy: str) -> Job | None:
        """Run ``job`` with ``done`` on success; ``failed: MSG`` or ``ERR; when_busy`` shown."""
        job.succeeded.connect(done)
        job.failed.connect(lambda msg: self._error(f"{failed}: {msg}"))
        try:
            return self.batch.run_job(job)
        except RuntimeError as e:  # another job is running
            self._error(f"{e}; {when_busy}")
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

    def ask_import_photos(self) -> None:
        """Pick a folder of new photos and import it as the project's next inspection."""
        if self.project is None:
            return
        folder = QFileDialog.getExistingDirectory(self.viewer.window._qt_window,
                                                  "Import a folder of photos (next inspection)")
        if folder:
            self.import_photos(folder)

    def import_photos(self, folder: str | Path) -> Job | None:
        """Import ``folder`` in a job; the photo list shows the new photos when it ends."""
        return self._start(Job("import photos", import_photos_job, self.project, str(folder)),
                           self._on_photos_imported, f"Cannot import {folder}",
                           "import the photos when it ends")

    def _on_photos_imported(self, result) -> None:
        if result is None or self.project is None:
            return
        key = self.session.key
        self.projects.set_project(self.project)
        self.metadata.set_project(self.project)
        if key is not None:
            self.projects.select(key)
        self.blade_map.refresh()
        problems = list(result.warnings) + result.problems()
        self.viewer.status = result.summary().replace("\n", "; ")
        if problems:
            self._error("\n".join([result.summary(), *problems[:10]]))

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
                                          list(reversed(SOURCES)), 0, False)  # reviewed first
        out = QFileDialog.getExistingDirectory(parent, "Export to folder") if ok else ""
        if out:
            self.batch.run_job(Job(f"export {fmt}", export_job, self.project, fmt, source, out))

    def ask_report(self) -> None:
        if self.project is None:
            return
        out = QFileDialog.getExistingDirectory(self.viewer.window._qt_window, "Report folder")
        if out:
            self.batch.run_job(Job("report", report_job, self.project, out))
