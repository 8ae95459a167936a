import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ml.common.classes import make_classes
from ml.project.store import DB_NAME, INDEX_NAME, Box, Project, ProjectError, ProjectWarning
from tests import _backends
from tests._backends import sqlite_only

backend, project = _backends.backend, _backends.project  # the store on both backends


def test_create_scans_subfolders_and_round_trips(project):
    assert sorted(project.keys()) == ["T01/A/LE/c.png", "a.png", "b.jpg"]
    project.set_boxes("a.png", [Box(1, 2, 10, 12, 2)])
    project.set_meta("b.jpg", turbine="T07", blade="B")
    again = Project.open(project.root)
    assert again.record("a.png").boxes[0].xyxy == (1, 2, 10, 12)
    assert again.record("a.png").boxes[0].cls == 2
    assert again.record("b.jpg").meta == {"turbine": "T07", "blade": "B"}
    assert (again.record("a.png").width, again.record("a.png").height) == (64, 48)
    assert again.class_names() == ["background", "dirt", "damage"]


def test_statuses_follow_the_work(project):
    key = "a.png"
    assert project.record(key).status == "no boxes"
    project.set_boxes(key, [Box(0, 0, 5, 5, 1)])
    assert project.record(key).status == "boxed"
    lab = np.zeros((48, 64), np.uint8)
    project.save_teacher_mask(key, lab, "grabcut", {"iters": 5})
    assert project.record(key).status == "pseudo-labelled"
    project.save_edited_mask(key, lab)
    assert project.record(key).status == "edited"
    project.save_student(key, lab, "model123", confidence=lab, corrections=lab)
    assert project.record(key).status == "predicted"
    project.set_reviewed(key)
    assert Project.open(project.root).record(key).status == "reviewed"


def test_a_map_saved_without_its_mask_leaves_no_file_behind(project):
    key = "a.png"
    lab = np.zeros((48, 64), np.uint8)
    project.save_student(key, lab, "m1", confidence=lab + 200, corrections=lab + 1)
    conf = project.root / project.record(key).student.extra["confidence"]
    assert conf.is_file()
    project.save_student(key, lab, "m2", corrections=lab + 2)  # a model without confidences
    assert not conf.exists() and project.load_student_extra(key, "confidence") is None
    assert project.load_student_extra(key, "corrections")[0, 0] == 2
    with pytest.raises(ProjectError, match="confidence shape"):
        project.save_student(key, lab + 3, "m3", confidence=np.zeros((4, 4), np.uint8))
    assert project.load_mask(key, "student").max() == 0  # refused before anything was written


def test_edited_masks_are_never_overwritten_by_batches(project):
    key = "a.png"
    edited = np.ones((48, 64), np.uint8)
    project.save_edited_mask(key, edited)
    assert project.save_teacher_mask(key, np.zeros((48, 64), np.uint8), "grabcut") is False
    assert np.array_equal(project.load_mask(key), edited)
    assert project.record(key).teacher.edited


def test_reviewed_source_prefers_the_persons_edit(project):
    key = "a.png"
    t = np.zeros((48, 64), np.uint8)
    s = np.full((48, 64), 2, np.uint8)
    project.save_teacher_mask(key, t, "grabcut")
    project.save_student(key, s, "m")
    assert project.load_mask(key, "reviewed") is None  # not reviewed yet
    project.set_reviewed(key)
    assert np.array_equal(project.load_mask(key, "reviewed"), s)
    project.save_edited_mask(key, t + 1)
    assert np.array_equal(project.load_mask(key, "reviewed"), t + 1)


def test_mask_shape_and_box_class_are_checked(project):
    with pytest.raises(ProjectError, match="does not match"):
        project.save_teacher_mask("a.png", np.zeros((10, 10), np.uint8), "box")
    with pytest.raises(ProjectError, match="not a defect class"):
        project.set_boxes("a.png", [Box(0, 0, 4, 4, 0)])
    with pytest.raises(ProjectError, match="no image"):
        project.record("nope.png")


def test_existing_project_and_newer_schema_are_refused(project):
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(project.root)
    project.db.q("UPDATE settings SET value = '99' WHERE name = 'schema'")
    with pytest.raises(ProjectError, match="newer"):
        Project.open(project.root)


def test_an_old_index_of_a_newer_schema_is_refused(project):
    old = _as_old_project(project)
    data = json.loads((old / INDEX_NAME).read_text())
    data["schema"] = 99
    (old / INDEX_NAME).write_text(json.dumps(data))
    with pytest.raises(ProjectError, match="newer"):
        Project.open(old)
    assert not (old / DB_NAME).exists()


def test_a_batch_is_one_transaction(project):
    other = Project.open(project.root)  # another writer, as a second process would be
    with pytest.raises(RuntimeError):
        with project.batch():
            for k in project.keys():
                project.set_boxes(k, [Box(0, 0, 3, 3, 1)])
            assert len(project.record("a.png").boxes) == 1  # the batch reads its own writes
            raise RuntimeError("stopped half-way")
    assert all(not other.record(k).boxes for k in project.keys())  # none landed
    with project.batch():
        for k in project.keys():
            project.set_boxes(k, [Box(0, 0, 3, 3, 1)])
    assert all(len(other.record(k).boxes) == 1 for k in project.keys())


def test_a_full_disk_is_told_and_leaves_the_last_good_state(project):
    sqlite_only(project)  # a full disk made with SQLite's page limit
    project.set_boxes("a.png", [Box(0, 0, 3, 3, 1)])
    pages = project.db.one("PRAGMA page_count")[0]
    project.db.q(f"PRAGMA max_page_count = {pages}")  # the file may not grow: as a full disk
    with pytest.raises(ProjectError, match="disk is full"):
        project.set_boxes("a.png", [Box(0, 0, 9, 9 + i / 10, 2) for i in range(3000)])
    project.db.q("PRAGMA max_page_count = 1073741823")
    assert [b.xyxy for b in project.record("a.png").boxes] == [(0, 0, 3, 3)]
    assert Project.open(project.root).record("a.png").boxes[0].xyxy == (0, 0, 3, 3)


def test_writer_killed_mid_way_leaves_a_readable_project(project):
    """A process saving in a tight loop is SIGKILLed; the index must still load."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(os.getcwd())!r})
        from ml.project.store import Project, Box
        p = Project.open({str(project.root)!r})
        print("ready", flush=True)
        i = 0
        while True:
            i += 1
            p.set_boxes("a.png", [Box(0, 0, 1 + i % 50, 5, 1)] * 200)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    import time

    time.sleep(0.7)
    proc.kill()
    proc.wait()
    again = Project.open(project.root)
    boxes = again.record("a.png").boxes
    assert len(boxes) == 200  # a complete write, not a torn one


def test_unreadable_image_is_listed_and_named_on_load(tmp_path, photo_dir):
    (photo_dir / "broken.jpg").write_bytes(b"garbage")
    proj = Project.create(tmp_path / "p", photo_dir, make_classes(["crack"]))
    assert proj.record("broken.jpg").width == 0
    from ml.common.images import ImageError

    with pytest.raises(ImageError, match="broken.jpg"):
        proj.load_image("broken.jpg")
    assert proj.load_image("a.png").shape == (48, 64, 3)


def test_photos_inside_the_project_folder(tmp_path):
    from tests.conftest import write_photo

    write_photo(tmp_path / "p" / "x.png")
    proj = Project.create(tmp_path / "p")
    proj.save_teacher_mask("x.png", np.zeros((48, 64), np.uint8), "box")
    proj.scan()  # the masks folder must not be scanned as photos
    assert proj.keys() == ["x.png"]


def test_remove_images_drops_records_and_masks(project):
    project.save_teacher_mask("a.png", np.zeros((48, 64), np.uint8), "box")
    mask = project.root / project.record("a.png").teacher.path
    project.remove_images(["a.png"])
    assert "a.png" not in Project.open(project.root).keys()
    assert not mask.exists()


def test_a_box_is_the_same_before_and_after_the_project_is_reopened(project):
    # YOLO's normalised floats come back with noise; the index keeps 1/100 px, so the box must
    # too, or the pixel rows a box covers (and its mask) change when the project is reopened
    noisy = Box(149.00004, 81.99984, 153.99996, 86.99984, 1)
    assert noisy.xyxy == (149.0, 82.0, 154.0, 87.0)
    project.set_boxes("a.png", [noisy, Box(1.234567, 2, 10, 12.005001, 2)])
    mem = [b.xyxy for b in project.record("a.png").boxes]
    assert mem == [b.xyxy for b in Project.open(project.root).record("a.png").boxes]
    assert mem[1] == (1.23, 2.0, 10.0, 12.01)


@pytest.mark.parametrize("bad", [Box(float("nan"), 0, 5, 5, 1), Box(0, 0, float("inf"), 5, 1),
                                 Box(9, 0, 5, 5, 1), Box(0, 5, 5, 5, 1), Box(0, 0, 0.5, 5, 1)])
def test_non_finite_and_inverted_boxes_are_refused_by_the_store(project, bad):
    project.set_boxes("a.png", [Box(0, 0, 3, 3, 1)])
    with pytest.raises(ProjectError, match=r"a\.png: box .*(non-finite|inverted|under 1 px)"):
        project.set_boxes("a.png", [Box(1, 1, 4, 4, 1), bad])
    with pytest.raises(ProjectError, match="a.png"):
        project.add_boxes("a.png", [bad])
    assert [b.xyxy for b in Project.open(project.root).record("a.png").boxes] == [(0, 0, 3, 3)]


def test_index_holding_nan_boxes_still_opens_without_them(project):
    project.set_boxes("a.png", [Box(0, 0, 3, 3, 1)])
    old = _as_old_project(project)
    data = json.loads((old / INDEX_NAME).read_text())
    data["images"]["a.png"]["boxes"] += [{"xyxy": [float("nan"), 0, 5, 5], "cls": 1},
                                         {"xyxy": [8, 8, 2, 2], "cls": 1}]
    (old / INDEX_NAME).write_text(json.dumps(data))  # writes the NaN literal
    with pytest.warns(ProjectWarning, match="box .* dropped"):
        again = Project.open(old)
    assert [b.xyxy for b in again.record("a.png").boxes] == [(0, 0, 3, 3)]
    assert len(again.warnings) == 2 and all("a.png: box" in w for w in again.warnings)


def _as_old_project(project):
    """The project as the app before the database kept it: a project.json only."""
    from ml.project.legacy import export_json

    old = project.root.parent / "old"
    old.mkdir()
    data = json.loads(export_json(project, old / "x.json").read_text())
    data["image_root"] = str(project.image_root)
    (old / INDEX_NAME).write_text(json.dumps(data))
    return old


def _photos(folder, names, sizes=None):
    from tests.conftest import write_photo

    for i, n in enumerate(names):
        w, h = (sizes or {}).get(n, (64, 48))
        write_photo(folder / n, w, h, seed=i)


def test_folder_and_extension_look_alikes_get_their_own_masks(tmp_path):
    _photos(tmp_path / "photos", ["a/b.png", "a__b.png", "a.png", "a.jpg"])
    proj = Project.create(tmp_path / "p", tmp_path / "photos")
    keys = sorted(proj.keys())
    for i, key in enumerate(keys):
        lab = np.full((48, 64), i, np.uint8)
        proj.save_teacher_mask(key, lab, "box")
        proj.save_student(key, lab, "m", confidence=lab + 10, corrections=lab + 20)
    paths = set()
    for i, key in enumerate(keys):
        assert proj.load_mask(key)[0, 0] == i
        assert proj.load_mask(key, "student")[0, 0] == i
        assert proj.load_student_extra(key, "confidence")[0, 0] == i + 10
        rec = proj.record(key)
        paths |= {rec.teacher.path, rec.student.path, *rec.student.extra.values()}
    assert len(paths) == 4 * len(keys)
    assert proj.record("a/b.png").teacher.path == "masks/teacher/a/b.png.png"


def _v1_project(tmp_path, records):
    """A schema-1 project as the old app wrote it: masks named key.replace('/', '__')."""
    from ml.common.images import save_label

    root = tmp_path / "p"
    images = {}
    for key, (size, masks) in records.items():
        rec = {"width": size[0], "height": size[1], "boxes": [], "teacher": None,
               "student": None, "reviewed": False, "meta": {}, "findings": {}}
        for kind, (value, created, shape) in masks.items():
            rel = f"masks/{kind}/{key.replace('/', '__')}.png"
            save_label(root / rel, np.full(shape[::-1], value, np.uint8))
            rec[kind] = {"path": rel, "source": "box", "settings": {}, "edited": False,
                         "created": created, "extra": {}}
            if kind == "student":
                conf = rel[:-4] + "_conf.png"
                save_label(root / conf, np.full(shape[::-1], 200, np.uint8))
                rec[kind]["extra"] = {"confidence": conf}
        images[key] = rec
    data = {"schema": 1, "name": "p", "created": "2024-01-01T00:00:00+00:00",
            "image_root": "../photos",
            "classes": [{"id": 0, "name": "background"}, {"id": 1, "name": "crack"}],
            "images": images}
    (root / INDEX_NAME).write_text(json.dumps(data))
    return root


def test_v1_project_migrates_its_masks_to_collision_free_names(tmp_path):
    _photos(tmp_path / "photos", ["x/y.png", "c.png"])
    root = _v1_project(tmp_path, {
        "x/y.png": ((64, 48), {"teacher": (1, "2024-01-01T00:00:01+00:00", (64, 48)),
                               "student": (1, "2024-01-01T00:00:01+00:00", (64, 48))}),
        "c.png": ((64, 48), {"teacher": (1, "2024-01-01T00:00:01+00:00", (64, 48))})})
    proj = Project.open(root)
    assert proj.warnings == []
    assert proj.record("x/y.png").teacher.path == "masks/teacher/x/y.png.png"
    assert proj.record("x/y.png").student.extra["confidence"] == "masks/student/x/y.png_conf.png"
    assert proj.load_mask("x/y.png")[0, 0] == 1
    assert proj.load_student_extra("x/y.png", "confidence")[0, 0] == 200
    assert proj.load_mask("c.png")[0, 0] == 1
    # copy-first: the old index and the files it names stay as they were, beside the database
    assert (root / "masks/teacher/x__y.png.png").exists()
    assert json.loads((root / INDEX_NAME).read_text())["schema"] == 1
    assert (root / DB_NAME).is_file() and Project.open(root).warnings == []


def test_v1_collision_keeps_the_shared_mask_for_the_newest_writer_only(tmp_path):
    _photos(tmp_path / "photos", ["a/b.png", "a__b.png"])
    # both records point at masks/teacher/a__b.png.png; a__b.png wrote it last (value 2)
    root = _v1_project(tmp_path, {
        "a/b.png": ((64, 48), {"teacher": (1, "2024-01-01T00:00:01+00:00", (64, 48))}),
        "a__b.png": ((64, 48), {"teacher": (2, "2024-01-01T00:00:09+00:00", (64, 48))})})
    with pytest.warns(ProjectWarning, match="shared by a/b.png, a__b.png"):
        proj = Project.open(root)
    assert proj.record("a/b.png").teacher is None
    assert proj.load_mask("a__b.png")[0, 0] == 2
    assert any("a/b.png: teacher mask" in w and "dropped" in w for w in proj.warnings)
    again = Project.open(root)
    assert again.record("a/b.png").teacher is None and again.warnings == []


def test_v1_collision_is_told_apart_by_mask_size(tmp_path):
    _photos(tmp_path / "photos", ["a/b.png", "a__b.png"], {"a/b.png": (32, 32)})
    # the file was written last for a/b.png (32x32) although a__b.png's record is newer
    root = _v1_project(tmp_path, {
        "a__b.png": ((64, 48), {"teacher": (2, "2024-01-01T00:00:09+00:00", (64, 48))}),
        "a/b.png": ((32, 32), {"teacher": (1, "2024-01-01T00:00:01+00:00", (32, 32))})})
    with pytest.warns(ProjectWarning, match="teacher mask .* shared"):
        proj = Project.open(root)
    assert proj.record("a__b.png").teacher is None
    assert proj.load_mask("a/b.png").shape == (32, 32)
    assert proj.record("a/b.png").teacher.path == "masks/teacher/a/b.png.png"


def test_v1_collision_with_no_telling_owner_drops_both(tmp_path):
    _photos(tmp_path / "photos", ["a/b.png", "a__b.png"])
    same = "2024-01-01T00:00:01+00:00"
    root = _v1_project(tmp_path, {"a/b.png": ((64, 48), {"teacher": (1, same, (64, 48))}),
                                  "a__b.png": ((64, 48), {"teacher": (2, same, (64, 48))})})
    with pytest.warns(ProjectWarning):
        proj = Project.open(root)
    assert proj.record("a/b.png").teacher is None and proj.record("a__b.png").teacher is None
    assert len(proj.warnings) == 2


def test_migration_interrupted_before_the_index_write_loses_no_mask(tmp_path, monkeypatch):
    from ml.project import legacy

    _photos(tmp_path / "photos", ["x/y.png"])
    root = _v1_project(tmp_path, {
        "x/y.png": ((64, 48), {"teacher": (3, "2024-01-01T00:00:01+00:00", (64, 48))})})

    def crash(*a):
        raise KeyboardInterrupt  # the process dies before the new database is put in place

    monkeypatch.setattr(legacy.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        Project.open(root)
    monkeypatch.undo()
    assert json.loads((root / INDEX_NAME).read_text())["schema"] == 1
    assert not (root / DB_NAME).exists() and not list(root.glob(".project.sqlite*"))
    assert Project.open(root).load_mask("x/y.png")[0, 0] == 3


def test_all_defects_boxed_defaults_to_imported_or_reviewed_and_round_trips(project):
    from ml.project.store import Box, Project

    k = project.keys()[0]
    rec = project.record(k)
    assert rec.all_defects_boxed is None and not rec.every_defect_boxed()
    project.set_boxes(k, [Box(1, 1, 5, 5, 1, "imported")])
    assert project.record(k).every_defect_boxed()  # imported boxes: the default is on
    project.update(k, all_defects_boxed=False)
    project.set_reviewed(k)
    assert not project.record(k).every_defect_boxed()  # an explicit flag wins
    again = Project.open(project.root).record(k)
    assert again.all_defects_boxed is False and not again.every_defect_boxed()


def test_the_importers_and_the_store_keep_boxes_by_one_rule(project):
    """Issue 26 §3.8: a box the importers keep is one the store takes, and the other way."""
    from ml.datasets.importers import ImportReport, clip_box
    from ml.project.records import box_problem

    for xyxy in [(0, 0, 0.99, 5), (0, 0, 1, 1), (2, 2, 2.5, 9), (3, 3, 40, 30), (5, 5, 5, 9)]:
        box = Box(*xyxy, 1)
        kept = clip_box(box, 64, 48, "t", ImportReport()) is not None
        assert kept == (box_problem(box) is None), xyxy
        if kept:
            project.set_boxes("a.png", [box])
        else:
            with pytest.raises(ProjectError):
                project.set_boxes("a.png", [box])
