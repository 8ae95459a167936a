"""The Findings dock: review by keyboard (severity, undo, note, accept), zoom, whole project."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from qtpy.QtCore import Qt

from ml.findings.review import list_findings
from ml.project.store import Project
from tests.gui.helpers import focus_canvas, save_shot

pytestmark = pytest.mark.gui


def _inspected(photos) -> None:
    """Teacher masks with a dirt and a damage region on three of the five photos."""
    proj = Project.open_or_create(photos)
    lab = np.zeros((64, 80), np.uint8)
    lab[20:40, 10:30] = 1
    lab[30:50, 50:70] = 2
    for key in ("img0.png", "img1.png", "img2.png"):
        proj.save_teacher_mask(key, lab, "box")
        proj.set_meta(key, turbine="T1", blade="A" if key != "img2.png" else "B")
    proj.set_meta("img0.png", gsd_mm=2.0)


def _focus_table(inspector, qtbot):
    focus_canvas(inspector, qtbot)  # the window active, so its shortcuts would fire
    table = inspector.findings.table
    table.setFocus()
    qtbot.waitUntil(table.hasFocus, timeout=5000)
    return table


def _review(root, key: str = "img0.png"):
    """The findings of ``key`` as a freshly opened project sees them: region id -> finding."""
    return {r.region_id: r.finding for r in list_findings(Project.open(root), key=key).rows}


def test_keyboard_review_with_undo_note_and_accept_reaches_the_report(inspector, photos, qtbot,
                                                                      tmp_path):
    from app.cli import main
    from ml.findings.report import collect

    _inspected(photos)
    inspector.open_project(photos)
    panel = inspector.findings
    assert inspector.session.key == "img0.png"
    qtbot.waitUntil(lambda: len(panel.model.rows) == 2, timeout=10000)  # listed in a thread
    assert [r.finding.class_name for r in panel.model.rows] == ["damage", "dirt"]
    assert panel.table.isColumnHidden(0)  # the photo column: one photo is listed
    table = _focus_table(inspector, qtbot)  # entering the list picks the first finding
    damage = panel.current()
    rid = damage.region_id
    assert damage.finding.region.bbox == (50, 30, 70, 50)
    assert np.allclose(inspector.viewer.camera.center[-2:], (40, 60))
    assert inspector.viewer.camera.zoom > 2
    assert "Suggested 3 by the rule damage" in panel.rule.text()  # 1600 mm^2 > 100
    picked = inspector.annotate.picker.current
    qtbot.keyClick(table, Qt.Key.Key_4)
    assert _review(photos)[rid].reviewer == 4  # saved at once
    assert panel.current().finding.severity == 4 and panel.current().region_id == rid
    qtbot.keyClick(table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _review(photos)[rid].reviewer is None
    qtbot.keyClick(table, Qt.Key.Key_2)
    assert _review(photos)[rid].reviewer == 2
    # the digit went to the findings, not to the window's class keys
    assert inspector.annotate.picker.current == picked
    # a note, typed and entered, then Enter on the table accepts and moves on
    qtbot.keyClicks(panel.note, "crack at the root")
    qtbot.keyClick(panel.note, Qt.Key.Key_Return)
    assert table.hasFocus() and _review(photos)[rid].note == "crack at the root"
    qtbot.keyClick(table, Qt.Key.Key_Return)
    assert _review(photos)[rid].accepted
    assert panel.current().finding.class_name == "dirt"
    qtbot.keyClick(table, Qt.Key.Key_P)
    assert panel.current().region_id == rid and panel.model.rows[0].finding.accepted
    save_shot(inspector.viewer, tmp_path, "findings_review")
    # another project opening the folder sees it all, and so does the report
    reopened = _review(photos)[rid]
    assert (reopened.severity, reopened.note, reopened.accepted) == (2, "crack at the root", True)
    assert main(["report", str(photos), "--out", str(tmp_path / "rep")]) == 0
    with open(tmp_path / "rep" / "findings.csv", newline="", encoding="utf-8") as fh:
        row = next(r for r in csv.DictReader(fh)
                   if r["image"] == "img0.png" and r["region_id"] == rid)
    assert (row["severity"], row["suggested_severity"], row["override"]) == ("2", "3", "yes")
    assert (row["note"], row["accepted"], row["action"]) == (
        "crack at the root", "yes", "Monitor; compare at the next inspection")
    data = collect(Project.open(photos))
    f = next(f for f in data.findings if f.key == "img0.png" and f.region.id == rid)
    assert (f.severity, f.note, f.accepted) == (2, "crack at the root", True)
    # on another photo, Ctrl+Z takes the reviewer back to the photo of the last decision
    inspector.projects.step(1)
    qtbot.waitUntil(lambda: {r.key for r in panel.model.rows} == {"img1.png"}, timeout=10000)
    assert inspector.session.key == "img1.png" and panel.current() is None
    table = _focus_table(inspector, qtbot)
    qtbot.keyClick(table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert inspector.session.key == "img0.png"
    qtbot.waitUntil(lambda: panel.current() is not None and panel.current().key == "img0.png",
                    timeout=10000)
    assert panel.current().region_id == rid
    assert not panel.current().finding.accepted and not _review(photos)[rid].accepted


def test_whole_project_list_filters_and_opens_the_photo_of_a_finding(inspector, photos, qtbot):
    _inspected(photos)
    inspector.open_project(photos)
    panel = inspector.findings
    panel.whole.setChecked(True)
    qtbot.waitUntil(lambda: len(panel.model.rows) == 6, timeout=10000)
    assert not panel.table.isColumnHidden(0)
    assert [r.key for r in panel.model.rows] == ["img0.png"] * 2 + ["img1.png"] * 2 + \
        ["img2.png"] * 2
    panel.blade.setCurrentIndex(panel.blade.findData("B"))
    assert {r.key for r in panel.model.rows} == {"img2.png"}
    panel.blade.setCurrentIndex(0)
    panel.cls.setCurrentIndex(panel.cls.findData("dirt"))
    assert [r.key for r in panel.model.rows] == ["img0.png", "img1.png", "img2.png"]
    table = _focus_table(inspector, qtbot)
    assert panel.current().key == "img0.png"
    qtbot.keyClick(table, Qt.Key.Key_N)  # the dirt of img1: that photo opens, zoomed
    assert panel.current().key == "img1.png" and inspector.session.key == "img1.png"
    assert np.allclose(inspector.viewer.camera.center[-2:], (30, 20))
    # accept with "not yet accepted" on: the row leaves the list, the next one is current
    panel.unreviewed.setChecked(True)
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_Return)
    assert [r.key for r in panel.model.rows] == ["img0.png", "img2.png"]
    assert panel.current().key == "img2.png" and inspector.session.key == "img2.png"
    qtbot.keyClick(table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert panel.current().key == "img1.png" and len(panel.model.rows) == 3
    assert not any(f.accepted for f in _review(photos, "img1.png").values())


def test_a_painted_mask_lists_again_and_box_edits_do_not(inspector, photos, qtbot, monkeypatch):
    import ml.findings.review

    _inspected(photos)
    inspector.open_project(photos)
    panel = inspector.findings
    qtbot.waitUntil(lambda: len(panel.model.rows) == 2, timeout=10000)
    reads = []
    real = ml.findings.review.photo_findings
    monkeypatch.setattr(ml.findings.review, "photo_findings",
                        lambda project, key, *a: reads.append(key) or real(project, key, *a))
    inspector.session.saved.emit("img0.png")  # as after a box edit: the masks are the same
    assert "Listing" not in panel.status.text() and reads == []  # no listing started
    label = np.array(inspector.layers.teacher.data, copy=True)
    label[2:6, 2:6] = 2  # a third region painted
    inspector.layers.teacher.data = label
    inspector.session.save_mask_now()
    qtbot.waitUntil(lambda: len(panel.model.rows) == 3, timeout=5000)
    assert reads == ["img0.png"]
