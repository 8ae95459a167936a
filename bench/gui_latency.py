"""GUI responsiveness while a training worker and a pseudo-labelling job run (not a test).

Prints, with the machine and its load average at the time of each figure:
- start-up, along the path ``b2p gui PROJECT`` takes (``app.gui.Startup``): the time to the
  first image on screen (the photo the app paints while napari loads; goal < 5 s) and the time
  until the napari viewer is ready for boxes with that image (no goal; napari's own import and
  first layers set a floor of several seconds). Python's own start (~0.3 s) is not counted.
- the Qt event loop's latency (how late a zero-delay QTimer fires, sampled every 20 ms), idle
  and while a training worker process trains and a GrabCut pseudo-labelling job runs
  (goal: p99 and max < 100 ms), and where the worst busy spike happened.

Changed from the first version: start-up used to be one figure, napari.Viewer + Inspector +
open_project, now it follows the app's two-step start and reports both times; a third of the
photos get box-fill pseudo-masks before the busy phase so the training worker really trains
(it used to exit at once with "no images with teacher masks", so only its torch import ran
beside the job), and GrabCut labels the other two thirds during the busy phase.

    xvfb-run -a .venv/bin/python bench/gui_latency.py [--seconds 20] [--images 24] [--size 512]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load n/a"
    return f"load avg 1 min {one:.2f}, 5 min {five:.2f}"


def make_photos(folder: Path, n: int, size: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(90, 140, (size, size, 3), dtype=np.uint8)
        s = size // 8
        img[2 * s:4 * s, s:3 * s] = (210, 185, 40)
        img[4 * s:6 * s, 5 * s:7 * s] = (160, 25, 35)
        Image.fromarray(img).save(folder / f"img{i:03d}.jpg", quality=92)


def sample_latency(app, seconds: float, stop_when=lambda: False) -> list[tuple[float, float]]:
    """(lateness in ms, time posted) of zero-delay timers posted every 20 ms for ``seconds``."""
    from qtpy.QtCore import QTimer

    lat: list[tuple[float, float]] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and not stop_when():
        t = time.perf_counter()
        QTimer.singleShot(0, lambda t=t: lat.append(((time.perf_counter() - t) * 1000, t)))
        nxt = t + 0.02
        while time.perf_counter() < nxt:
            app.processEvents()
            time.sleep(0.001)
    return lat


def describe(name: str, samples: list[tuple[float, float]], t_busy: float) -> str:
    lat = sorted(samples)
    ms = [x for x, _ in lat]
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    worst, at = lat[-1]
    return (f"event-loop latency {name}: n={len(ms)} p50={ms[len(ms) // 2]:.1f} ms "
            f"p99={p99:.1f} ms max={worst:.1f} ms at t={at - t_busy:+.1f} s (goal < 100 ms)")


class OneStepStartup:
    """The old start-up: napari viewer, docks and project in one go, nothing shown before."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.first_image_s, self.app = folder, None, None

    def finish(self):
        import napari
        from qtpy.QtWidgets import QApplication

        from app.gui import Inspector

        ins = Inspector(napari.Viewer(title="bench"))
        ins.open_project(self.folder)
        self.app = QApplication.instance()
        return ins


def make_project(args) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="b2p-bench-"))
    make_photos(tmp, args.images, args.size)
    from ml.pseudo_label import pseudo_label_project
    from ml.store import Box, Project
    from ml.teachers import make_teacher

    project = Project.create(tmp)
    s = args.size // 8
    for k in project.keys():
        project.set_boxes(k, [Box(s - 4, 2 * s - 4, 3 * s + 4, 4 * s + 4, 1),
                              Box(5 * s - 4, 4 * s - 4, 7 * s + 4, 6 * s + 4, 2)])
    pseudo_label_project(project, make_teacher("box"), keys=project.keys()[::3])
    return tmp


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    folder = make_project(args)
    print(f"machine: {machine()}; Python {platform.python_version()}")
    print(f"before start-up: {load()}")

    t0 = time.perf_counter()
    try:
        from app.gui import Startup
    except ImportError:  # a checkout from before the two-step start (baseline runs)
        Startup = OneStepStartup

    start = Startup(folder)
    t_first = time.perf_counter() - t0
    ins = start.finish()
    ins.quiet = True
    app = start.app
    app.processEvents()
    t_ready = time.perf_counter() - t0
    if start.first_image_s is None:  # the old start-up shows the first image with the viewer
        t_first = t_ready
    shown = ins.layers.image.data.shape[:2] == (args.size, args.size)
    print(f"start-up: first image on screen {t_first:.2f} s (goal < 5 s; preview painted: "
          f"{start.first_image_s is not None}); viewer ready with the image {t_ready:.2f} s "
          f"(shown={shown}); torch loaded: {'torch' in sys.modules}; {load()}")

    idle = sample_latency(app, 3.0)
    ins.training.overrides = ({"input_size": 56, "backbone_weights": "none"},
                              {"epochs": 1000, "batch_size": 2, "device": "cpu"})
    ins.training.start()
    ins.batch.set_teacher("grabcut")
    job = ins.batch.pseudo_label(all_images=True)
    t_busy = time.perf_counter()
    busy = sample_latency(app, args.seconds)
    job_done = not job.is_running()
    crashed = ins.training.error.isVisibleTo(ins.training)
    progress_seen = len(ins.training.plot.loss)
    busy_load = load()
    ins.shutdown()
    print(describe("idle", idle, t_busy))
    print(describe("busy (training worker + pseudo-labelling)", busy, t_busy) + f"; {busy_load}")
    print(f"pseudo-label job finished during sampling: {job_done}; training loss points "
          f"received: {progress_seen}; worker crashed: {crashed}"
          + (f" ({ins.training.status.text()})" if crashed else ""))
    ins.viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
