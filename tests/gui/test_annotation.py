"""Boxes (draw, classify, undo), classes, and pseudo-mask edits that batch runs leave alone."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from app.gui._class_manager import ClassManager
from ml.teachers.pseudo_label import EDITED
from tests.gui.helpers import focus_canvas, save_shot

pytestmark = pytest.mark.gui


def _rect(y0, x0, y1, x1):
    return np.array([[y0, x0], [y0, x1], [y1, x1], [y1, x0]], float)


def test_draw_classify_undo_and_manage_classes(inspector, photos, qtbot):
    project = inspector.open_project(photos)
    layers, key = inspector.layers, inspector.session.key
    canvas = focus_canvas(inspector, qtbot)
    qtbot.keyClick(canvas, Qt.Key.Key_2)  # damage
    assert inspector.annotate.picker.current == 2
    layers.boxes.add_rectangles(_rect(30, 50, 50, 70))
    assert [(b.xyxy, b.cls) for b in project.record(key).boxes] == [((50, 30, 70, 50), 2)]
    assert project.record(key).status == "boxed"
    assert inspector.projects.status_of(key) == "boxed · 1 boxes"
    # with the box selected, key 1 makes it dirt; the edge colour follows the class
    layers.boxes.selected_data = {0}
    qtbot.keyClick(canvas, Qt.Key.Key_1)
    assert project.record(key).boxes[0].cls == 1
    assert np.allclose(layers.boxes.edge_color[0][:3], np.array([240, 180, 0]) / 255)
    # moving a box is saved; undo / redo walk through the states
    layers.boxes.data = [_rect(30, 55, 50, 75)]  # a move: napari reports CHANGED
    assert project.record(key).boxes[0].xyxy == (55, 30, 75, 50)
    assert inspector.session.undo_boxes()
    assert project.record(key).boxes[0].xyxy == (50, 30, 70, 50)
    assert project.record(key).boxes[0].cls == 1
    assert inspector.session.undo_boxes()
    assert project.record(key).boxes[0].cls == 2
    assert inspector.session.redo_boxes()
    assert project.record(key).boxes[0].cls == 1
    layers.boxes.selected_data = {0}
    layers.boxes.remove_selected()
    assert project.record(key).boxes == []
    # a box reaching outside the photo is clipped to it
    layers.boxes.add_rectangles(_rect(-10, -5, 20, 200))
    assert project.record(key).boxes[0].xyxy == (0, 0, 80, 20)
    # class manager: rename, recolour and add a class
    dlg = ClassManager(project.classes)
    dlg.rows[0].name.setText("soiling")
    dlg.rows[1].set_color("#00ff00")
    dlg.add_class("erosion")
    assert dlg.validate() == ""
    inspector.apply_classes(dlg.classes())
    assert project.class_names() == ["background", "soiling", "damage", "erosion"]
    assert [b.text() for b in inspector.annotate.picker.group.buttons()] == [
        "soiling [1]", "damage [2]", "erosion [3]"]
    dlg.rows[0].name.setText("damage")
    assert "unique" in dlg.validate()
    dlg.deleteLater()


def test_grabcut_pseudo_label_and_person_edits_survive_batch(inspector, photos, qtbot, tmp_path):
    from ml.project.store import Box

    project = inspector.open_project(photos)
    for k in project.keys():
        project.set_boxes(k, [Box(8, 18, 32, 42, 1), Box(48, 28, 72, 52, 2)])
    inspector.show_key("img0.png")
    batch = inspector.batch
    assert batch.teacher.currentData()[0] == "auto"  # the default, as b2p pseudo-label's
    batch.set_teacher("grabcut")
    job = batch.pseudo_label(all_images=False)
    with qtbot.waitSignal(batch.job_finished, timeout=30000):
        pass
    assert len(job.result.done) == 1
    teacher = project.load_mask("img0.png", "teacher")
    assert teacher is not None and set(np.unique(teacher)) <= {0, 1, 2} and teacher.any()
    assert np.array_equal(inspector.layers.teacher.data, teacher)
    assert "1/1" in batch.progress.label.text()
    # a brush stroke on the pseudo-mask is saved (debounced) and marked as a person's edit
    layer = inspector.layers.teacher
    layer.selected_label = 2
    layer.brush_size = 5
    layer.paint((5, 5), 2)
    qtbot.waitUntil(lambda: project.record("img0.png").teacher.edited, timeout=5000)
    inspector.session.flush()
    edited = project.load_mask("img0.png", "teacher")
    assert edited[5, 5] == 2
    # 15 s, not 5: once, with training jobs on both cores, the save signal took longer
    qtbot.waitUntil(lambda: "— saved —" in inspector.viewer.title, timeout=15000)
    assert inspector.projects.status_of("img0.png").startswith("edited")
    save_shot(inspector.viewer, tmp_path, "02_pseudo_mask_edited")
    # pseudo-labelling every image leaves the edited one exactly as the person left it
    job = batch.pseudo_label(all_images=True)
    with qtbot.waitSignal(batch.job_finished, timeout=60000):
        pass
    assert len(job.result.skipped_for(EDITED)) == 1 and len(job.result.done) == 4
    assert np.array_equal(project.load_mask("img0.png", "teacher"), edited)
    assert np.array_equal(inspector.layers.teacher.data, edited)
    assert all(project.record(k).teacher is not None for k in project.keys())
