"""YOLO exports as the dataset Ultralytics trains from: layout, split, photos, re-export."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest

from ml.datasets.export import export_masks
from ml.datasets.yolo_dataset import place_photo
from ml.project.split import split_keys
from ml.project.store import Project, ProjectError
from tests.conftest import write_photo

# two photos share the stem "a"; one keeps a dot in its stem; subfolders are kept
NAMES = ["a.png", "a.jpg", "img.v2.png", "b.jpg", "T01/A/LE/c.png", "T01/A/LE/d.tif"]
# Ultralytics keeps its settings in a folder of its own choosing, and may look things up online:
# point it at a scratch folder before it is first imported, and tell it it is offline.
os.environ.setdefault("YOLO_CONFIG_DIR", str(Path(tempfile.gettempdir()) / "b2p-ultralytics"))
os.environ.setdefault("YOLO_OFFLINE", "1")


def _label(h: int, w: int, i: int) -> np.ndarray:
    lab = np.zeros((h, w), np.uint8)
    lab[4:14, 4 + i:20 + i] = 2
    lab[28:36, 30:44] = 1
    if i % 2:
        lab[20:24, 50:60] = 1  # a second dirt region on every other photo
    return lab


@pytest.fixture
def masked(tmp_path) -> Project:
    """Six photos with teacher masks, so a val split gets drawn (at least five photos)."""
    for i, n in enumerate(NAMES):
        write_photo(tmp_path / "photos" / n, 64, 48, i)
    proj = Project.create(tmp_path / "proj", tmp_path / "photos")
    for i, key in enumerate(proj.keys()):
        proj.save_teacher_mask(key, _label(48, 64, i), "grabcut", {})
    return proj


def _pairs(out: Path) -> dict[str, tuple[Path, Path]]:
    """split/name -> (photo, label file) as Ultralytics pairs them: images/ -> labels/, .txt."""
    pairs = {}
    for img in sorted((out / "images").rglob("*.*")):
        rel = img.relative_to(out / "images")
        lab = out / "labels" / rel.parent / (img.name.rsplit(".", 1)[0] + ".txt")
        pairs[rel.as_posix()] = (img, lab)
    return pairs


def _yaml(out: Path) -> dict:
    import yaml

    return yaml.safe_load((out / "data.yaml").read_text(encoding="utf-8"))


def test_layout_pairs_every_photo_with_its_labels_and_uses_the_saved_split(masked, tmp_path):
    out = tmp_path / "ds"
    s = export_masks(masked, "yolo-seg", "teacher", out)
    assert s.exported == 6 and s.split == {"train": 5, "val": 1}
    assert s.photos == {"hard-linked": 6}
    val = masked.split["val"]  # drawn and kept in the project, so training validates on it too
    assert len(val) == 1
    again = Project.open(masked.root)
    assert split_keys(again, again.keys())[1] == val
    pairs = _pairs(out)
    assert len(pairs) == 6 and all(lab.is_file() for _, lab in pairs.values())
    assert {k.split("/")[0] for k in pairs} == {"train", "val"}
    assert any(k.startswith("val/") and k.endswith(Path(val[0]).name) for k in pairs)
    # the same-stem pair never shares a label file; names follow ml.common.outnames
    assert {Path(k).name for k in pairs} == {"a.jpg", "a.png.png", "img.v2.png", "b.jpg",
                                             "c.png", "d.tif"}
    for key in masked.keys():
        split = "val" if key in val else "train"
        img = next(p for k, (p, _) in pairs.items() if k.startswith(split + "/") and
                   os.path.samefile(p, masked.image_path(key)))  # a hard link to the photo
        assert img.suffix == Path(key).suffix
    data = _yaml(out)
    assert data["train"] == "images/train" and data["val"] == "images/val"
    assert data["nc"] == 2 and data["names"] == {0: "dirt", 1: "damage"}
    assert Path(data["path"]) == out.resolve()
    assert (out / "classes.txt").read_text().split() == ["dirt", "damage"]


def test_an_existing_split_is_kept_whatever_the_fraction(masked, tmp_path):
    masked.set_split({"seed": 5, "val": ["b.jpg", "T01/A/LE/c.png"]})
    s = export_masks(masked, "yolo", "teacher", tmp_path / "ds", val_fraction=0.5, seed=9)
    assert s.split == {"train": 4, "val": 2}
    assert sorted(p.name for p in (tmp_path / "ds/images/val").rglob("*.*")) == ["b.jpg",
                                                                                 "c.png"]
    assert "stored split" in (tmp_path / "ds/data.yaml").read_text()


def test_few_photos_train_and_validate_on_the_same_folder(project, tmp_path):
    for key in project.keys():  # the conftest project: three photos
        rec = project.record(key)
        project.save_teacher_mask(key, _label(rec.height, rec.width, 0), "box", {})
    s = export_masks(project, "yolo", "teacher", tmp_path / "ds")
    assert s.split == {"train": 3, "val": 0}
    data = _yaml(tmp_path / "ds")
    assert data["train"] == data["val"] == "images/train"


def test_copy_on_request_and_fallbacks_when_links_fail(masked, tmp_path, monkeypatch):
    s = export_masks(masked, "yolo", "teacher", tmp_path / "c", copy_images=True)
    assert s.photos == {"copied": 6}
    photo = masked.image_path("b.jpg")
    copied = next((tmp_path / "c/images").rglob("b.jpg"))
    assert not os.path.samefile(copied, photo) and copied.read_bytes() == photo.read_bytes()

    def refuse(*_a, **_k):
        raise OSError("not on this file system")

    monkeypatch.setattr(os, "link", refuse)
    assert place_photo(photo, tmp_path / "l/b.jpg") == "symlinked"
    assert (tmp_path / "l/b.jpg").resolve() == photo.resolve()
    monkeypatch.setattr(os, "symlink", refuse)
    assert place_photo(photo, tmp_path / "l/b.jpg") == "copied"
    assert not (tmp_path / "l/b.jpg").is_symlink()
    assert (tmp_path / "l/b.jpg").read_bytes() == photo.read_bytes()


def test_exporting_again_replaces_the_earlier_export(masked, tmp_path):
    out = tmp_path / "ds"
    export_masks(masked, "yolo-seg", "teacher", out)
    (out / "labels/train.cache").write_bytes(b"stale")  # Ultralytics' label cache
    masked.set_split({"seed": 0, "val": ["a.png", "a.jpg"]})  # another split
    masked.set_reviewed("a.png")
    s = export_masks(masked, "yolo-seg", "reviewed", out)
    assert s.exported == 1 and s.split == {"train": 0, "val": 1}
    assert sorted(_pairs(out)) == ["val/a.png"]
    assert not list((out / "labels").rglob("*.cache"))
    assert not (out / "images/train").exists() or not any((out / "images/train").iterdir())
    assert _yaml(out)["train"] == "images/val"
    assert all(p.is_file() for p in masked.image_root.rglob("*.*"))  # photos untouched


def test_foreign_or_overlapping_folders_are_refused(masked, tmp_path):
    foreign = tmp_path / "theirs"
    (foreign / "images").mkdir(parents=True)
    with pytest.raises(ProjectError, match="did not write"):
        export_masks(masked, "yolo", "teacher", foreign)
    (foreign / "data.yaml").write_text("path: x\n")
    with pytest.raises(ProjectError, match="did not write"):
        export_masks(masked, "yolo", "teacher", foreign)
    for out in (masked.image_root / "yolo", masked.image_root.parent):
        with pytest.raises(ProjectError, match="overlaps the photo folder"):
            export_masks(masked, "yolo", "teacher", out)
    assert not masked.split  # refused before a split was drawn


def test_cli_exports_a_dataset_and_names_bad_options(masked, tmp_path, capsys):
    from app.cli import main

    assert main(["export", str(masked.root), "--format", "yolo", "--source", "teacher",
                 "--out", str(tmp_path / "ds"), "--val-fraction", "0.5", "--seed", "3",
                 "--copy-images"]) == 0
    assert "(3 train, 3 val; photos: 6 copied)" in capsys.readouterr().out
    # the CLI's own Project saved the split to the database, which this object reads too
    assert masked.split["seed"] == 3 and len(Project.open(masked.root).split["val"]) == 3
    assert main(["export", str(masked.root), "--format", "png", "--source", "teacher",
                 "--out", str(tmp_path / "p"), "--copy-images"]) == 1
    assert "--copy-images is for the yolo" in capsys.readouterr().err
    assert main(["export", str(masked.root), "--format", "yolo", "--source", "teacher",
                 "--out", str(tmp_path / "d2"), "--val-fraction", "1"]) == 1
    assert "--val-fraction must lie between 0 and 1" in capsys.readouterr().err


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection is recorded and refused."""
    tried = []

    def refuse(self, address, *a):
        tried.append(address)
        raise OSError("tests run offline")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None,
                                                                                     address))
    return tried


@pytest.mark.parametrize("fmt,task", [("yolo-seg", "segment"), ("yolo", "detect")])
def test_ultralytics_accepts_and_loads_the_dataset(masked, tmp_path, offline, fmt, task):
    pytest.importorskip("ultralytics", reason="ultralytics is not installed (optional: "
                        "pip install --no-deps ultralytics)")
    from ultralytics.data import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    out = tmp_path / fmt
    export_masks(masked, fmt, "teacher", out)
    data = check_det_dataset(str(out / "data.yaml"), autodownload=False)
    assert data["nc"] == 2 and data["names"] == {0: "dirt", 1: "damage"}
    for split in ("train", "val"):
        ds = YOLODataset(img_path=data[split], data=data, task=task, imgsz=64, augment=False)
        want = {Path(img).name: len(lab.read_text().splitlines())
                for k, (img, lab) in _pairs(out).items() if k.startswith(split + "/")}
        got = {Path(lb["im_file"]).name: len(lb["cls"]) for lb in ds.labels}
        assert got == want and sum(got.values()) > 0
        for lb in ds.labels:
            assert set(lb["cls"].ravel().tolist()) <= {0, 1}
            if task == "segment":
                assert len(lb["segments"]) == len(lb["cls"])
    assert not offline, f"Ultralytics tried to go online: {offline}"
