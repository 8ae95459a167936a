"""Notices what other processes change in the open project (a CLI, a worker, a second window).

A timer asks :meth:`Project.changed_elsewhere` (SQLite's data_version: one cheap query) every
:data:`POLL_MS`; ``changed`` tells the window to show the stored state again. It also keeps
the daily automatic backup while the project is open.
"""

from __future__ import annotations

from qtpy.QtCore import QObject, QTimer, Signal

from ml.project.store import Project, ProjectError

POLL_MS = 1000  # changes made elsewhere show within about this long
DAILY_S = 24 * 3600


class ProjectWatcher(QObject):
    """Emits ``changed`` when another writer changed the project being shown."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self._ticks = 0
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)

    def set_project(self, project: Project | None) -> None:
        self.project = project
        if project is None:
            self.timer.stop()
            return
        project.changed_elsewhere()  # the baseline: what is shown now
        self._ticks = 0
        self.timer.start()

    def poll(self) -> bool:
        """True (and ``changed`` emitted) when the project changed since the last poll."""
        p = self.project
        if p is None:
            return False
        self._ticks += 1
        try:
            if self._ticks % 3600 == 1:  # once an hour: is the daily backup due?
                p.auto_backup("daily", older_than_s=DAILY_S)
            changed = p.changed_elsewhere()
        except ProjectError:  # a project gone or damaged meanwhile: the next action says so
            return False
        if changed:
            self.changed.emit()
        return changed
