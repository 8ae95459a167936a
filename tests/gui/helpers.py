"""Helpers shared by the GUI tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

SHOTS = Path("/tmp/gui_shots")


def write_photos(folder: Path, n: int = 5, h: int = 64, w: int = 80) -> list[str]:
    """Noisy grey photos with a yellow (dirt-like) and a red (damage-like) patch."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = []
    for i in range(n):
        img = np.full((h, w, 3), 110, np.uint8) + rng.integers(0, 25, (h, w, 3), dtype=np.uint8)
        img[20:40, 10:30] = (210, 185, 40)
        img[30:50, 50:70] = (160, 25, 35)
        names.append(f"img{i}.png")
        Image.fromarray(img).save(folder / names[-1])
    return names


def save_shot(widget_or_viewer, tmp_path: Path, name: str) -> Path:
    """Screenshot into the test's temp folder and a copy under /tmp/gui_shots."""
    out = tmp_path / "shots" / f"{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(widget_or_viewer, "screenshot"):
        widget_or_viewer.screenshot(str(out), canvas_only=False)
    else:
        widget_or_viewer.grab().save(str(out))
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(out, SHOTS / out.name)
    return out


def focus_canvas(inspector, qtbot):
    """Activate the main window and focus the canvas, so key presses behave as typed."""
    from qtpy.QtWidgets import QApplication

    win = inspector.viewer.window._qt_window
    win.activateWindow()
    win.raise_()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=5000)
    canvas = inspector.viewer.window._qt_viewer
    canvas.setFocus()
    return canvas
