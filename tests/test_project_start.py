"""Starting a project over a folder of photos with the labels found beside it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from app.cli import main
from ml.datasets.project_start import find_labels, label_class_names, start_project
from ml.project.store import Project


def photos(folder, names=("a.png", "b.png", "c.png")):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(folder / n)
    return folder


def yolo(folder, stems, line="0 0.5 0.5 0.4 0.5\n"):
    folder.mkdir(parents=True, exist_ok=True)
    for s in stems:
        (folder / f"{s}.txt").write_text(line)
    return folder


@pytest.mark.parametrize("where", ["beside", "inside", "same", "split"])
def test_yolo_labels_are_found_where_datasets_keep_them(tmp_path, where):
    if where == "split":  # dataset/images/train <-> dataset/labels/train
        imgs = photos(tmp_path / "ds" / "images" / "train")
        labels = yolo(tmp_path / "ds" / "labels" / "train", ["a", "b"])
    else:
        imgs = photos(tmp_path / "ds" / "images")
        labels = {"beside": tmp_path / "ds" / "labels", "inside": imgs / "labels",
                  "same": imgs}[where]
        yolo(labels, ["a", "b"])
    (labels / "notes.txt").write_text("not a label: no photo is called notes")
    found = find_labels(imgs)
    assert [(f.kind, f.path, f.files) for f in found] == [("yolo", labels.resolve(), 2)]


def test_nothing_is_found_without_labels_or_photos(tmp_path):
    assert find_labels(photos(tmp_path / "p")) == []
    (tmp_path / "empty").mkdir()
    yolo(tmp_path / "empty", ["a"])
    assert find_labels(tmp_path / "empty") == []  # no photos: nothing to label


def test_yolo_names_become_the_project_classes_and_boxes_are_imported(tmp_path):
    imgs = photos(tmp_path / "ds" / "images")
    labels = yolo(tmp_path / "ds" / "labels", ["a", "c"], "1 0.5 0.5 0.4 0.5\n")
    (tmp_path / "ds" / "data.yaml").write_text("names:\n  0: crack\n  1: erosion\n")
    found = find_labels(imgs)[0]
    assert label_class_names(found) == ["crack", "erosion"]
    started = start_project(imgs, tmp_path / "proj", found)
    assert started.root == (tmp_path / "proj").resolve()
    assert started.classes == ("crack", "erosion")
    assert started.imported.images_matched == 2 and started.imported.boxes_added == 2
    p = Project.open(tmp_path / "proj")
    assert p.image_root == imgs.resolve()
    box = p.record("a.png").boxes[0]
    assert box.cls == p.class_id("erosion") and box.xyxy == pytest.approx((15, 10, 35, 30))
    assert "2 boxes on 2 images" in started.summary() and str(labels.resolve()) in started.summary()


def test_a_split_dataset_keeps_its_names_at_its_root(tmp_path):
    # the layout b2p's own YOLO export writes: OUT/classes.txt, OUT/images/train, OUT/labels/train
    from ml.datasets.yolo import write_class_names

    imgs = photos(tmp_path / "out" / "images" / "train")
    yolo(tmp_path / "out" / "labels" / "train", ["a", "b"], "1 0.5 0.5 0.4 0.5\n")
    write_class_names(tmp_path / "out", ["soiling", "crack"])
    found = find_labels(imgs)
    assert label_class_names(found[0]) == ["soiling", "crack"]
    started = start_project(imgs, tmp_path / "p", found[0])
    assert started.classes == ("soiling", "crack") and started.imported.boxes_added == 2


def test_coco_is_found_first_and_its_categories_name_the_classes(tmp_path):
    imgs = photos(tmp_path / "ds" / "images")
    yolo(tmp_path / "ds" / "labels", ["a"])
    coco = {"images": [{"id": 7, "file_name": "b.png"}],
            "categories": [{"id": 3, "name": "erosion"}, {"id": 1, "name": "crack"}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 2, 10, 5]}]}
    (tmp_path / "ds" / "coco.json").write_text(json.dumps(coco))
    (tmp_path / "ds" / "other.json").write_text(json.dumps({"not": "coco"}))
    found = find_labels(imgs)
    assert [f.kind for f in found] == ["coco", "yolo"]
    assert label_class_names(found[0]) == ["crack", "erosion"]  # in category id order
    started = start_project(imgs, labels=found[0])  # default: the project in the photo folder
    p = Project.open(imgs)
    assert started.root == imgs.resolve() and p.class_names()[1:] == ["crack", "erosion"]
    assert [(b.xyxy, b.cls) for b in p.record("b.png").boxes] == [((1, 2, 11, 7), 2)]


def test_b2p_init_import_found_and_its_hint(tmp_path, capsys):
    imgs = photos(tmp_path / "ds" / "images")
    yolo(tmp_path / "ds" / "labels", ["a", "b", "c"])
    assert main(["init", str(tmp_path / "plain"), "--images", str(imgs)]) == 0
    out = capsys.readouterr().out
    assert "found YOLO labels" in out and "b2p import" in out
    assert all(not r.boxes for r in Project.open(tmp_path / "plain").images.values())
    assert main(["init", str(tmp_path / "p"), "--images", str(imgs), "--import-found"]) == 0
    assert "3 boxes on 3 images" in capsys.readouterr().out
    assert all(len(r.boxes) == 1 for r in Project.open(tmp_path / "p").images.values())
    rc = main(["init", str(tmp_path / "q"), "--import-found", "--classes", "a,b"])
    assert rc == 1 and "drop --classes" in capsys.readouterr().err
