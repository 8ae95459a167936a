"""GUI responsiveness while a training worker and a pseudo-labelling job run (not a test).

Prints the start-up time to the first image shown and the Qt event loop's latency (how late a
zero-delay QTimer fires, sampled every 20 ms). Goals: start-up < 5 s, p99 and max < 100 ms.

    xvfb-run -a .venv/bin/python bench/gui_latency.py [--seconds 20] [--images 12] [--size 512]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


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


def sample_latency(app, seconds: float, stop_when=lambda: False) -> list[float]:
    """Lateness (ms) of zero-delay timers posted every 20 ms for ``seconds``."""
    from qtpy.QtCore import QTimer

    lat: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and not stop_when():
        t = time.perf_counter()
        QTimer.singleShot(0, lambda t=t: lat.append((time.perf_counter() - t) * 1000))
        nxt = t + 0.02
        while time.perf_counter() < nxt:
            app.processEvents()
            time.sleep(0.001)
    return lat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="b2p-bench-"))
    make_photos(tmp, args.images, args.size)
    from ml.store import Box, Project

    project = Project.create(tmp)
    s = args.size // 8
    for k in project.keys():
        project.set_boxes(k, [Box(s - 4, 2 * s - 4, 3 * s + 4, 4 * s + 4, 1),
                              Box(5 * s - 4, 4 * s - 4, 7 * s + 4, 6 * s + 4, 2)])

    t0 = time.perf_counter()
    import napari
    from qtpy.QtWidgets import QApplication

    from app.gui import Inspector

    t_import = time.perf_counter() - t0
    viewer = napari.Viewer(title="bench")
    t_viewer = time.perf_counter() - t0 - t_import
    ins = Inspector(viewer)
    ins.quiet = True
    ins.open_project(tmp)
    app = QApplication.instance()
    app.processEvents()
    startup = time.perf_counter() - t0
    shown = ins.layers.image.data.shape[:2] == (args.size, args.size)
    print(f"start-up to first image shown: {startup:.2f} s (goal < 5 s; shown={shown}); "
          f"napari import {t_import:.2f} s, viewer {t_viewer:.2f} s, ours "
          f"{startup - t_import - t_viewer:.2f} s; torch loaded: {'torch' in sys.modules}")

    idle = sample_latency(app, 3.0)
    ins.training.overrides = ({"input_size": 56, "backbone_weights": "none"},
                              {"epochs": 1000, "batch_size": 2, "device": "cpu"})
    ins.training.start()
    ins.batch.set_teacher("grabcut")
    job = ins.batch.pseudo_label(all_images=True)
    busy = sample_latency(app, args.seconds)
    job_done = not job.is_running()
    ins.shutdown()
    progress_seen = len(ins.training.plot.loss)
    for name, lat in (("idle", idle), ("busy (training worker + pseudo-labelling)", busy)):
        lat = sorted(lat)
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
        print(f"event-loop latency {name}: n={len(lat)} p50={lat[len(lat) // 2]:.1f} ms "
              f"p99={p99:.1f} ms max={lat[-1]:.1f} ms (goal < 100 ms)")
    print(f"pseudo-label job finished during sampling: {job_done}; "
          f"training loss points received: {progress_seen}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
