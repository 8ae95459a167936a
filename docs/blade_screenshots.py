"""The README's blade map and changes pictures, rendered by headless Chromium from real runs.

    .venv/bin/python docs/blade_screenshots.py ../shared/data/iliad_wind_turbine --out docs/img

* ``blade_map.png``: the report's "Where on the blade" section over the first ``--n`` boxed
  ILIAD drone photos (CC BY 4.0; DTU's Nordtank turbine), masks from the GrabCut teacher. The
  set carries no position metadata, so the photos are given blades and radii by
  ``b2p meta --along`` sequences (stated in the picture's caption), as an inspector would for
  a flight along each blade.
* ``changes.png``: the "Changes since" section on the synthetic two-year blades
  (:mod:`ml.datasets.synthetic_history`), the true masks as the teacher's.
* with ``--gui`` (needs xvfb-run): ``blade_map_dock.png`` and ``findings_changes.png``, the
  Blade map dock and the Findings dock comparing with the last inspection, on the synthetic
  pair; ``spot_view.png``, the spot view ("Side by side…") of the first grown, registered
  finding, side by side and swiped.

Projects are built in a temporary folder; the photos are linked, never copied.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # docs/screenshots.py


def real_project(data: Path, work: Path, n: int):
    from screenshots import linked_project

    from ml.metadata.position import along, set_turbine
    from ml.metadata.values import set_values
    from ml.teachers import make_teacher
    from ml.teachers.pseudo_label import pseudo_label_project

    project = linked_project(data, work, n)
    keys = project.keys()
    half = len(keys) // 2
    set_values(project, keys, turbine="Nordtank", side="PS")
    set_values(project, keys[:half], blade="A")
    set_values(project, keys[half:], blade="B")
    set_turbine(project, "Nordtank", hub_height_m=36.0, blade_length_m=19.0)
    along(project, "A/PS", 2.0, 2.5)
    along(project, "B/PS", 1.0, 3.0)
    pseudo_label_project(project, make_teacher("grabcut"))
    return project


def page(body: str, css: str) -> str:
    from ml.findings.report._html import _CSS

    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{_CSS}{css}</style>"
            f"</head><body><main>{body}</main></body></html>")


def shoot(html: str, out: Path, height: int, keep: int) -> None:
    """A ``height`` px tall screenshot of ``html``, cut to its rows 20..``keep``."""
    from PIL import Image

    chrome = next(p for p in map(shutil.which, ("chromium", "chromium-browser",
                                                 "google-chrome")) if p)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "page.html"
        f.write_text(html, encoding="utf-8")
        subprocess.run([chrome, "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", f"--window-size=1100,{height}",
                        f"--screenshot={out}", f.as_uri()], check=True,
                       stderr=subprocess.DEVNULL, timeout=120)
    Image.open(out).crop((0, 20, 1100, keep)).save(out, optimize=True)
    print(f"  {out}")


def gui_shoot(root: Path, out: Path) -> int:
    """In Xvfb: open the app on ``root`` and grab the Blade map and Findings docks."""
    import time

    import napari
    from qtpy.QtWidgets import QApplication

    from app.gui import Inspector

    def wait(cond, seconds: float = 120) -> None:
        end = time.time() + seconds
        while not cond() and time.time() < end:
            QApplication.processEvents()
            time.sleep(0.05)

    viewer = napari.Viewer(show=True)
    ins = Inspector(viewer)
    ins.quiet = True
    ins.open_project(root)
    wait(lambda: bool(ins.blade_map.maps))
    ins.blade_map.resize(1000, 300)
    wait(lambda: False, 1)
    ins.blade_map.grab().save(str(out / "blade_map_dock.png"))
    f = ins.findings
    f.whole.setChecked(True)
    wait(lambda: len(f.model.rows) == len(f._all) > 0)
    f.changes.enabled.setChecked(True)
    wait(lambda: bool(f.model.changes))
    f.changes.status.setCurrentIndex(f.changes.status.findData("new grown"))
    f.table.setCurrentIndex(f.model.index(0, 1))
    f.resize(1200, 760)
    wait(lambda: False, 1)
    f.grab().save(str(out / "findings_changes.png"))
    spot_shoot(f, out / "spot_view.png", wait)
    ins.shutdown()
    viewer.close()
    print(f"  {out / 'blade_map_dock.png'}\n  {out / 'findings_changes.png'}")
    return 0


def spot_shoot(f, out: Path, wait) -> None:
    """The spot view of the Findings dock ``f``'s first grown, registered row: side by side
    and swiped, joined in one picture."""
    from qtpy.QtGui import QColor, QImage, QPainter

    c = f.changes
    regs = c.comparison.registrations
    row = next(i for i, r in enumerate(f.model.rows)
               if (ch := c.index.get((r.key, r.region_id))) is not None
               and ch.status == "grown" and ch.earlier is not None
               and (reg := regs.get((ch.earlier.key, ch.current.key))) is not None and reg.ok)
    f.table.setCurrentIndex(f.model.index(row, 1))
    view = c.open_view()
    wait(lambda: view.views is not None)
    shots = []
    for mode in (0, 1):
        view.mode.setCurrentIndex(mode)
        view.adjustSize()
        wait(lambda: False, 1)
        shots.append(view.grab().toImage())
    gap = 16
    both = QImage(sum(s.width() for s in shots) + gap, max(s.height() for s in shots),
                  QImage.Format.Format_RGB32)
    both.fill(QColor("white"))
    p = QPainter(both)
    p.drawImage(0, 0, shots[0])
    p.drawImage(shots[0].width() + gap, 0, shots[1])
    p.end()
    both.save(str(out))
    view.close()
    print(f"  {out}")


def main() -> int:
    from bench.history import build_project
    from ml.datasets.synthetic_history import make_history
    from ml.findings.report._blade import blade_section
    from ml.findings.report._blade_html import CSS, changes_html, maps_html

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--gui", action="store_true", help="also the two docks (xvfb-run)")
    ap.add_argument("--gui-shoot", type=Path, help=argparse.SUPPRESS)  # the child
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.gui_shoot is not None:
        return gui_shoot(args.gui_shoot, args.out)
    with tempfile.TemporaryDirectory() as tmp:
        real = real_project(args.data, Path(tmp) / "real", args.n)
        section = blade_section(real, "teacher")
        shoot(page(maps_html(section), CSS), args.out / "blade_map.png", 1150, 880)
        synth = build_project(Path(tmp) / "synth", make_history(0, stations=(6.0, 14.0)))
        section = blade_section(synth, "teacher")
        shoot(page(changes_html(section), CSS), args.out / "changes.png", 1500, 700)
        if args.gui:
            subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable,
                            __file__, str(args.data), "--out", str(args.out.resolve()),
                            "--gui-shoot", str(synth.root)], check=True, timeout=600)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
