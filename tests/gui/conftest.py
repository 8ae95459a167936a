"""Fixtures for the desktop app tests: a tiny synthetic project and an Inspector on a viewer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gui.helpers import write_photos


@pytest.fixture(autouse=True)
def _private_qsettings(tmp_path, qapp):
    """Keep recent projects and the window geometry out of the real user settings."""
    from qtpy.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    # QSettings(org, app), as the app makes them, use the native format: on Linux an ini file
    # under ~/.config unless its path is moved too
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "qs"))
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
