"""The Review dock: proposals one at a time, A/R/C/B, arrows and Ctrl+Z, under 100 ms each."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from ml.findings import decisions as D
from ml.prediction.proposals import record_proposals
from ml.project.store import Box, Project
from tests.gui.helpers import focus_canvas, save_shot

pytestmark = pytest.mark.gui


def _proposed(photos) -> None:
    """Student masks with a dirt and a damage proposal on three photos nobody boxed."""
    proj = Project.open_or_create(photos)
    lab = np.zeros((64, 80), np.uint8)
    lab[20:40, 10:30] = 1
    lab[30:50, 50:70] = 2
    conf = np.full(lab.shape, 190, np.uint8)
    for key in ("img0.png", "img1.png", "img2.png"):
        proj.save_student(key, lab, model="m", confidence=conf)
        record_proposals(proj, key, lab, conf, "m")


def test_keyboard_review_decides_undoes_and_is_fast(inspector, photos, qtbot, tmp_path):
    _proposed(photos)
    inspector.open_project(photos)
    panel = inspector.proposals
    assert len(panel.items) == 6 and panel.current() is not None
    focus_canvas(inspector, qtbot)
    panel.setFocus()
    qtbot.waitUntil(panel.hasFocus, timeout=5000)
    first = panel.current()
    assert inspector.session.key == first.key  # the viewer shows the proposal's photo
    qtbot.keyClick(panel, Qt.Key.Key_A)
    panel.flush()
    proj = inspector.project
    assert D.decisions(proj, first.key)[first.proposal.id].action == D.ACCEPTED
    assert [b.source for b in proj.record(first.key).boxes] == ["proposal"]
    if inspector.session.key == first.key:  # on screen: the layer shows the new box
        assert len(inspector.session.layers.current_boxes()) == 1
    second = panel.current()
    qtbot.keyClick(panel, Qt.Key.Key_R)
    panel.flush()
    assert D.decisions(proj, second.key)[second.proposal.id].action == D.REJECTED
    save_shot(inspector.viewer, tmp_path, "review_dock")
    qtbot.keyClick(panel, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert second.proposal.id not in D.decisions(proj, second.key)
    assert panel.current().proposal.id == second.proposal.id
    assert panel.change_class("dirt")
    panel.flush()
    assert D.decisions(proj, second.key)[second.proposal.id].cls == 1
    qtbot.keyClick(panel, Qt.Key.Key_Left)
    assert panel.current().proposal.id == second.proposal.id
    qtbot.keyClick(panel, Qt.Key.Key_Right)
    # B: the box the person drew over the proposal stands for it
    item = panel.current()
    x0, y0, x1, y1 = item.proposal.box
    proj.add_boxes(item.key, [Box(x0 - 2, y0 - 2, x1 + 3, y1 + 3, 2, "manual")])
    qtbot.keyClick(panel, Qt.Key.Key_B)
    panel.flush()
    d = D.decisions(proj, item.key)[item.proposal.id]
    assert d.box == (x0 - 2, y0 - 2, x1 + 3, y1 + 3)
    assert [b.source for b in proj.record(item.key).boxes].count("manual") == 0
    for _ in range(8):  # the rest, by keyboard
        qtbot.keyClick(panel, Qt.Key.Key_R)
    panel.flush()
    assert panel.current() is None and "done" in panel.title.text()
    assert len(D.decisions(proj, "img2.png")) + len(D.decisions(proj, "img1.png")) >= 4
    print("latency ms", [round(v) for v in panel.latencies])  # bench/review_latency.py times it


def test_removed_photo_and_two_decisions_are_told(inspector, photos, qtbot):
    _proposed(photos)
    inspector.open_project(photos)
    panel = inspector.proposals
    item = panel.current()
    D.decide(inspector.project, item.key, item.proposal.id, D.REJECTED, by="someone else")
    assert panel.accept()
    panel.flush()
    assert "replaces an earlier decision: rejected by someone else" in panel.status.text()
    gone = panel.current().key
    inspector.project.remove_images([gone])
    assert not panel.accept()
    assert "no longer in the project" in panel.status.text()
    assert panel.items and all(i.key != gone for i in panel.items)


def test_threshold_slider_hides_proposals_under_it_and_says_what_it_gives(inspector, photos):
    _proposed(photos)
    inspector.open_project(photos)
    panel = inspector.proposals
    assert len(panel.items) == 6
    panel.thr_class.setCurrentIndex(panel.thr_class.findText("dirt"))
    panel.thr_slider.setValue(80)  # the proposals' confidence is 0.75
    assert len(panel.items) == 3 and all(i.proposal.cls == 2 for i in panel.items)
    assert ">= 0.80" in panel.thr_text.text()
    assert not panel.thr_save.isEnabled()  # no model to keep it in
    panel.thr_slider.setValue(50)
    assert len(panel.items) == 6


def test_a_class_removed_while_its_proposals_wait_is_told(inspector, photos):
    from ml.common.classes import ClassInfo

    _proposed(photos)
    inspector.open_project(photos)
    inspector.apply_classes([ClassInfo(0, "background", "#000000"),
                             ClassInfo(1, "dirt", "#ffff00")])
    panel = inspector.proposals
    panel.refresh()
    item = next(i for i in panel.items if i.proposal.cls == 2)
    assert item.class_missing
    panel.index = panel.items.index(item)
    assert panel.accept()
    panel.flush()
    assert "no longer has" in panel.status.text()
    assert not D.decisions(inspector.project, item.key)
    panel.index = panel.items.index(item)
    assert panel.reject()  # rejecting needs no class
    panel.flush()
    assert D.decisions(inspector.project, item.key)[item.proposal.id].action == D.REJECTED
