import json

import numpy as np
import pytest
from PIL import Image

from ml.common.classes import make_classes
from ml.common.images import save_label
from ml.datasets.box_export import export_boxes_coco, export_boxes_yolo
from ml.datasets.importers import import_coco, import_masks, import_yolo, parse_class_map
from ml.project.regions import boxes_from_mask
from ml.project.store import Box, Project, ProjectError


def _yolo(dirpath, name, text):
    dirpath.mkdir(parents=True, exist_ok=True)
    (dirpath / name).write_text(text)


def test_yolo_import_scales_clips_and_warns(project, tmp_path):
    lab = tmp_path / "labels"
    _yolo(lab, "a.txt", "1 0.5 0.5 0.25 0.5\n"      # damage, fine
                        "0 0.95 0.5 0.2 0.2\n"      # dirt, sticks out right: clipped
                        "0 0.5 0.5 0 0.1\n"         # zero width: dropped
                        "7 0.5 0.5 0.1 0.1\n"       # unknown class
                        "1 0.5 oops 0.1 0.1\n"      # malformed
                        "1 0.5 0.5\n")              # too few fields
    _yolo(lab, "c.txt", "0 0.5 0.5 0.5 0.5\n")  # matched by stem inside subfolders
    rep = import_yolo(project, lab)
    a = project.record("a.png").boxes
    assert [(b.cls, b.source) for b in a] == [(2, "imported"), (1, "imported")]
    assert a[0].xyxy == pytest.approx((24, 12, 40, 36))
    assert a[1].x1 == 64  # clipped
    text = "\n".join(rep.warnings)
    for words in ["clipped", "zero-area", "unknown class 7", "a.txt:5: malformed",
                  "a.txt:6: malformed"]:
        assert words in text
    assert rep.images_without_labels == ["b.jpg"]
    assert len(project.record("T01/A/LE/c.png").boxes) == 1


def test_yolo_class_map_and_manual_boxes_survive_reimport(project, tmp_path):
    lab = tmp_path / "labels"
    _yolo(lab, "a.txt", "0 0.5 0.5 0.5 0.5\n")
    project.set_boxes("a.png", [Box(1, 1, 5, 5, 1, "manual")])
    import_yolo(project, lab, parse_class_map("0:damage", project))
    boxes = project.record("a.png").boxes
    assert [(b.cls, b.source) for b in boxes] == [(1, "manual"), (2, "imported")]
    import_yolo(project, lab, parse_class_map("0:damage", project))
    assert len(project.record("a.png").boxes) == 2  # imported ones replaced, not doubled
    with pytest.raises(ProjectError, match="unknown class 'rust'"):
        parse_class_map("0:rust", project)


def test_yolo_segmentation_lines_become_boxes(project, tmp_path):
    _yolo(tmp_path / "l", "a.txt", "1 0.25 0.25 0.5 0.25 0.5 0.75 0.25 0.75\n")
    import_yolo(project, tmp_path / "l")
    assert project.record("a.png").boxes[0].xyxy == pytest.approx((16, 12, 32, 36))


def test_coco_import_bbox_segmentation_and_errors(project, tmp_path):
    coco = {"images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "zzz.png"}],
            "categories": [{"id": 5, "name": "damage"}, {"id": 6, "name": "rust"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 5, "bbox": [2, 3, 10, 10]},
                {"id": 2, "image_id": 1, "category_id": 5,
                 "segmentation": [[10, 10, 20, 10, 20, 30, 10, 30]]},
                {"id": 3, "image_id": 1, "category_id": 6, "bbox": [0, 0, 4, 4]},
                {"id": 4, "image_id": 1, "category_id": 5, "bbox": [0, 0, 0, 4]}]}
    f = tmp_path / "c.json"
    f.write_text(json.dumps(coco))
    rep = import_coco(project, f)
    boxes = project.record("a.png").boxes
    assert [b.xyxy for b in boxes] == [(2, 3, 12, 13), (10, 10, 20, 30)]
    text = "\n".join(rep.warnings)
    assert "zzz.png: no such image" in text and "'rust'" in text and "zero-area" in text
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ProjectError, match="not a readable COCO"):
        import_coco(project, tmp_path / "bad.json")


def test_boxes_from_mask_components_and_majority_class():
    m = np.zeros((20, 30), np.uint8)
    m[2:6, 2:8] = 1
    m[10:15, 10:20] = 2
    m[10:12, 10:12] = 1  # minority pixels of another class inside the damage blob
    boxes = boxes_from_mask(m, pad=1)
    assert [(b.xyxy, b.cls) for b in boxes] == [((1, 1, 9, 7), 1), ((9, 9, 21, 16), 2)]


def test_mask_import_brings_boxes_only(tmp_path, photo_dir):
    proj = Project.create(tmp_path / "p", photo_dir, make_classes(["crack", "hole"]))
    masks = tmp_path / "gt"
    m = np.zeros((48, 64), np.uint8)
    m[5:10, 5:20] = 2  # value 2 = crack per dataset.json
    save_label(masks / "a.png", m)
    (masks / "dataset.json").write_text(json.dumps({"classes": ["background", "hole", "crack"]}))
    rep = import_masks(proj, masks, pad=2)
    assert rep.images_matched == 1
    [b] = proj.record("a.png").boxes
    assert b.cls == proj.class_id("crack") and b.xyxy == (3, 3, 22, 12)
    assert proj.record("a.png").teacher is None  # the mask itself never enters
    assert not (proj.root / "masks").exists()


def test_mask_import_refuses_unknown_class_names(project, tmp_path):
    masks = tmp_path / "gt"
    save_label(masks / "a.png", np.zeros((48, 64), np.uint8))
    (masks / "dataset.json").write_text(json.dumps({"classes": ["background", "blowhole"]}))
    with pytest.raises(ProjectError, match="--classes blowhole"):
        import_masks(project, masks)


def test_export_boxes_round_trip(project, tmp_path):
    project.set_boxes("a.png", [Box(8, 12, 24, 36, 2), Box(0, 0, 16, 8, 1)])
    export_boxes_yolo(project, tmp_path / "y")
    assert (tmp_path / "y" / "classes.txt").read_text().split() == ["dirt", "damage"]
    export_boxes_coco(project, tmp_path / "c.json")
    before = np.array([b.xyxy for b in project.record("a.png").boxes])
    project.set_boxes("a.png", [])
    import_yolo(project, tmp_path / "y")
    assert np.allclose([b.xyxy for b in project.record("a.png").boxes], before, atol=1e-3)
    project.set_boxes("a.png", [])
    import_coco(project, tmp_path / "c.json")
    assert np.allclose([b.xyxy for b in project.record("a.png").boxes], before, atol=1e-3)


def test_yolo_non_finite_numbers_are_skipped_with_their_line(project, tmp_path):
    lab = tmp_path / "labels"
    _yolo(lab, "a.txt", "0 nan 0.5 0.1 0.1\n"       # 1
                        "0 0.5 0.5 inf 0.1\n"       # 2: would clip to the whole image
                        "1 0.5 -inf 0.1 0.1\n"      # 3
                        "inf 0.5 0.5 0.1 0.1\n"     # 4: class
                        "0 2.0 2.0 0.1 0.1\n"       # 5: wholly outside: nothing left
                        "1 0.5 0.5 0.25 0.5\n")     # 6: fine
    rep = import_yolo(project, lab)
    assert [b.xyxy for b in project.record("a.png").boxes] == [(24, 12, 40, 36)]
    text = "\n".join(rep.warnings)
    for n in (1, 2, 3):
        assert f"a.txt:{n}: non-finite" in text
    assert "a.txt:4: malformed" in text and "a.txt:5: zero-area box dropped" in text


def _coco_file(path, anns, images=None):
    coco = {"images": images or [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.jpg"}],
            "categories": [{"id": 5, "name": "damage"}], "annotations": anns}
    path.write_text(json.dumps(coco))  # json writes NaN literally, as some tools do
    return path


def test_coco_bad_annotations_are_skipped_by_id_and_the_rest_imported(project, tmp_path):
    anns = [{"id": 1, "image_id": 1, "category_id": 5, "bbox": [2, 3, 10, 10]},
            {"id": 2, "image_id": 1, "category_id": 5, "bbox": [10, "x", 20, 20]},
            {"id": 3, "image_id": 1, "category_id": 5, "bbox": [float("nan"), 0, 5, 5]},
            {"id": 4, "image_id": "one", "category_id": 5, "bbox": [0, 0, 5, 5]},
            {"id": 5, "image_id": 1, "category_id": 5, "segmentation": [[1, "y", 2, 2, 3, 3]]},
            "not an annotation",
            {"id": 7, "image_id": 2, "category_id": 5, "bbox": [4, 4, 8, 8]}]
    rep = import_coco(project, _coco_file(tmp_path / "c.json", anns))
    assert [b.xyxy for b in project.record("a.png").boxes] == [(2, 3, 12, 13)]
    assert [b.xyxy for b in project.record("b.jpg").boxes] == [(4, 4, 12, 12)]
    text = "\n".join(rep.warnings)
    assert "annotation 2: malformed" in text and "could not convert string to float: 'x'" in text
    assert "annotation 3: non-finite" in text
    for what in ("annotation 4: malformed", "annotation 5: malformed", "annotation #5: malformed"):
        assert what in text
    assert rep.boxes_added == 2 and rep.images_matched == 2


@pytest.mark.parametrize("content", ["[]", '{"images": {}}', '{"images": [], "annotations": 3}',
                                     "\xff\xfe", '{"images": [], "annotations": [] '])
def test_coco_file_of_the_wrong_shape_is_refused_whole(project, tmp_path, content):
    project.set_boxes("a.png", [Box(1, 1, 5, 5, 1, "imported")])
    from ml.project.legacy import interchange

    before = interchange(project)
    f = tmp_path / "bad.json"
    f.write_bytes(content.encode("latin-1"))
    with pytest.raises(ProjectError, match="not a readable COCO"):
        import_coco(project, f)
    assert interchange(project) == before


def test_stopped_import_changes_nothing(project, tmp_path):
    seen: list[str] = []

    def run(importer, *args):
        seen.clear()  # stop once a.png has been read: b.jpg is still to come
        return importer(project, *args, progress=lambda p: seen.append(p.message),
                        should_stop=lambda: "a.png" in seen)

    anns = [{"id": i, "image_id": i, "category_id": 5, "bbox": [2, 3, 10, 10]} for i in (1, 2)]
    rep = run(import_coco, _coco_file(tmp_path / "c.json", anns))
    assert "nothing imported" in "\n".join(rep.warnings)
    _yolo(tmp_path / "l", "a.txt", "0 0.5 0.5 0.5 0.5\n")
    _yolo(tmp_path / "l", "b.txt", "0 0.5 0.5 0.5 0.5\n")
    run(import_yolo, tmp_path / "l")
    assert all(not project.record(k).boxes for k in project.keys())


LOOK_ALIKES = ["a.png", "a.jpg", "a_color.png", "a/b.png", "a__b.png"]


@pytest.fixture
def look_alikes(tmp_path):
    """A project whose photos would share output files under stem-based names."""
    from tests.conftest import write_photo

    for i, name in enumerate(LOOK_ALIKES):
        write_photo(tmp_path / "photos" / name, seed=i)
    proj = Project.create(tmp_path / "p", tmp_path / "photos")
    for i, key in enumerate(LOOK_ALIKES, start=1):
        proj.set_boxes(key, [Box(i, i, 10 + i, 10 + i, 1)])
        mask = np.zeros((48, 64), np.uint8)
        mask[i:i + 5, i:i + 5] = 1  # where the block sits tells whose mask a file holds
        proj.save_teacher_mask(key, mask, "box")
    return proj


def test_output_names_never_share_a_file():
    from ml.common.outnames import OutputNames

    names = OutputNames((".png", "_color.png"), reserved=("dataset.json",))
    got = [names(k).as_posix() for k in ["a.png", "a.jpg", "a_color.png", "a.jpg.png", "A.tif",
                                         "a/b.png", "a__b.png", "dataset.png"]]
    assert got[:3] == ["a", "a.jpg", "a_color.png"]
    files = [f"{g}{e}".lower() for g in got for e in (".png", "_color.png")]
    assert len(set(files)) == len(files)


def test_box_export_of_same_stem_photos_round_trips(look_alikes, tmp_path):
    before = {k: look_alikes.record(k).boxes[0].xyxy for k in LOOK_ALIKES}
    assert export_boxes_yolo(look_alikes, tmp_path / "y") == len(LOOK_ALIKES)
    assert len(list((tmp_path / "y").rglob("*.txt"))) == len(LOOK_ALIKES) + 1  # + classes.txt
    for k in LOOK_ALIKES:
        look_alikes.set_boxes(k, [])
    import_yolo(look_alikes, tmp_path / "y")
    after = {k: look_alikes.record(k).boxes[0].xyxy for k in LOOK_ALIKES}
    assert after.keys() == before.keys()
    assert all(np.allclose(after[k], before[k], atol=1e-3) for k in before)


def test_mask_exports_of_same_stem_photos_keep_every_mask(look_alikes, tmp_path):
    from app.cli import main
    from ml.common.images import load_label
    from ml.datasets.export import export_masks

    export_masks(look_alikes, "png", "teacher", tmp_path / "png")
    assert main(["masks", str(look_alikes.root), "--source", "teacher",
                 "--out", str(tmp_path / "cli")]) == 0
    for out, per_photo in ((tmp_path / "png", 2), (tmp_path / "cli", 1)):
        files = list(out.rglob("*.png"))
        assert len(files) == per_photo * len(LOOK_ALIKES)
        grey = [p for p in files if Image.open(p).mode != "RGB"]  # not the _color images
        assert sorted(int(np.argmax(load_label(p).any(1))) for p in grey) == [1, 2, 3, 4, 5]
    # ground-truth import finds each photo's own mask again
    for k in LOOK_ALIKES:
        look_alikes.set_boxes(k, [])
    import_masks(look_alikes, tmp_path / "cli")
    assert [look_alikes.record(k).boxes[0].x0 for k in LOOK_ALIKES] == [1, 2, 3, 4, 5]
