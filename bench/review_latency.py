"""The Review dock's latency: from a decision key to the next proposal on screen (not a test).

Builds a project of large synthetic photos (default 4000 x 3000 JPEGs, a few proposals each,
nobody boxed them), opens the real Inspector (napari viewer, every dock) and decides ``N``
proposals by simulated key presses (QTest.keyClick on the Review dock, plain Qt, no pytest),
with ``--think-ms`` of idle event loop between two decisions, as a person looking at a
proposal leaves. A decision's latency runs from the key press to the end of the first canvas
paint that draws the next proposal: its photo in the image layer, the camera on its box and
the title naming it (checked when the paint starts). Prints the median and p90 ms per
decision, the share under the 100 ms goal, the machine and its load, for these arms:

* ``fast``: this tree (photos read ahead in a worker thread, pyramids, the student's mask);
* ``noahead``: this tree with ``Inspector(viewer, read_ahead=False)``: each photo read on the
  GUI thread into single-resolution layers, the student's mask not shown (as before);
* ``before`` (with ``--before-src DIR``, a checkout of the code before, e.g.
  ``git archive b4c2574 | tar -x -C DIR``): the same photos and keys in a fresh Python that
  imports ``app`` and ``ml`` from DIR.

Each arm decides the same proposals on its own copy of the project; ratios are to ``fast``.
``--think-ms 2900`` is the issue's pace (20 decisions a minute: a decision every 3 s); the
default 800 ms is a stress test (about 70 a minute), where the next photos are still being
read while the person decides.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python bench/review_latency.py
        [--photos 4] [--width 4000] [--height 3000] [--per-photo 3] [--decisions 12]
        [--think-ms 800] [--arms fast,noahead] [--before-src DIR] [--profile FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _machine import cpu_name, load_average  # noqa: E402

GOAL_MS = 100.0
PAINTS: dict = {"n": 0, "probe": None, "hit": None}


def count_paints() -> None:
    """Time napari's canvas paints (call before the viewer is built): a paint that starts
    while ``PAINTS["probe"]()`` holds draws what the probe asks for; its end is the ``hit``.
    The probe runs at the paint itself, so a paint inside the key's handler counts too."""
    import napari._vispy  # noqa: F401 (chooses vispy's Qt backend)
    from vispy.app.backends import _qt

    backend = _qt.CanvasBackendDesktop
    paint = backend.paintGL

    def noted(canvas):
        probe = PAINTS["probe"]
        ready = probe is not None and PAINTS["hit"] is None and probe()
        paint(canvas)
        PAINTS["n"] += 1
        if ready:
            PAINTS["hit"] = time.perf_counter()

    backend.paintGL = noted


def make_project(folder: Path, photos: int, width: int, height: int, per_photo: int) -> Path:
    """JPEG photos like a drone's (smooth shading, texture) with ``per_photo`` proposals each."""
    import cv2
    import numpy as np

    from ml.prediction.proposals import record_proposals
    from ml.project.store import Project

    rng = np.random.default_rng(0)
    src = folder / "photos"
    src.mkdir(parents=True)
    for i in range(photos):
        low = rng.integers(70, 170, (height // 16, width // 16, 3), dtype=np.uint8)
        img = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
        img = cv2.add(img, rng.integers(0, 12, (height, width, 3), dtype=np.uint8))
        cv2.imwrite(str(src / f"photo{i:02d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    proj = Project.create(folder / "project", src)
    for i, key in enumerate(proj.keys()):
        lab = np.zeros((height, width), np.uint8)
        for j in range(per_photo):
            x = int((j + 0.5) * width / per_photo)
            y = int(height * (0.3 + 0.4 * ((i + j) % 2)))
            cv2.ellipse(lab, (x, y), (60 + 20 * j, 25), 15 * j, 0, 360, 1 + j % 2, -1)
        conf = np.full(lab.shape, 200, np.uint8)
        proj.save_student(key, lab, model="bench", confidence=conf)
        record_proposals(proj, key, lab, conf, "bench")
    return proj.root


def shown(ins, item) -> bool:
    """The next proposal is on screen: its photo in the layers, the camera on its box."""
    if item is None:
        return True
    x0, y0, x1, y1 = item.proposal.box
    cy, cx = ins.viewer.scene.camera.center[-2:]
    return (ins.session.key == item.key and ins.layers.image.data.shape[1] == ins.layers.size[1]
            and abs(cx - (x0 + x1) / 2) < 1 and abs(cy - (y0 + y1) / 2) < 1
            and item.key in ins.viewer.title)


def paint_after(app, t0: float) -> float:
    """Milliseconds from ``t0`` to the end of the first canvas paint the probe accepted."""
    while PAINTS["hit"] is None:
        app.processEvents()
        if time.perf_counter() - t0 > 20:
            raise RuntimeError("the next proposal never showed")
    PAINTS["probe"] = None
    return (PAINTS["hit"] - t0) * 1000.0


def wait(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)


def run_arm(root: Path, arm: str, decisions: int, think_s: float, profile: str
            ) -> tuple[list[float], bool]:
    """(ms per decision (R, reject) to the next proposal on screen, whether the student's mask
    was shown) for ``arm``, on its own copy of the project."""
    import shutil

    import napari
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QApplication

    from app.gui import Inspector

    app = QApplication.instance()
    viewer = napari.Viewer(title="bench", show=True)
    ins = Inspector(viewer) if arm == "before" else Inspector(viewer, read_ahead=arm == "fast")
    ins.quiet = True
    work = root.parent / f"{root.name}-{arm}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(root, work)
    ins.open_project(work)
    if arm == "noahead":  # as before: the student's mask stays hidden
        ins.layers.student.visible = False
    panel = ins.proposals
    for dock in ins.docks.docks():  # the Review tab in front, its panel holding the keys
        if getattr(dock, "name", "") == "Review":
            dock.raise_()
    win = viewer.window._qt_window
    win.activateWindow()
    win.raise_()
    wait(app, 1.0)
    panel.setFocus()
    wait(app, 0.2)
    if not panel.hasFocus():
        raise RuntimeError("the Review dock did not take the keyboard focus")
    out = []
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
    for _ in range(decisions):
        wait(app, think_s)
        if panel.current() is None:
            break
        if panel.index + 1 >= len(panel.items):  # the last one: no next proposal to draw
            break
        nxt = panel.items[panel.index + 1]
        PAINTS["probe"], PAINTS["hit"] = (lambda n=nxt: shown(ins, n)), None
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        QTest.keyClick(panel, Qt.Key.Key_R)
        if panel.current() is not nxt:
            raise RuntimeError("the key did not move the queue to the next proposal")
        out.append(paint_after(app, t0))
        if prof:
            prof.disable()
    panel.flush()
    mask = bool(ins.layers.student.visible)
    cache = getattr(ins.session, "cache", None)
    if cache is not None:
        print(f"         photos read ahead: {cache.hits} ready when shown, {cache.misses} not; "
              f"{getattr(cache, 'reads', '?')} reads ahead in all", flush=True)
    if prof:
        import pstats

        prof.dump_stats(profile)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
    ins.shutdown()
    viewer.close()
    return out, mask


def figures(ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=10, method="inclusive") if len(ms) > 1 else ms * 9
    under = sum(v < GOAL_MS for v in ms) / len(ms)
    return (f"median {statistics.median(ms):.0f} ms, p90 {q[8]:.0f} ms, max {max(ms):.0f} ms, "
            f"{under:.0%} under {GOAL_MS:.0f} ms ({len(ms)} decisions)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=4)
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--per-photo", type=int, default=3)
    ap.add_argument("--decisions", type=int, default=10,
                    help="timed decisions (at most the proposals less one)")
    ap.add_argument("--think-ms", type=float, default=800)
    ap.add_argument("--arms", default="fast,noahead", help="fast, noahead (see above)")
    ap.add_argument("--before-src", type=Path, help="also time the code in this folder")
    ap.add_argument("--project", type=Path, help=argparse.SUPPRESS)  # made by the parent
    ap.add_argument("--profile", metavar="FILE", default="",
                    help="cProfile the decisions (of the last arm) into FILE")
    a = ap.parse_args(argv)
    if a.project is not None:  # the child that times the code before
        sys.path.insert(0, str(a.before_src))
        report(a, a.project, ["before"])
        return 0
    with tempfile.TemporaryDirectory(prefix="b2p-review-lat-") as tmp:
        t = time.perf_counter()
        root = make_project(Path(tmp), a.photos, a.width, a.height, a.per_photo)
        print(f"{a.photos} photos {a.width} x {a.height}, {a.per_photo} proposals each "
              f"(made in {time.perf_counter() - t:.0f} s); {a.decisions} decisions by key, "
              f"{a.think_ms:.0f} ms between them", flush=True)
        res = report(a, root, a.arms.split(","))
        if a.before_src is not None:
            import subprocess

            run = subprocess.run(
                [sys.executable, __file__, "--project", str(root), "--before-src",
                 str(a.before_src.resolve()), "--decisions", str(a.decisions), "--think-ms",
                 str(a.think_ms)], capture_output=True, text=True)
            out = run.stdout
            print(out, end="", flush=True)
            if run.returncode:
                raise RuntimeError(f"the code before failed:\n{run.stderr[-3000:]}")
            line = next(ln for ln in out.splitlines() if ln.startswith("MEDIANS "))
            res["before"] = [float(line.split()[1])]
    for arm in ("noahead", "before"):
        if arm in res and "fast" in res:
            ratio = statistics.median(res[arm]) / statistics.median(res["fast"])
            print(f"median {arm} / fast: {ratio:.1f}x")
    print(f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs, {platform.system()} "
          f"{platform.release()}, Python {platform.python_version()}")
    return 0


def report(a: argparse.Namespace, root: Path, arms: list[str]) -> dict[str, list[float]]:
    """Run and print each arm; ms per decision by arm."""
    from qtpy.QtWidgets import QApplication

    os.environ.setdefault("B2P_USER", "bench")
    app = QApplication.instance() or QApplication([])  # noqa: F841 (napari finds it)
    count_paints()
    res = {}
    for arm in arms:
        res[arm], mask = run_arm(root, arm, a.decisions, a.think_ms / 1000, a.profile)
        print(f"{arm:7s}: {figures(res[arm])}; the student's mask "
              f"{'shown' if mask else 'not shown'}; load avg {load_average():.2f}", flush=True)
        print("         per decision ms: " + " ".join(f"{v:.0f}" for v in res[arm]),
              flush=True)
        if arm == "before":
            print(f"MEDIANS {statistics.median(res[arm]):.1f}")
    return res


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # Qt's teardown under Xvfb can abort after the figures are out
