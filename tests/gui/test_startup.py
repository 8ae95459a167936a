"""Start-up: preview, napari imported in the background, the viewer; geometry and last project."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from qtpy.QtCore import QRect, QSize, QTimer

from app.gui._recent import add_recent, last_project
from app.gui.startup import viewer_import as _viewer_import
from app.gui.startup.startup import Startup, folder_to_open
from tests.gui.helpers import write_photos

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def started(qapp, mock_app_model, monkeypatch):
    """Inspectors started by a test; closed after it as napari's own viewer fixture does
    (napari's window settings never saved), and checked to leave no viewer behind."""
    from napari._qt.qt_main_window import _QtMainWindow
    from napari._qt.qt_viewer import QtViewer

    monkeypatch.setattr(_QtMainWindow, "_save_current_window_settings", lambda _self: None)
    made: list = []
    yield made
    for ins in made:
        ins.viewer.close()  # a no-op for a viewer the test closed
    made.clear()
    qapp.processEvents()
    gc.collect()
    assert len(QtViewer._instances) == 0, "a started viewer was not freed"


def test_preview_stays_live_until_the_background_import_ends_then_hands_over(
        photos, started, monkeypatch, qtbot):
    release = threading.Event()
    ticks: list[int] = []
    real_warm = _viewer_import.warm_napari

    def slow_warm():  # the import ends only once the GUI thread has run a timer
        release.wait(30)
        real_warm()

    monkeypatch.setattr(_viewer_import, "warm_napari", slow_warm)
    start = Startup(photos)
    preview = start.preview
    assert preview.isVisible() and "img0.png" in preview.windowTitle()
    qtbot.waitUntil(lambda: preview.painted, timeout=10000)
    assert not start.importer.is_done()
    QTimer.singleShot(50, lambda: (ticks.append(1), release.set()))
    ins = start.finish()
    started.append(ins)
    assert ticks == [1]  # the event loop ran while finish() waited for the import
    assert start.importer.is_done() and start.importer.error == ""
    assert preview.handed_over and not preview.isVisible() and start.preview is None
    assert start.first_image_s is not None and start.ready_s is not None
    win = ins.viewer.window._qt_window
    assert win.isVisible()
    assert ins.session.key == "img0.png"
    assert ins.layers.image.data.shape == (64, 80, 3)
    assert ins.projects.list.count() == 5


def test_closing_the_preview_while_napari_loads_ends_the_start(photos, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(_viewer_import, "warm_napari", lambda: release.wait(30))
    start = Startup(photos)
    QTimer.singleShot(20, start.preview.close)
    try:
        assert start.finish() is None and start.cancelled
    finally:
        release.set()


def test_window_opens_maximised_first_then_where_it_was_closed(photos, started, qtbot):
    start = Startup(photos)
    preview = start.preview.geometry()
    first = start.finish()
    started.append(first)
    win = first.viewer.window._qt_window
    assert win.isMaximized()
    assert preview == win.geometry()  # the preview stood where the window opens
    assert win.screen().availableGeometry().contains(win.frameGeometry())
    assert win.minimumSizeHint().height() <= 1040  # the docks scroll: it fits a 1080-px screen
    avail = win.screen().availableGeometry()
    # a normal size the window can take whatever its docks need: four fifths of the screen
    # (the docks' minimum sizes differ between a first start and a restored layout)
    size = win.minimumSizeHint().expandedTo(QSize(avail.width() * 4 // 5,
                                                  avail.height() * 4 // 5))
    if size.height() + 30 > avail.height() or size.width() + 40 > avail.width():
        pytest.skip("the screen cannot hold the window un-maximised")
    target = QRect(avail.x() + 40, avail.y() + 30, size.width(), size.height())
    win.showNormal()
    win.setGeometry(target)
    qtbot.waitUntil(lambda: win.geometry() == target)
    first.viewer.close()  # the window's close saves its geometry
    start = Startup(photos)
    assert start.preview.geometry() == target  # the preview stands where the window will
    again = start.finish()
    started.append(again)
    win2 = again.viewer.window._qt_window
    assert not win2.isMaximized()
    assert win2.geometry() == target


def test_start_up_opens_the_project_once_and_hands_it_over(photos, started, monkeypatch):
    from ml.project.store import Project

    opened = []
    real = Project.open_or_create.__func__

    def counting(cls, folder, *a, **k):
        opened.append(folder)
        return real(cls, folder, *a, **k)

    monkeypatch.setattr(Project, "open_or_create", classmethod(counting))
    start = Startup(photos)
    ins = start.finish()
    started.append(ins)
    assert len(opened) == 1
    assert ins.project is start.project and ins.session.key == "img0.png"


def test_the_last_project_reopens(tmp_path, started):
    a, b = tmp_path / "a", tmp_path / "b"
    write_photos(a, n=2)
    write_photos(b, n=3)
    assert folder_to_open(None) is None  # nothing opened yet: no project, a plain window
    first = Startup(folder_to_open(a)).finish()
    started.append(first)
    first.open_project(b)
    first.viewer.close()
    assert folder_to_open(None) == str(b.resolve())
    again = Startup(folder_to_open(None)).finish()
    started.append(again)
    assert again.project.root == b.resolve()
    assert again.session.key == "img0.png"
    # a last project that is gone falls back to the one before it
    (b / "project.sqlite").unlink()
    assert last_project() == str(a.resolve())
    add_recent(a)
    assert folder_to_open(tmp_path / "other") == tmp_path / "other"  # asked for wins


@pytest.mark.slow  # a fresh Python starts the whole app
def test_start_up_imports_neither_torch_nor_timm(photos, tmp_path):
    code = ("import sys; from app.gui import Startup; s = Startup(sys.argv[1]); "
            "ins = s.finish(); s.app.processEvents(); "
            "print('ready', ins.session.key, sorted(m for m in ('torch', 'timm', 'torchvision') "
            "if m in sys.modules)); ins.shutdown(); ins.viewer.close()")
    # its settings (recent projects) in the test's folder, not the person's
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    out = subprocess.run([sys.executable, "-c", code, str(photos)], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=300)
    assert "ready img0.png []" in out.stdout, out.stderr[-2000:]


def test_start_up_objects_are_left_out_of_later_full_collections():
    import gc

    from app.gui import freeze_startup_objects

    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # the other tests' viewers must stay collectable
