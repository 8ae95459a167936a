"""The app as a napari plugin: dock widgets and a project-folder reader for ``napari.yaml``.

Every widget is a host around one panel of the same :class:`~app.gui.Inspector` that
``b2p gui`` builds, so the plugin and the app share their code and wiring. One Inspector is
made per viewer, the first time any of our widgets (or the reader) is opened there.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from app.gui._resources import icon
from ml.project.store import DB_NAME, INDEX_NAME, is_project

PLUGIN_NAME = "boxes2pixels"  # the distribution name; napari.yaml's ``name``
_INSPECTORS: dict[int, object] = {}  # id(viewer) -> its Inspector, dropped with the window


def _real_viewer(viewer):
    """napari hands plugins a PublicOnlyProxy; the Inspector needs the viewer's window."""
    return getattr(viewer, "__wrapped__", viewer)


def inspector_for(viewer):
    """The viewer's Inspector, made on first use with its panels kept for our dock hosts."""
    from app.gui._main import Inspector

    viewer = _real_viewer(viewer)
    ins = _INSPECTORS.get(id(viewer))
    if ins is not None:
        return ins
    ins = Inspector(viewer, dock=False)  # as a plugin, napari docks our hosts instead
    key = id(viewer)
    _INSPECTORS[key] = ins
    viewer.window._qt_window.destroyed.connect(lambda *_: _INSPECTORS.pop(key, None))
    return ins


class _PanelHost(QWidget):
    """A dock widget showing one panel (attribute ``PANEL``) of the viewer's Inspector."""

    PANEL = ""

    def __init__(self, napari_viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.inspector = inspector_for(napari_viewer)
        self.panel = self.make_panel()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.panel)

    def make_panel(self) -> QWidget:
        return getattr(self.inspector, self.PANEL)


class ProjectWidget(_PanelHost):
    """Images of the project with their status; opens a project folder."""

    PANEL = "projects"


class MetadataWidget(_PanelHost):
    """Turbine, blade, side, date, distance and GSD of the selected photos; auto-fill."""

    PANEL = "metadata"


class AnnotateWidget(_PanelHost):
    """Class picker, box undo/redo and the reviewed flag."""

    PANEL = "annotate"


class TeacherWidget(_PanelHost):
    """Pseudo-label with a teacher (SAM, GrabCut, box) and predict with the student."""

    PANEL = "batch"


class TrainWidget(_PanelHost):
    """Train the student in the supervised worker process."""

    PANEL = "training"


class CorrectionsWidget(_PanelHost):
    """Review the student's corrections of the pseudo-masks."""

    PANEL = "review"


class FindingsWidget(_PanelHost):
    """Review the findings: severity, note and accept per defect region, by keyboard."""

    PANEL = "findings"


class ExportWidget(_PanelHost):
    """Export masks and write the inspection report (the app's menu actions, as buttons)."""

    def make_panel(self) -> QWidget:
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.addWidget(QLabel("Export the project's masks or write an inspection report."))
        for text, icon_name, slot in (("Export masks…", "fa5s.file-export", self._export),
                                      ("Write report…", "fa5s.file-alt", self._report)):
            btn = QPushButton(icon(icon_name), text)
            btn.clicked.connect(slot)
            layout.addWidget(btn)
        layout.addStretch(1)
        return panel

    def _export(self) -> None:
        self.inspector.ask_export()

    def _report(self) -> None:
        self.inspector.ask_report()


def _project_folder(path: str | list[str]) -> Path | None:
    """The project folder that ``path`` (the folder or its index file) names, if any."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(path)
    folder = p.parent if p.name in (INDEX_NAME, DB_NAME) else p
    return folder if is_project(folder) else None


def get_project_reader(path: str | list[str]):
    """npe2 reader: a Boxes2Pixels project folder opens in our docks; other paths are not ours."""
    return _read_project if _project_folder(path) is not None else None


def _read_project(path: str | list[str]) -> list[tuple]:
    import napari

    viewer = napari.current_viewer()
    if viewer is None:
        raise RuntimeError("a Boxes2Pixels project opens in a napari window; none is open")
    for name in ("Project", "Annotate"):
        viewer.window.add_plugin_dock_widget(PLUGIN_NAME, name)
    inspector_for(viewer).open_project(_project_folder(path))
    return [(None,)]  # napari's "handled, no layers to add": the Inspector made its own layers
