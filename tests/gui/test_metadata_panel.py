"""The Metadata dock: bulk set on a selection, auto-fill from EXIF/XMP, confirming guesses."""

from __future__ import annotations

import pytest
from qtpy.QtCore import Qt

from app.gui._metadata_panel import GUESSED_STYLE, MIXED
from ml.metadata.values import guessed
from ml.project.store import Project
from tests._drone_photo import dji_xmp, write_drone_photo
from tests.conftest import write_photo
from tests.gui.helpers import save_shot

pytestmark = pytest.mark.gui
DRONE = "WTG07/B/LE/DJI_0042.JPG"


def _select(panel, keys: list[str]) -> None:
    """Select ``keys`` in the project list as Ctrl-clicks would."""
    lst = panel.list
    lst.clearSelection()
    for i in range(lst.count()):
        if lst.item(i).text().split("\n")[0] in keys:
            lst.item(i).setSelected(True)


def _type(qtbot, editor, text: str) -> None:
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)


def test_bulk_set_on_a_selection(inspector, photos, qtbot, tmp_path):
    project = inspector.open_project(photos)
    meta = inspector.metadata
    assert meta.keys == ["img0.png"]  # the shown photo is selected
    _select(inspector.projects, ["img1.png", "img2.png", "img3.png"])
    assert meta.keys == ["img1.png", "img2.png", "img3.png"]
    assert "3 photos" in meta.title.text()
    _type(qtbot, meta.editors["turbine"], "WTG07")
    side = meta.editors["side"]
    side.setCurrentIndex(side.findText("TE"))
    side.activated.emit(side.currentIndex())  # what a person's pick sends
    for key in ("img1.png", "img2.png", "img3.png"):
        assert project.record(key).meta == {"turbine": "WTG07", "side": "trailing_edge"}
    assert project.record("img0.png").meta == {}
    # a bad value is refused with a message and stores nothing
    _type(qtbot, meta.editors["distance_m"], "far")
    assert "distance_m 'far' is not a number" in meta.status.text()
    assert "distance_m" not in project.record("img1.png").meta
    # differing values show as mixed; an edit sets them all the same
    _select(inspector.projects, ["img0.png", "img1.png"])
    turbine = meta.editors["turbine"]
    assert turbine.text() == "" and turbine.placeholderText() == MIXED
    assert meta.editors["side"].currentIndex() == -1
    _type(qtbot, meta.editors["date"], "2025-06-01")
    reopened = Project.open(photos)  # saved to disk at once
    assert reopened.record("img0.png").meta == {"date": "2025-06-01"}
    assert reopened.record("img1.png").meta["date"] == "2025-06-01"
    # clearing a field with the empty choice
    side.setCurrentIndex(0)
    side.activated.emit(0)
    assert "side" not in Project.open(photos).record("img1.png").meta
    save_shot(inspector.viewer, tmp_path, "metadata_bulk")


def test_auto_fill_marks_guesses_and_confirm_clears_them(inspector, tmp_path, qtbot):
    photos = tmp_path / "drone"
    write_drone_photo(photos / DRONE, dji_xmp())
    write_photo(photos / "plain.png")
    project = inspector.open_project(photos)
    meta = inspector.metadata
    assert meta.keys == [DRONE] and not meta.is_guessed("turbine")
    job = meta.auto_fill()
    assert job is not None and not meta.autofill_btn.isEnabled()  # one run at a time
    qtbot.waitUntil(lambda: "photos given metadata" in meta.status.text(), timeout=10000)
    assert meta.autofill_btn.isEnabled()
    assert meta.editors["turbine"].text() == "WTG07"
    assert meta.editors["blade"].currentText() == "B"
    assert meta.editors["side"].currentText() == "LE"
    assert meta.editors["date"].text() == "2024-05-17"
    assert meta.editors["distance_m"].text() == "45.2"
    assert float(meta.editors["gsd_mm"].text()) == pytest.approx(45.2e3 * 13.2 / (8.8 * 120),
                                                                  rel=1e-3)
    for name in ("turbine", "blade", "side", "date", "distance_m", "gsd_mm"):
        assert meta.is_guessed(name) and meta.editors[name].styleSheet() == GUESSED_STYLE
    assert "not the distance to the blade" in meta.editors["distance_m"].toolTip()
    save_shot(inspector.viewer, tmp_path, "metadata_guessed")
    # ✓ on one field confirms it; an edit replaces a guess; "Confirm all" takes the rest
    qtbot.mouseClick(meta.confirm_btns["side"], Qt.MouseButton.LeftButton)
    assert not meta.is_guessed("side") and meta.editors["side"].styleSheet() == ""
    assert "side" not in guessed(project.record(DRONE).meta)
    _type(qtbot, meta.editors["distance_m"], "8")  # the guessed GSD follows the distance
    assert not meta.is_guessed("distance_m") and meta.is_guessed("gsd_mm")
    assert float(meta.editors["gsd_mm"].text()) == pytest.approx(8e3 * 13.2 / (8.8 * 120),
                                                                  rel=1e-3)
    qtbot.mouseClick(meta.confirm_all_btn, Qt.MouseButton.LeftButton)
    assert guessed(Project.open(photos).record(DRONE).meta) == {}
    assert not meta.confirm_all_btn.isEnabled()
    # auto-fill again: the confirmed values stay as the person left them
    meta.auto_fill()
    qtbot.waitUntil(lambda: meta.job is not None and not meta.job.is_running(), timeout=10000)
    qtbot.waitUntil(lambda: meta.autofill_btn.isEnabled(), timeout=5000)
    rec = Project.open(photos).record(DRONE).meta
    assert rec["distance_m"] == 8 and guessed(rec) == {}
