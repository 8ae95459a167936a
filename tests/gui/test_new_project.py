"""Open folder on photos without a project: the offer, where it goes, the labels imported."""

from __future__ import annotations

import json

import pytest
from qtpy.QtWidgets import QFileDialog, QMessageBox

from app.gui import _new_project
from tests.gui.helpers import write_photos

pytestmark = pytest.mark.gui


def yolo_dataset(root):
    """dataset/images (5 photos, 64x80) beside dataset/labels (YOLO) and classes.txt."""
    images, labels = root / "dataset" / "images", root / "dataset" / "labels"
    names = write_photos(images)
    labels.mkdir()
    for n in names[:4]:  # the fifth photo has no label file
        (labels / n.replace(".png", ".txt")).write_text("0 0.25 0.47 0.25 0.31\n"
                                                        "1 0.75 0.625 0.25 0.31\n")
    (labels / "classes.txt").write_text("crack\nerosion\n")
    return images, labels


def answer(monkeypatch, button: str, folders: list[str]):
    """Make the next message box click ``button`` and folder dialogs return ``folders``."""
    asked: list[str] = []

    def exec_(box):
        asked.append(box.text() + "\n" + box.informativeText())
        if button == "Cancel":
            box.button(QMessageBox.StandardButton.Cancel).click()
        else:
            next(b for b in box.buttons() if b.text() == button).click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", exec_)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: folders.pop(0) if folders else ""))
    return asked


def test_open_folder_offers_a_project_imports_yolo_labels_and_shows_the_first_photo(
        inspector, tmp_path, monkeypatch, qtbot):
    images, labels = yolo_dataset(tmp_path)
    asked = answer(monkeypatch, _new_project.CREATE_HERE, [str(images)])
    inspector.ask_open()
    assert "5 photo(s)" in asked[0] and str(labels) in asked[0]
    qtbot.waitUntil(lambda: inspector.project is not None, timeout=10000)
    project = inspector.project
    assert project.root == images.resolve()
    assert project.class_names() == ["background", "crack", "erosion"]  # from classes.txt
    rec = project.record("img0.png")
    assert [(b.cls, b.source) for b in rec.boxes] == [(1, "imported"), (2, "imported")]
    x0, y0, x1, y1 = rec.boxes[0].xyxy
    assert (round(x0), round(y0), round(x1), round(y1)) == (10, 20, 30, 40)
    assert project.record("img4.png").boxes == []
    # started: the first photo is on screen with its boxes, the status names the import
    assert inspector.session.key == "img0.png"
    assert len(inspector.layers.boxes.data) == 2
    assert "8 boxes on 4 images" in inspector.viewer.status


def test_the_project_can_go_into_another_folder_and_cancel_creates_nothing(
        inspector, tmp_path, monkeypatch, qtbot):
    photos = tmp_path / "photos"
    write_photos(photos, n=3)
    answer(monkeypatch, "Cancel", [str(photos)])
    inspector.ask_open()
    assert not (photos / "project.sqlite").exists() and inspector.project is None

    elsewhere = tmp_path / "projects" / "blade7"
    elsewhere.mkdir(parents=True)
    asked = answer(monkeypatch, _new_project.CHOOSE_FOLDER, [str(photos), str(elsewhere)])
    inspector.ask_open()
    assert "No YOLO or COCO labels" in asked[0]
    qtbot.waitUntil(lambda: inspector.project is not None, timeout=10000)
    assert inspector.project.root == elsewhere.resolve()
    assert inspector.project.image_root == photos.resolve()
    assert not (photos / "project.sqlite").exists()
    assert inspector.session.key == "img0.png"
    # an existing project opens at once, without an offer
    answer(monkeypatch, "Cancel", [str(elsewhere)])
    inspector.ask_open()
    assert inspector.project.root == elsewhere.resolve()


def test_coco_labels_beside_the_photos_give_the_project_their_classes(
        inspector, tmp_path, monkeypatch, qtbot):
    photos = tmp_path / "photos"
    names = write_photos(photos, n=2)
    coco = {"images": [{"id": i, "file_name": n} for i, n in enumerate(names)],
            "categories": [{"id": 1, "name": "lightning"}, {"id": 2, "name": "erosion"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [5, 6, 20, 10]}]}
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    answer(monkeypatch, _new_project.CREATE_HERE, [str(photos)])
    inspector.ask_open()
    qtbot.waitUntil(lambda: inspector.project is not None, timeout=10000)
    p = inspector.project
    assert p.class_names() == ["background", "lightning", "erosion"]
    assert [b.xyxy for b in p.record("img1.png").boxes] == [(5.0, 6.0, 25.0, 16.0)]
    assert p.record("img1.png").boxes[0].cls == p.class_id("erosion")
