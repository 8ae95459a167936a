import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ml import _atomic
from ml.classes import make_classes
from ml.store import INDEX_NAME, Box, Project, ProjectError


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
    data = json.loads((project.root / INDEX_NAME).read_text())
    data["schema"] = 99
    (project.root / INDEX_NAME).write_text(json.dumps(data))
    with pytest.raises(ProjectError, match="newer"):
        Project.open(project.root)


def test_batch_writes_once(project, monkeypatch):
    calls = []
    real = project.save
    monkeypatch.setattr(project, "save", lambda: (calls.append(1), real()))
    with project.batch():
        for k in project.keys():
            project.set_boxes(k, [Box(0, 0, 3, 3, 1)])
    assert len(calls) == 1


def test_failed_write_leaves_last_good_state(project, monkeypatch):
    project.set_boxes("a.png", [Box(0, 0, 3, 3, 1)])
    good = (project.root / INDEX_NAME).read_text()

    def exploding_dump(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(_atomic.os, "fsync", exploding_dump)
    with pytest.raises(OSError):
        project.set_boxes("a.png", [Box(0, 0, 9, 9, 2)])
    monkeypatch.undo()
    assert (project.root / INDEX_NAME).read_text() == good
    assert not list(project.root.glob(".*.tmp"))
    assert Project.open(project.root).record("a.png").boxes[0].xyxy == (0, 0, 3, 3)


def test_writer_killed_mid_way_leaves_a_readable_project(project):
    """A process saving in a tight loop is SIGKILLed; the index must still load."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(os.getcwd())!r})
        from ml.store import Project, Box
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
    from ml.images import ImageError

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
