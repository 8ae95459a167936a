"""Fixtures for the desktop app tests: a tiny synthetic project and an Inspector on a viewer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gui.helpers import write_photos


@pytest.fixture(autouse=True)
def _private_qsettings(tmp_path, qapp):
    """Keep recent-project lists out of the real user settings."""
    from qtpy.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qs"))
    yield


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    write_photos(folder)
    return folder


@pytest.fixture
def inspector(make_napari_viewer):
    from app.gui import Inspector

    viewer = make_napari_viewer(show=True)
    ins = Inspector(viewer)
    ins.quiet = True  # errors go to the status bar, not modal boxes
    yield ins
    ins.shutdown()
