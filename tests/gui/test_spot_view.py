"""The spot view: the same spot in both inspections, registered, both masks, a swipe."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from app.gui.findings.spot_view import SpotView, swipe
from bench.history import build_project
from ml.datasets.synthetic_history import make_history
from ml.findings.history import project_history
from ml.findings.history_crops import EARLIER
from tests.gui.helpers import save_shot

pytestmark = pytest.mark.gui


@pytest.fixture
def small(tmp_path):
    hs = make_history(seed=1, blades=("A",), stations=(6.0,))
    return hs, build_project(tmp_path, hs)


def _shown(view: SpotView, qtbot, change, comp) -> None:
    view.show_change(change, comp)
    qtbot.waitUntil(lambda: view.views is not None, timeout=20000)


def _earlier_mask_pixels(panel: np.ndarray) -> int:
    """Pixels drawn in the earlier region's colour (its outline)."""
    return int(np.all(np.abs(panel.astype(int) - EARLIER) < 40, axis=2).sum())


def test_a_registered_pair_side_by_side_and_swiped(small, qtbot, tmp_path):
    _, proj = small
    comp = project_history(proj, source="teacher").latest
    grown = next(c for c in comp.changes if c.status == "grown")
    view = SpotView()
    qtbot.addWidget(view)
    view.show()
    _shown(view, qtbot, grown, comp)
    v = view.views
    assert v.registered and v.earlier.shape == v.current.shape
    assert _earlier_mask_pixels(v.earlier) > 0 and _earlier_mask_pixels(v.current) > 0
    assert not view.earlier.pixmap().isNull() and view.earlier_caption.text() == "2024-06-10"
    assert view.current_caption.text() == "2025-06-18" and "registered" in view.how.text()
    assert view.pair.isVisible() and not view.swipe_box.isVisible()
    view.mode.setCurrentIndex(1)  # swipe: one frame, the line where the slider says
    assert view.swipe_box.isVisible() and not view.pair.isVisible()
    view.slider.setValue(25)
    img = view.swiped.pixmap().toImage()
    assert img.width() == v.current.shape[1]
    mixed = swipe(v.earlier, v.current, 0.25)
    x = round(0.25 * mixed.shape[1])
    assert np.array_equal(mixed[:, : x - 1], v.earlier[:, : x - 1])
    assert np.array_equal(mixed[:, x + 1:], v.current[:, x + 1:])
    save_shot(view, tmp_path, "spot_view_swipe")


def test_an_earlier_photo_gone_says_so_and_keeps_its_mask(small, qtbot, tmp_path):
    _, proj = small
    for k in proj.keys():
        if k.startswith("2024"):
            proj.image_path(k).unlink()
    comp = project_history(proj, source="teacher").latest
    matched = next(c for c in comp.changes if c.earlier is not None and c.current is not None)
    view = SpotView()
    qtbot.addWidget(view)
    view.show()
    _shown(view, qtbot, matched, comp)
    v = view.views
    assert not v.registered and v.earlier_note == "photo missing"
    assert view.earlier_caption.text() == "2024-06-10: photo missing"
    assert _earlier_mask_pixels(v.earlier) > 0  # the stored mask, drawn on grey
    assert not view.mode.model().item(1).isEnabled()  # no swipe without one frame
    view.mode.setCurrentIndex(1)
    assert view.mode.currentIndex() == 0 and view.pair.isVisible()
    assert "earlier photo missing" in view.how.text()
    save_shot(view, tmp_path, "spot_view_photo_missing")


def test_opened_from_the_findings_docks_changes(inspector, qtbot, small):
    from app.gui.findings.model import COLUMNS

    _, proj = small
    inspector.open_project(proj.root)
    panel = inspector.findings
    panel.source = "teacher"
    panel.whole.setChecked(True)
    qtbot.waitUntil(lambda: len(panel.model.rows) == len(panel._all) > 0, timeout=20000)
    panel.changes.enabled.setChecked(True)
    qtbot.waitUntil(lambda: bool(panel.model.changes), timeout=30000)
    assert not panel.changes.open_btn.isVisible()
    change_col = [c[0] for c in COLUMNS].index("Change")
    row = next(i for i in range(len(panel.model.rows))
               if panel.model.data(panel.model.index(i, change_col)))
    panel.table.setCurrentIndex(panel.model.index(row, 1))
    assert panel.changes.open_btn.isVisible()
    qtbot.mouseClick(panel.changes.open_btn, Qt.MouseButton.LeftButton)
    view = panel.changes.view
    assert view is not None and view.isVisible()
    qtbot.waitUntil(lambda: view.views is not None, timeout=20000)
    view.close()
    panel.table.doubleClicked.emit(panel.model.index(row, change_col))  # the change column
    assert view.isVisible()
    qtbot.waitUntil(lambda: view.views is not None, timeout=20000)
    assert panel.changes.change.ident in view.title.text()
