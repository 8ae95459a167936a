"""Opening projects, the image list, navigation, recent projects and drag-and-drop."""

from __future__ import annotations

import pytest
from qtpy.QtCore import QMimeData, QPointF, Qt, QUrl
from qtpy.QtGui import QDropEvent

from app.gui._recent import recent_projects
from ml.project.store import Project
from tests.gui.helpers import focus_canvas, save_shot, write_photos

pytestmark = pytest.mark.gui


def test_open_folder_creates_project_lists_images_and_navigates(inspector, photos, qtbot,
                                                                  tmp_path):
    assert not (photos / "project.sqlite").exists()
    project = inspector.open_project(photos)
    assert (photos / "project.sqlite").exists()
    assert project.keys() == [f"img{i}.png" for i in range(5)]
    panel = inspector.projects
    assert panel.list.count() == 5
    assert panel.status_of("img0.png") == "no boxes · 0 boxes"
    # the first image is shown and the title says everything is saved
    assert inspector.session.key == "img0.png"
    assert inspector.layers.image.data.shape == (64, 80, 3)
    assert "photos" in inspector.viewer.title and "saved" in inspector.viewer.title
    # thumbnails come from a background thread and replace the placeholders
    seen: list[str] = []
    panel.thumbs.ready.connect(lambda k, _img: seen.append(k))
    panel.thumbs.start([(k, project.image_path(k)) for k in project.keys()])
    qtbot.waitUntil(lambda: len(seen) == 5, timeout=10000)
    # PageDown / PageUp step through the list
    canvas = focus_canvas(inspector, qtbot)
    qtbot.keyClick(canvas, Qt.Key.Key_PageDown)
    assert inspector.session.key == "img1.png"
    assert "(2/5)" in inspector.viewer.title
    qtbot.keyClick(canvas, Qt.Key.Key_PageUp)
    assert inspector.session.key == "img0.png"
    assert recent_projects()[0] == str(photos.resolve())
    save_shot(inspector.viewer, tmp_path, "01_project_open")


def test_dropping_a_folder_opens_it_and_bad_folders_are_reported(inspector, tmp_path):
    other = tmp_path / "other"
    write_photos(other, n=2)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(other))])
    drop = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    assert inspector.eventFilter(inspector.viewer.window._qt_viewer, drop)
    assert inspector.project is not None and inspector.project.root == other.resolve()
    assert inspector.projects.list.count() == 2
    # a folder with a broken old index is refused with a message, the open project stays
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "project.json").write_text("{not json")
    assert inspector.open_project(broken) is None
    assert "unreadable project index" in inspector.viewer.status
    assert inspector.project.root == other.resolve()
    # reopening an existing project keeps its data
    assert set(Project.open(other).keys()) == {"img0.png", "img1.png"}


def test_a_folder_with_a_bomb_and_broken_photos_opens_and_names_them(inspector, photos, qtbot):
    from tests.test_hostile_photos import bomb_png

    bomb_png(photos / "bomb.png")
    (photos / "empty.png").write_bytes(b"")
    project = inspector.open_project(photos)  # the bomb is first in the list: none is shown
    assert project is not None and "bomb.png" in project.keys()
    assert "2 photo(s) cannot be read" in inspector.viewer.status
    status = inspector.viewer.status
    assert "bomb.png: too large" in status and "empty.png: file is empty" in status
    seen: list[str] = []
    panel = inspector.projects
    panel.thumbs.ready.connect(lambda k, _img: seen.append(k))
    panel.thumbs.start([(k, project.image_path(k)) for k in project.keys()])
    good = {f"img{i}.png" for i in range(5)}
    # the loader the open started may still deliver some: wait for every good photo's
    qtbot.waitUntil(lambda: set(seen) >= good, timeout=10000)  # the broken keep placeholders
    assert "bomb.png" not in seen
    inspector.show_key("bomb.png")
    assert "Cannot show bomb.png" in inspector.viewer.status and "200 MP" in inspector.viewer.status
    assert inspector.session.key != "bomb.png"


def test_job_lists_the_failed_items_of_a_batch_result(qtbot):
    from app.gui._jobs import Job
    from ml.common.batch import BatchResult

    def batch(progress=None, should_stop=None):
        return BatchResult(action="done", total=2, done=("a",), failed={"b.png": "file is empty"})

    job = Job("test", batch)
    errors: list[str] = []
    job.item_error.connect(errors.append)
    with qtbot.waitSignal(job.finished, timeout=5000):
        job.start()
    assert errors == ["b.png: file is empty"]


def test_import_photos_adds_the_next_inspection(inspector, photos, qtbot, tmp_path):
    """The menu's Import photos runs ml.findings.photo_import (as b2p import --photos)."""
    from ml.findings.inspections import inspections

    project = inspector.open_project(photos)
    card = tmp_path / "card"
    write_photos(card, n=2)
    job = inspector.import_photos(card)
    assert job is not None
    qtbot.waitUntil(lambda: not job.is_running(), timeout=10000)
    qtbot.waitUntil(lambda: inspector.projects.list.count() == 7, timeout=5000)
    assert "new inspection" in inspector.viewer.status
    found, _ = inspections(project)
    assert [sorted(i.keys) for i in found] == [["card/img0.png", "card/img1.png"]]
    assert inspector.session.key == "img0.png"  # the photo on screen stays
    assert inspector.menu.import_act.text() == "Import photos…"
