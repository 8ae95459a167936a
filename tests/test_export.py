"""Mask exports: label PNGs, COCO (RLE + polygons) and YOLO round trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.datasets.export import export_masks
from ml.project.masks import mask_for
from ml.project.regions import find_regions
from ml.project.store import ProjectError


def _label(h: int, w: int, seed: int) -> np.ndarray:
    """A few blobs of both defect classes, one with a hole, one touching the border."""
    import cv2

    rng = np.random.default_rng(seed)
    lab = np.zeros((h, w), np.uint8)
    cv2.circle(lab, (w // 4, h // 3), max(3, h // 6), 2, -1)
    cv2.circle(lab, (w // 4, h // 3), 1, 0, -1)  # a hole
    cv2.rectangle(lab, (w // 2, h // 2), (w - 1, h - 4), 1, -1)
    for _ in range(3):
        x, y = int(rng.integers(0, w - 4)), int(rng.integers(0, h - 4))
        lab[y:y + 3, x:x + 2] = int(rng.integers(1, 3))
    lab[0, 0:5] = 1  # a one-pixel line on the border
    return lab


@pytest.fixture
def masked(project):
    """The conftest project with teacher masks on every image and a student on one."""
    for i, key in enumerate(project.keys()):
        rec = project.record(key)
        project.save_teacher_mask(key, _label(rec.height, rec.width, i), "grabcut", {"iters": 3})
    key = project.keys()[0]
    rec = project.record(key)
    conf = np.full((rec.height, rec.width), 200, np.uint8)
    project.save_student(key, _label(rec.height, rec.width, 7), "model-abc", confidence=conf)
    return project


def _yolo_labels(out: Path, key: str) -> Path:
    """The label file of photo ``key`` in a YOLO dataset export, in whichever split it went."""
    found = [out / "labels" / s / Path(key).with_suffix(".txt") for s in ("train", "val")]
    found = [p for p in found if p.is_file()]
    assert len(found) == 1, found
    return found[0]


def _regions_mask(label: np.ndarray) -> dict[int, np.ndarray]:
    return {c: label == c for c in (1, 2)}


def test_png_export_writes_class_ids_and_colours_keeping_folders(masked, tmp_path):
    out = tmp_path / "png"
    s = export_masks(masked, "png", "teacher", out)
    assert s.exported == 3 and not s.skipped
    for key in masked.keys():
        stem = Path(key).with_suffix("")
        lab = np.asarray(Image.open(out / f"{stem}.png"))
        assert np.array_equal(lab, masked.load_mask(key, "teacher"))
        color = np.asarray(Image.open(out / f"{stem}_color.png").convert("RGB"))
        assert tuple(color[lab == 2][0]) == masked.palette()[2]
    assert json.loads((out / "dataset.json").read_text())["classes"] == masked.class_names()


def test_missing_source_is_skipped_and_counted(masked, tmp_path):
    s = export_masks(masked, "yolo", "student", tmp_path / "y")
    assert s.exported == 1 and len(s.skipped) == 2
    s = export_masks(masked, "png", "reviewed", tmp_path / "r")
    assert s.exported == 0 and len(s.skipped) == 3


def test_coco_round_trip_is_exact_through_pycocotools(masked, tmp_path):
    from pycocotools.coco import COCO

    path = tmp_path / "coco.json"
    s = export_masks(masked, "coco", "teacher", path)
    assert s.regions > 0
    coco = COCO(str(path))
    for img in coco.dataset["images"]:
        lab = masked.load_mask(img["file_name"], "teacher")
        rebuilt = np.zeros_like(lab)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img["id"])):
            m = coco.annToMask(ann).astype(bool)
            assert m.sum() == ann["area"]
            assert not rebuilt[m].any()  # regions never overlap
            rebuilt[m] = ann["category_id"]
            assert ann["source"] == "teacher" and ann["score"] == 1.0
            assert all(len(p) >= 6 for p in ann["polygon"])
        assert np.array_equal(rebuilt, lab)
    # as detector results (loadRes) the same RLEs give the same masks
    res = coco.loadRes([{k: a[k] for k in ("image_id", "category_id", "segmentation", "score")}
                        for a in coco.dataset["annotations"]])
    for a, r in zip(coco.dataset["annotations"], res.dataset["annotations"], strict=True):
        assert np.array_equal(coco.annToMask(a), res.annToMask(r))
        assert r["bbox"] == pytest.approx(a["bbox"])


def test_coco_scores_come_from_student_confidence(masked, tmp_path):
    path = tmp_path / "s.json"
    export_masks(masked, "coco", "student", path)
    anns = json.loads(path.read_text())["annotations"]
    assert anns and all(a["source"] == "student" for a in anns)
    assert all(a["score"] == pytest.approx(200 / 255, abs=1e-3) for a in anns)


def test_coco_boxes_round_trip_through_the_importer(masked, tmp_path):
    from ml.datasets.importers import import_coco
    from ml.project.store import Project

    path = tmp_path / "coco.json"
    export_masks(masked, "coco", "teacher", path)
    other = Project.create(tmp_path / "other", masked.image_root)
    import_coco(other, path)
    for key in masked.keys():
        regions = find_regions(masked.load_mask(key, "teacher"))
        want = sorted((r.cls, *r.bbox) for r in regions)
        got = sorted((b.cls, *(round(v) for v in b.xyxy)) for b in other.record(key).boxes)
        assert got == want


def test_yolo_seg_polygons_rasterise_back_within_a_pixel(masked, tmp_path):
    import cv2

    out = tmp_path / "yseg"
    export_masks(masked, "yolo-seg", "teacher", out)
    assert (out / "classes.txt").read_text().split() == ["dirt", "damage"]
    assert "1: \"damage\"" in (out / "data.yaml").read_text()
    for key in masked.keys():
        lab = masked.load_mask(key, "teacher")
        h, w = lab.shape
        rebuilt = np.zeros_like(lab)
        for line in _yolo_labels(out, key).read_text().splitlines():
            vals = line.split()
            pts = np.array(vals[1:], float).reshape(-1, 2) * [w, h]
            cv2.fillPoly(rebuilt, [np.round(pts).astype(np.int32)], int(vals[0]) + 1)
        # holes get filled: every difference lies inside a region's outline, 1 px tolerance
        diff = rebuilt != lab
        grown = cv2.dilate((lab > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert not (diff & ~grown).any()
        for c in (1, 2):
            inter = ((rebuilt == c) & (lab == c)).sum()
            assert inter / max((lab == c).sum(), 1) > 0.97


def test_yolo_boxes_match_region_bboxes(masked, tmp_path):
    out = tmp_path / "ybox"
    export_masks(masked, "yolo", "teacher", out)
    key = "T01/A/LE/c.png"
    lab = masked.load_mask(key, "teacher")
    h, w = lab.shape
    got = []
    for line in _yolo_labels(out, key).read_text().splitlines():
        c, cx, cy, bw, bh = (float(v) for v in line.split())
        got.append((int(c) + 1, round((cx - bw / 2) * w), round((cy - bh / 2) * h),
                    round((cx + bw / 2) * w), round((cy + bh / 2) * h)))
    assert sorted(got) == sorted((r.cls, *r.bbox) for r in find_regions(lab))


def test_reviewed_prefers_the_edited_mask(masked):
    key = masked.keys()[0]
    assert mask_for(masked, key, "reviewed") is None
    masked.set_reviewed(key)
    assert mask_for(masked, key, "reviewed").origin == "student"
    edited = np.zeros_like(masked.load_mask(key, "teacher"))
    edited[2:5, 2:5] = 2
    masked.save_edited_mask(key, edited)
    sm = mask_for(masked, key, "reviewed")
    assert sm.origin == "edited" and np.array_equal(sm.label, edited)


def test_stop_request_ends_the_export_early(masked, tmp_path):
    calls = []
    s = export_masks(masked, "coco", "teacher", tmp_path / "c.json",
                     progress=calls.append, should_stop=lambda: len(calls) >= 1)
    assert s.stopped and s.exported == 1
    assert len(json.loads((tmp_path / "c.json").read_text())["images"]) == 1


def test_unknown_format_is_a_clear_error(masked, tmp_path):
    with pytest.raises(ProjectError, match="unknown export format 'tiff'"):
        export_masks(masked, "tiff", "teacher", tmp_path)
