"""The Blade map dock: findings at their radius; a click on a marker opens the photo there."""

from __future__ import annotations

import pytest
from qtpy.QtCore import QPoint, Qt

from bench.history import build_project
from ml.datasets.synthetic_history import make_history
from ml.findings.blade_map import shapes

pytestmark = pytest.mark.gui


def test_click_on_a_marker_opens_its_photo_and_rings_the_current_one(inspector, qtbot,
                                                                     tmp_path):
    hs = make_history(seed=1, blades=("A", "B"), stations=(6.0,))
    proj = build_project(tmp_path, hs)
    inspector.open_project(proj.root)
    panel = inspector.blade_map
    qtbot.waitUntil(lambda: len(panel.maps) == 2, timeout=20000)
    assert panel.blade.count() == 2 and "blade A" in panel.blade.itemText(0)
    panel.view.resize(900, 220)
    panel.blade.setCurrentIndex(1)
    bm = panel.maps[1]
    marker = next(s for s in shapes(bm) if s.kind == "circle" and s.ref
                  and not s.ref.startswith(inspector.session.key + "#"))
    key = marker.ref.split("#")[0]
    k = panel.view._box().width() / 900.0
    qtbot.mouseClick(panel.view, Qt.MouseButton.LeftButton,
                     pos=QPoint(round(marker.points[0] * k), round(marker.points[1] * k)))
    assert inspector.session.key == key
    assert panel.current_key == key and panel.view.highlight == key
    assert inspector.viewer.camera.zoom > 1


def test_findings_dock_shows_changes_and_filters_new_and_grown(inspector, qtbot, tmp_path):
    from app.gui.findings.model import COLUMNS

    hs = make_history(seed=1, blades=("A", "B"), stations=(6.0,))
    proj = build_project(tmp_path, hs)
    inspector.open_project(proj.root)
    panel = inspector.findings
    change_col = [c[0] for c in COLUMNS].index("Change")
    assert panel.table.isColumnHidden(change_col)
    panel.source = "teacher"
    panel.whole.setChecked(True)
    qtbot.waitUntil(lambda: len(panel.model.rows) == len(panel._all) > 0, timeout=20000)
    panel.changes.enabled.setChecked(True)
    qtbot.waitUntil(lambda: bool(panel.model.changes), timeout=30000)
    assert not panel.table.isColumnHidden(change_col)
    expected = {d.status for d in hs.defects} - {"gone"}
    shown = {panel.model.data(panel.model.index(i, change_col))
             for i in range(len(panel.model.rows))}
    assert expected <= shown | {""}
    panel.changes.status.setCurrentIndex(panel.changes.status.findData("grown"))
    rows = [panel.model.data(panel.model.index(i, change_col))
            for i in range(len(panel.model.rows))]
    assert rows and set(rows) == {"grown"}
    panel.table.setCurrentIndex(panel.model.index(0, 1))
    assert panel.changes.preview.isVisible() and not panel.changes.preview.pixmap().isNull()
    panel.changes.status.setCurrentIndex(panel.changes.status.findData("new grown"))
    rows = {panel.model.data(panel.model.index(i, change_col))
            for i in range(len(panel.model.rows))}
    assert rows == {"new", "grown"} & expected
