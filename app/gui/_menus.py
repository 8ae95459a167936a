"""The app's menu in napari's menu bar (open, recent, import photos, classes, weights, export,
report) and its layout actions in napari's View menu (napari panels, Reset layout)."""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import QMenu, QMenuBar

from app.gui._dock_layout import DockLayout
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
        self.import_act = self.addAction(icon("fa5s.images"), "Import photos…",
                                         handlers["import_photos"])
        self.import_act.setToolTip("Add a folder of new photos as the next inspection")
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


def add_layout_actions(view: QMenu, layout: DockLayout) -> None:
    """View → napari panels (napari's layer controls and layer list, hidden in the inspector's
    layout) and View → Reset layout (the docks as on first start, for this screen size)."""
    view.addSeparator()
    panels = view.addAction("napari panels")
    panels.setCheckable(True)
    panels.setToolTip("napari's layer controls and layer list")
    panels.toggled.connect(layout.show_napari_panels)
    view.aboutToShow.connect(lambda: _sync_checked(panels, layout.napari_panels_shown()))
    reset = view.addAction("Reset layout", layout.reset)
    reset.setToolTip("Put every dock back where it opens on first start on a screen this size")
    view.napari_panels_action, view.reset_layout_action = panels, reset  # for tests


def _sync_checked(action, on: bool) -> None:
    action.blockSignals(True)
    action.setChecked(on)
    action.blockSignals(False)
