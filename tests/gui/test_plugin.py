"""The app as a napari plugin: the manifest validates and napari's plugin machinery opens it."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "app" / "napari.yaml"
PLUGIN = "boxes2pixels"
WIDGETS = {  # display name in napari's Plugins menu -> the app's panel class it hosts
    "Project": "ProjectPanel",
    "Metadata": "MetadataPanel",
    "Annotate": "AnnotatePanel",
    "Pseudo-label / predict": "BatchPanel",
    "Train": "TrainingPanel",
    "Findings": "FindingsPanel",
    "Corrections": "ReviewPanel",
}


def test_npe2_validate_passes_with_imports():
    from npe2.cli import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["validate", str(MANIFEST), "--imports"])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_manifest_is_registered_through_the_napari_entry_point():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        pytest.skip("tomllib needs Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["napari.manifest"][PLUGIN] == "app:napari.yaml"
    assert "napari.yaml" in project["tool"]["setuptools"]["package-data"]["app"]
    installed = [ep for ep in metadata.entry_points(group="napari.manifest") if ep.name == PLUGIN]
    if not installed:
        pytest.skip("installed metadata predates the entry point: pip install -e . again")
    assert installed[0].value == "app:napari.yaml"


def test_manifest_names_our_widgets_and_reader():
    from npe2 import PluginManifest

    mf = PluginManifest.from_file(MANIFEST)
    assert mf.name == PLUGIN
    names = {w.display_name for w in mf.contributions.widgets}
    assert set(WIDGETS) | {"Export"} == names
    (reader,) = mf.contributions.readers
    assert reader.accepts_directories


@pytest.fixture
def plugin_pm():
    """npe2's plugin manager with our plugin, found by discovery (or from the file if stale)."""
    from npe2 import PluginManager, PluginManifest

    pm = PluginManager.instance()
    pm.discover()
    if PLUGIN not in pm:  # editable install made before the entry point existed
        pm.register(PluginManifest.from_file(MANIFEST))
    return pm


@pytest.mark.gui
def test_widgets_open_through_napari_and_share_one_inspector(make_napari_viewer, plugin_pm,
                                                             photos):
    from app.gui import _plugin

    viewer = make_napari_viewer()
    hosts = {}
    for name, panel_cls in WIDGETS.items():
        dock, host = viewer.window.add_plugin_dock_widget(PLUGIN, name)
        assert type(host.panel).__name__ == panel_cls
        assert dock.isVisibleTo(viewer.window._qt_window)
        hosts[name] = host
    _dock, export = viewer.window.add_plugin_dock_widget(PLUGIN, "Export")
    inspectors = {id(h.inspector) for h in [*hosts.values(), export]}
    assert len(inspectors) == 1  # one Inspector per viewer, its panels in napari's docks
    ins = export.inspector
    assert hosts["Annotate"].panel is ins.annotate and hosts["Train"].panel is ins.training
    # opening the same widget again shows the existing dock (napari's bookkeeping, not ours)
    _d, again = viewer.window.add_plugin_dock_widget(PLUGIN, "Annotate")
    assert again is hosts["Annotate"]
    ins.quiet = True
    assert ins.open_project(photos) is not None
    assert hosts["Project"].panel.list.count() == 5
    ins.shutdown()
    assert _plugin.inspector_for(viewer) is ins


@pytest.mark.gui
def test_reader_opens_a_project_folder_into_our_docks(make_napari_viewer, plugin_pm, photos):
    from app.gui import _constants as C
    from app.gui import _plugin
    from ml.project.store import Project

    Project.create(photos)
    viewer = make_napari_viewer()
    assert _plugin.get_project_reader(str(photos.parent)) is None  # not a project: not ours
    viewer.open(str(photos), plugin=PLUGIN)
    ins = _plugin.inspector_for(viewer)
    ins.quiet = True
    assert ins.project is not None and ins.project.root == photos
    assert C.LAYER_IMAGE in viewer.layers and C.LAYER_BOXES in viewer.layers
    assert viewer.layers[C.LAYER_IMAGE].data.shape[:2] == (64, 80)
    docks = set(viewer.window._wrapped_dock_widgets)  # napari names them "Widget (plugin)"
    assert {f"Project ({PLUGIN})", f"Annotate ({PLUGIN})"} <= docks
    ins.shutdown()
