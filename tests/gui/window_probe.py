"""Start the app as a person would and print what :func:`layout_report` measures, as JSON.

    xvfb-run -a -s "-screen 0 1366x768x24" python -m tests.gui.window_probe PHOTOS [--wm]

Run by ``test_window_layout.py`` in a fresh process, so the screen's size and QT_SCALE_FACTOR
are the ones a field laptop has (neither can change inside a running QApplication). ``--wm``
starts openbox first when it is installed, as a desktop would have a window manager.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time


def start_wm() -> subprocess.Popen | None:
    if shutil.which("openbox") is None:
        return None
    wm = subprocess.Popen(["openbox"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # it takes over the screen before the first window maps
    return wm


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("photos")
    ap.add_argument("--wm", action="store_true")
    ap.add_argument("--shot", default="")
    a = ap.parse_args(argv)
    wm = start_wm() if a.wm else None
    try:
        from qtpy.QtWidgets import QApplication, QTabBar

        from app.gui import Startup
        from app.gui._layout_report import in_front, layout_report

        start = Startup(a.photos)
        preview_geometry = start.preview.geometry()
        ins = start.finish()
        win = ins.viewer.window._qt_window
        for _ in range(30):  # the window manager's maximise and the docks' first layout
            QApplication.processEvents()
            time.sleep(0.02)
        if a.shot:
            win.grab().save(a.shot)
        front = [d.windowTitle() for d in ins.docks.docks() if in_front(d)]
        rep = layout_report(ins)
        bars = [[(b.tabText(i), b.tabToolTip(i)) for i in range(b.count())]
                for b in win.findChildren(QTabBar) if b.isVisible()]
        out = {"tabs": bars, "screen": [rep.screen.width(), rep.screen.height()],
               "frame": [rep.frame.x(), rep.frame.y(), rep.frame.width(), rep.frame.height()],
               "fits": rep.fits, "maximized": win.isMaximized(),
               "canvas_share": rep.canvas_share, "findings_rows": rep.findings_rows,
               "unreachable": rep.unreachable, "cut": rep.cut,
               "preview": [preview_geometry.x(), preview_geometry.y(),
                           preview_geometry.width(), preview_geometry.height()],
               "window": [win.geometry().x(), win.geometry().y(), win.width(), win.height()],
               "min_size": [win.minimumSizeHint().width(), win.minimumSizeHint().height()],
               "front": front, "wm": wm is not None,
               "scale": os.environ.get("QT_SCALE_FACTOR", "1")}
        # every dock closed and shown again, napari's panels shown: still on the screen
        for dock in ins.docks.docks():
            dock.hide()
            dock.show()
        ins.docks.show_napari_panels(True)
        for _ in range(10):
            QApplication.processEvents()
            time.sleep(0.02)
        again = layout_report(ins)
        hint = win.minimumSizeHint()
        out["after_show"] = {"fits": again.fits, "unreachable": again.unreachable,
                             "min_fits": hint.width() <= rep.screen.width()
                             and hint.height() <= rep.screen.height()}
        print("REPORT " + json.dumps(out), flush=True)
        ins.shutdown()
        ins.viewer.close()
    finally:
        if wm is not None:
            wm.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
