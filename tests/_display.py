"""Whether the GUI tests can run here: a display (or Xvfb started by pytest-xvfb) and Qt on it.

A machine without Xvfb or Qt's xcb libraries makes Qt abort the whole pytest process inside
pytest-qt's ``qapp`` fixture, so the probe runs in a child process and the GUI tests are skipped
with one line that names the missing packages.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PACKAGES_FILE = Path(__file__).resolve().parents[1] / ".ci" / "gui-packages.txt"

# A QApplication on the platform Qt would use, plus an OpenGL widget (napari's canvas needs GL).
_PROBE = """
from PySide6.QtWidgets import QApplication
from PySide6.QtOpenGLWidgets import QOpenGLWidget
app = QApplication(["probe"])
w = QOpenGLWidget(); w.resize(8, 8); w.show(); app.processEvents()
print("ok", app.platformName())
"""


def gui_packages() -> list[str]:
    """The Debian packages the GUI tests need, from the one list ``.ci/run`` installs."""
    lines = PACKAGES_FILE.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def install_hint() -> str:
    return f"apt-get install {' '.join(gui_packages())}   (or: bash .ci/run)"


def unavailable_reason(timeout: float = 60.0) -> str | None:
    """None when Qt can open a window here; otherwise why not, in one line."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return "no display and no Xvfb"
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"Qt did not open a window within {timeout:.0f} s"
    if r.returncode == 0 and r.stdout.startswith("ok"):
        return None
    lines = [ln.strip() for ln in (r.stderr or r.stdout).splitlines() if ln.strip()]
    hint = next((ln for ln in lines if "needed" in ln or "Could not" in ln or "cannot" in ln),
                lines[-1] if lines else f"exit code {r.returncode}")
    return f"Qt cannot start ({hint})"
