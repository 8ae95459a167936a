"""The app's menu in napari's menu bar: open, recent, classes, weights, export, report."""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import QMenu, QMenuBar

from app.gui._recent import recent_projects
from app.gui._resources import icon


class ProjectMenu(QMenu):
    """Actions call back into the parent; the recent list is rebuilt each time it opens."""

    def __init__(self, bar: QMenuBar, handlers: dict[str, Callable[..., object]]) -> None:
        super().__init__("&Boxes2Pixels", bar)
        self.handlers = handlers
        open_act = self.addAction(icon("fa5s.folder-open"), "Open folder…",
                                  handlers["open"])
        open_act.setShortcut(QKeySequence("Ctrl+Alt+O"))
        self.recent = self.addMenu("Open recent")
        self.recent.aboutToShow.connect(self._fill_recent)
        self.addSeparator()
        self.addAction(icon("fa5s.tags"), "Classes…", handlers["classes"])
        self.addAction(icon("fa5s.download"), "Weights…", handlers["weights"])
        self.addSeparator()
        self.export_act = self.addAction(icon("fa5s.file-export"), "Export masks…",
                                         handlers["export"])
        self.report_act = self.addAction(icon("fa5s.file-alt"), "Write report…",
                                         handlers["report"])
        bar.addMenu(self)

    def _fill_recent(self) -> None:
        self.recent.clear()
        paths = recent_projects()
        for p in paths:
            self.recent.addAction(p, lambda p=p: self.handlers["open_path"](p))
        if not paths:
            self.recent.addAction("(none)").setEnabled(False)
