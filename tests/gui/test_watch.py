"""Changes made by another process show in the open window within about a second."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from ml.findings.severity import RegionReview, reviews, set_review
from ml.project.store import Box, Project
from tests.gui.helpers import focus_canvas

pytestmark = pytest.mark.gui


def test_another_writers_boxes_and_status_show_within_two_seconds(inspector, photos, qtbot):
    project = inspector.open_project(photos)
    key = inspector.session.key
    other = Project.open(project.root)  # as the CLI or a second window would
    other.set_boxes(key, [Box(2, 2, 20, 20, 1)])
    other.set_reviewed("img3.png")
    qtbot.waitUntil(lambda: len(inspector.layers.current_boxes()) == 1, timeout=2500)
    assert inspector.projects.status_of("img3.png").startswith("reviewed")
    assert "changed elsewhere: reloaded" in inspector.annotate.state.text()
    # this window's own edits are not news to it
    inspector.watcher.poll()
    assert not inspector.watcher.poll()


def _two_findings(photos) -> None:
    """A teacher mask with a dirt and a damage region on img0.png."""
    proj = Project.open_or_create(photos)
    lab = np.zeros((64, 80), np.uint8)
    lab[20:40, 10:30] = 1
    lab[30:50, 50:70] = 2
    proj.save_teacher_mask("img0.png", lab, "box")


def _stored(root, rid: str) -> RegionReview:
    return reviews(Project.open(root).record("img0.png")).get(rid, RegionReview())


def test_a_reload_keeps_the_note_being_typed_and_does_not_save_it_half(inspector, photos,
                                                                       qtbot):
    _two_findings(photos)
    inspector.open_project(photos)
    panel = inspector.findings
    qtbot.waitUntil(lambda: len(panel.model.rows) == 2, timeout=10000)
    panel.step(1)
    here, other_rid = panel.current().region_id, panel.model.rows[1].region_id
    focus_canvas(inspector, qtbot)  # the window active, so the note field can hold the focus
    panel.note.setFocus()
    qtbot.waitUntil(panel.note.hasFocus, timeout=5000)
    qtbot.keyClicks(panel.note, "crack at the ro")
    # another inspector decides on the other finding while this one types
    set_review(Project.open(photos), "img0.png", other_rid, level=5, by="bob")
    qtbot.waitUntil(lambda: any(r.region_id == other_rid and r.finding.severity == 5
                                for r in panel.model.rows), timeout=2500)
    assert "changed elsewhere: reloaded" in inspector.annotate.state.text()
    assert panel.current().region_id == here  # the same finding, the typing as it was
    assert panel.note.text() == "crack at the ro" and panel.note.hasFocus()
    assert panel.note.cursorPosition() == len("crack at the ro")
    assert _stored(photos, here).note == ""  # a reload saves no half-typed note
    qtbot.keyClicks(panel.note, "ot")
    qtbot.keyClick(panel.note, Qt.Key.Key_Return)
    assert _stored(photos, here).note == "crack at the root"
    assert _stored(photos, other_rid).level == 5  # the other's decision kept


def test_the_same_note_changed_elsewhere_is_told_and_the_later_wins(inspector, photos, qtbot):
    _two_findings(photos)
    inspector.open_project(photos)
    panel = inspector.findings
    qtbot.waitUntil(lambda: len(panel.model.rows) == 2, timeout=10000)
    panel.step(1)
    rid = panel.current().region_id
    other = Project.open(photos)
    # an untouched note field follows the stored note
    set_review(other, "img0.png", rid, note="seen from the ground", by="bob")
    qtbot.waitUntil(lambda: panel.note.text() == "seen from the ground", timeout=2500)
    assert "changed elsewhere: reloaded" in inspector.annotate.state.text()
    assert _stored(photos, rid).note == "seen from the ground"  # the reload wrote nothing back
    # this reviewer types over it while bob writes again: bob's note is not lost silently
    panel.note.setFocus()
    panel.note.selectAll()
    qtbot.keyClicks(panel.note, "leading edge crack")
    set_review(other, "img0.png", rid, note="bob's second look", by="bob")
    qtbot.waitUntil(lambda: "changed elsewhere" in inspector.annotate.state.text()
                    and inspector.watcher.project is not None, timeout=2500)
    qtbot.wait(1500)  # a poll has come and gone: the typing is still there
    assert panel.note.text() == "leading edge crack"
    qtbot.keyClick(panel.note, Qt.Key.Key_Return)
    assert _stored(photos, rid).note == "leading edge crack"  # the later one wins...
    assert "note changed elsewhere (by bob" in panel.status.text()  # ...and says whose it beat
    # the same level from two writers: the earlier writer's window shows the later value
    table = panel.table
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_2)
    set_review(other, "img0.png", rid, level=4, by="bob")
    qtbot.waitUntil(lambda: panel.current() is not None and panel.current().finding.severity
                    == 4, timeout=2500)
    assert "changed elsewhere: reloaded" in inspector.annotate.state.text()
