"""The main window on a field laptop: it fits the screen, the photo gets most of the width,
every dock is reachable, the Findings table shows its rows and no text is cut.

The sizes of real screens are tested in a fresh process each (``window_probe``): its own Xvfb
screen of that size, openbox as the window manager when installed, and QT_SCALE_FACTOR, none
of which can change inside the test session's QApplication. The layout's own rules (tab groups,
napari's panels, reset, one layout per screen size) are tested in-process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from qtpy.QtWidgets import QApplication, QLabel

from app.gui import _dock_layout
from app.gui._layout_report import in_front, layout_report

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[2]


def _settle():
    for _ in range(5):
        QApplication.processEvents()


def _docks(inspector) -> dict[str, object]:
    return {d.windowTitle(): d for d in inspector.docks.docks()}


# ---------------------------------------------------------------------- real screen sizes
def probe(photos: Path, tmp_path: Path, size: str, scale: str = "1") -> dict:
    """The app started on an Xvfb screen of ``size`` ("1366x768"), measured."""
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_SCALE_FACTOR": scale,
           "XDG_CONFIG_HOME": str(tmp_path / "config")}  # a first start: no saved layout
    env.pop("DISPLAY", None)
    cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {size}x24", sys.executable, "-m",
           "tests.gui.window_probe", str(photos), "--wm"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("REPORT ")), None)
    assert line is not None, out.stderr[-3000:]
    return json.loads(line[len("REPORT "):])


@pytest.mark.slow  # a fresh app on its own screen, about 10 s each
@pytest.mark.parametrize(("size", "scale", "canvas"), [
    ("1366x768", "1", 0.55), ("1920x1080", "1", 0.60), ("1366x768", "1.25", 0.55)])
def test_the_window_fits_a_laptop_screen_on_first_start(photos, tmp_path, size, scale, canvas):
    r = probe(photos, tmp_path, size, scale)
    sw, sh = r["screen"]
    assert r["fits"], f"frame {r['frame']} runs past the {sw}×{sh} screen"
    assert r["window"][2] <= sw and r["window"][3] <= sh
    if r["wm"]:
        assert r["maximized"]
    assert r["preview"] == r["window"]  # the window does not jump when the viewer is ready
    assert r["canvas_share"] >= canvas, r
    assert r["findings_rows"] >= 8, r
    assert r["unreachable"] == [] and r["cut"] == [], r
    assert r["after_show"] == {"fits": True, "unreachable": [], "min_fits": True}, r


# ---------------------------------------------------------------------- the layout's rules
def test_each_task_is_a_tab_group_and_a_new_dock_joins_its_group(inspector, qtbot):
    docks = _docks(inspector)
    win = inspector.viewer.window._qt_window
    assert docks["Corrections"] in win.tabifiedDockWidgets(docks["Annotate"])
    label = QLabel("review")
    added = inspector.add_dock(label, "Review", group="predict")
    assert added in inspector.docks.groups["predict"]
    assert docks["Predict"] in win.tabifiedDockWidgets(added)  # one tab away from Predict
    with pytest.raises(ValueError, match="unknown dock group"):
        inspector.add_dock(QLabel("x"), "X", group="nowhere")
    inspector.docks.arrange()  # and it stays with its group when the layout is placed again
    assert docks["Predict"] in win.tabifiedDockWidgets(added)


def test_every_dock_is_in_front_or_one_tab_away_with_room_to_show(inspector, qtbot):
    rep = layout_report(inspector)
    assert rep.unreachable == []
    assert rep.cut == []
    assert rep.findings_rows >= 8
    assert inspector.docks.plan is not None


def test_napari_panels_are_hidden_and_one_menu_action_away(inspector, qtbot):
    qv = inspector.viewer.window._qt_viewer
    view = inspector.viewer.window.view_menu
    action = view.napari_panels_action
    assert qv.dockLayerControls.isHidden() and qv.dockLayerList.isHidden()
    action.setChecked(True)
    _settle()
    assert in_front(qv.dockLayerControls)
    assert inspector.docks.napari_panels_shown()
    win = inspector.viewer.window._qt_window
    avail = win.screen().availableGeometry()
    hint = win.minimumSizeHint()
    assert hint.width() <= avail.width() and hint.height() <= avail.height()
    action.setChecked(False)
    assert qv.dockLayerControls.isHidden()


def test_reset_layout_puts_a_closed_or_floated_dock_back(inspector, qtbot):
    docks = _docks(inspector)
    win = inspector.viewer.window._qt_window
    docks["Train"].close()
    docks["Findings"].setFloating(True)
    inspector.viewer.window.view_menu.reset_layout_action.trigger()
    _settle()
    assert not docks["Train"].isHidden()
    assert not docks["Findings"].isFloating()
    assert docks["Train"] in win.tabifiedDockWidgets(docks["Findings"])


def test_layout_and_active_tabs_are_kept_per_screen_size(inspector, qtbot, monkeypatch):
    docks = _docks(inspector)
    layout = inspector.docks
    screen = {"key": "1366x768"}
    monkeypatch.setattr(_dock_layout, "screen_key", lambda _w: screen["key"])
    layout.arrange()
    docks["Train"].raise_()
    _settle()
    layout.save()  # the laptop's screen: Train in front
    screen["key"] = "1920x1080"
    layout.screen_changed()  # docked to a large monitor: never saved there, so the plan's
    _settle()
    assert in_front(docks["Annotate"]) and not in_front(docks["Train"])
    docks["Metadata"].raise_()
    _settle()
    screen["key"] = "1366x768"
    layout.screen_changed()  # back on the laptop: its own layout, Train in front again
    _settle()
    assert in_front(docks["Train"])
    screen["key"] = "1920x1080"
    layout.screen_changed()
    _settle()
    assert in_front(docks["Metadata"])


@pytest.mark.parametrize(("width", "plan"), [(911, "narrow"), (1093, "narrow"),
                                             (1366, "medium"), (1920, "wide")])
def test_the_plan_follows_the_width_in_logical_pixels(width, plan):
    assert _dock_layout.plan_for(width).name == plan
    p = _dock_layout.plan_for(width)
    groups = [g for stacks in p.columns.values() for stack in stacks for g in stack]
    assert sorted(groups) == sorted(_dock_layout.GROUPS)  # every group has a place
    assert sum(p.width.values()) <= 0.45  # the photo keeps at least 55 % of the width


def test_a_cut_file_name_shows_whole_in_a_tooltip(qtbot):
    from qtpy.QtCore import QPoint
    from qtpy.QtGui import QHelpEvent
    from qtpy.QtWidgets import QListWidget, QToolTip, QVBoxLayout, QWidget

    from app.gui._window_geometry import fit_width

    name = "0587ebf7-6a25-44b6-8044-4d93ddc17c9d_jpeg.rf.415232b12b6a.jpg"
    panel = QWidget()
    label, short = QLabel(f"<b>{name}</b>"), QLabel("Turbine")
    listing = QListWidget()
    listing.addItems([f"{name}\npredicted · 2 boxes", "a.jpg"])
    lay = QVBoxLayout(panel)
    for w in (label, short, listing):
        lay.addWidget(w)
    fit_width(panel)
    qtbot.addWidget(panel)
    panel.setFixedWidth(200)
    panel.show()
    qtbot.waitExposed(panel)
    from app.gui import _text_tips

    assert _text_tips.label_cut(label) == name
    assert _text_tips.label_cut(short) is None
    first = listing.visualItemRect(listing.item(0)).center()
    assert _text_tips.item_cut(listing, first) == f"{name}\npredicted · 2 boxes"
    assert _text_tips.item_cut(listing, listing.visualItemRect(listing.item(1)).center()) is None
    ev = QHelpEvent(QHelpEvent.Type.ToolTip, QPoint(5, 5), label.mapToGlobal(QPoint(5, 5)))
    QApplication.sendEvent(label, ev)
    assert QToolTip.text() == name
    QToolTip.hideText()
