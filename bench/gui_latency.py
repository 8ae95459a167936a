"""GUI responsiveness: start-up times and event-loop latency under background work (not a test).

Prints, with the machine and its load average at the time of each figure:
- start-up along the path ``b2p gui PROJECT`` takes, each run in a fresh Python (clocked from
  the spawn, so Python's own start and every import count): the time until the first photo is on
  screen (the preview painted while napari loads; goal < 1 s) and until the napari viewer is
  ready with that photo (goal < 5 s); median and worst of ``--startup-runs`` runs, their ratio
  to the goal, and the ratio to the baseline measured in the same run: the one-step start-up
  (napari.Viewer, docks, project, nothing shown before, no background import).
- the Qt event loop's latency: a 10 ms repeating precise QTimer measures how late each of its
  ticks comes (p50 / p99 / max; goals p99 < 50 ms, max < 100 ms), idle, while a training worker
  trains, while a GrabCut pseudo-labelling job runs, and with both at once. A watchdog thread
  samples the GUI thread's stack whenever a tick is over 40 ms late, so each phase also names
  where its worst stalls were spent, and how much of each the GUI thread spent waiting for a CPU
  (Linux schedstat: time runnable but not running, i.e. other processes' load, not our code).
  Each phase also counts napari canvas redraws and resizes (software OpenGL: tens of ms each).
- start-up CPU seconds (all threads): a figure that other processes' load changes far less
  than wall time.

Changed from the earlier version: start-up is timed in fresh processes (the bench process had
already imported numpy, Pillow, OpenCV and ml.* while making the photos, which hid part of the
cost); the latency timer runs in the real event loop (it used to post zero-delay timers from a
processEvents loop, which cannot see a long handler); the phases are separated; stalls are named.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python bench/gui_latency.py [--seconds 10]
        [--images 60] [--size 512] [--startup-runs 3] [--startup-only]
        [--out bench/results/gui_latency_cpu.txt]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _machine import cpu_name  # noqa: E402
from gui_probe import LatencyProbe, count_canvas_work, describe, load  # noqa: E402

PREVIEW_GOAL_S, READY_GOAL_S = 1.0, 5.0


def machine() -> str:
    return f"{cpu_name()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


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


def make_project(args) -> Path:
    """Photos with two boxes each; a third get box-fill masks so the worker has data to train."""
    tmp = Path(tempfile.mkdtemp(prefix="b2p-bench-"))
    make_photos(tmp, args.images, args.size)
    from ml.project.store import Box, Project
    from ml.teachers import make_teacher
    from ml.teachers.pseudo_label import pseudo_label_project

    project = Project.create(tmp)
    s = args.size // 8
    for k in project.keys():
        project.set_boxes(k, [Box(s - 4, 2 * s - 4, 3 * s + 4, 4 * s + 4, 1),
                              Box(5 * s - 4, 4 * s - 4, 7 * s + 4, 6 * s + 4, 2)])
    pseudo_label_project(project, make_teacher("box"), keys=project.keys()[::3])
    return tmp


# ---------------------------------------------------------------------------- start-up
def startup_child(mode: str, folder: str) -> None:
    """Run in a fresh Python: start the app as ``mode`` says and print one JSON line of
    monotonic times (the same clock as the parent's on Linux and macOS)."""
    times: dict[str, object] = {}
    if mode == "onestep":
        import napari
        from qtpy.QtWidgets import QApplication

        from app.gui._main import Inspector

        ins = Inspector(napari.Viewer(title="bench"))
        ins.quiet = True
        ins.open_project(folder)
        QApplication.instance().processEvents()
        times["ready"] = time.monotonic()
        times["cpu"] = time.process_time()
    else:  # the real command, `b2p gui FOLDER`, stopped where it would enter napari.run()
        from app.gui.startup import preview as _preview

        show_now = _preview.FirstImagePreview.show_now

        def timed_show_now(self, *a, **k):
            ok = show_now(self, *a, **k)
            times.setdefault("preview", time.monotonic())
            return ok

        _preview.FirstImagePreview.show_now = timed_show_now
        import napari
        from qtpy.QtWidgets import QApplication

        def run(*_a, **_k):
            QApplication.instance().processEvents()
            times["ready"] = time.monotonic()
            times["cpu"] = time.process_time()

        napari.run = run
        from app.cli import main

        main(["gui", folder])
    times["torch"] = "torch" in sys.modules or "timm" in sys.modules
    print("STARTUP " + json.dumps(times), flush=True)
    _kill_children()
    os._exit(0)  # skip teardown: nothing of it is measured


def _kill_children() -> None:
    """End the child processes the app started (the training planner): os._exit skips the
    QProcess destructors that would, and they would run on, loading the machine."""
    import gc

    from qtpy.QtCore import QProcess

    for obj in gc.get_objects():
        if isinstance(obj, QProcess):
            try:
                obj.kill()
                obj.waitForFinished(3000)
            except RuntimeError:  # already deleted on the C++ side
                pass


def time_startup(mode: str, folder: Path, runs: int) -> list[dict]:
    out = []
    for _ in range(runs):
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, __file__, "--startup-child", mode, str(folder)],
                              capture_output=True, text=True, timeout=180,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("STARTUP ")), None)
        if line is None:
            raise RuntimeError(f"start-up child ({mode}) failed:\n{proc.stderr[-3000:]}")
        d = json.loads(line[len("STARTUP "):])
        out.append({k: (v - t0 if k in ("preview", "ready") else v) for k, v in d.items()})
    return out


def startup_lines(folder: Path, runs: int) -> list[str]:
    base = time_startup("onestep", folder, runs)
    new = time_startup("b2p", folder, runs)
    b_ready = statistics.median(r["ready"] for r in base)
    lines = []
    for what, key, goal in (("first photo on screen", "preview", PREVIEW_GOAL_S),
                            ("viewer ready with the photo", "ready", READY_GOAL_S)):
        xs = [r[key] for r in new if key in r]
        if not xs:
            lines.append(f"start-up: {what}: never (no preview painted)")
            continue
        med = statistics.median(xs)
        lines.append(f"start-up ({runs} fresh runs of `b2p gui PROJECT`): {what}: median "
                     f"{med:.2f} s, worst {max(xs):.2f} s; goal < {goal:g} s "
                     f"(median/goal = {med / goal:.2f}); vs one-step start-up viewer ready "
                     f"{b_ready:.2f} s: ratio {med / b_ready:.2f}")
    cpu, b_cpu = (statistics.median(r["cpu"] for r in rs) for rs in (new, base))
    lines.append(f"start-up CPU seconds to viewer ready (all threads; less sensitive to other "
                 f"load than wall time): median {cpu:.2f} s, one-step baseline {b_cpu:.2f} s "
                 f"(ratio {cpu / b_cpu:.2f})")
    lines.append(f"start-up runs (s): preview {[round(r.get('preview', -1), 2) for r in new]}, "
                 f"ready {[round(r['ready'], 2) for r in new]}; one-step baseline ready "
                 f"{[round(r['ready'], 2) for r in base]}; torch or timm imported at start-up: "
                 f"{any(r['torch'] for r in new)}; {load()}")
    return lines


# ---------------------------------------------------------------------------- latency
def wait_for(app, cond, timeout: float) -> bool:
    end = time.perf_counter() + timeout
    while not cond() and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)
    return cond()


def grabcut_all(ins):
    """A GrabCut pseudo-labelling job over every photo, through the batch panel's job runner
    (its "all" button labels only photos without masks, which the first run used up)."""
    from app.gui._batch_panel import _pseudo_label
    from app.gui._jobs import Job

    return ins.batch.run_job(Job("pseudo-label (grabcut)", _pseudo_label, ins.project,
                                 "grabcut", {}, None, False))


def latency_lines(folder: Path, seconds: float, gc_freeze: bool = True) -> list[str]:
    from app.gui import Startup, freeze_startup_objects

    count_canvas_work()
    start = Startup(folder)
    ins = start.finish()
    if gc_freeze:
        freeze_startup_objects()  # as launch() does once the viewer has painted
    ins.quiet = True
    app = start.app
    probe = LatencyProbe()
    size = app.primaryScreen().size()
    win = ins.viewer.window._qt_window
    lines = [f"screen {size.width()}x{size.height()}, window {win.width()}x{win.height()}"
             f"{' (maximised)' if win.isMaximized() else ''}; start-up objects frozen out of "
             f"garbage collection: {gc_freeze}",
             describe("idle", probe.run(3.0), probe)]
    steps = []
    ins.training.process.progress.connect(lambda ev: steps.append(ev))
    ins.training.overrides = ({"input_size": 56, "backbone_weights": "none"},
                              {"epochs": 1000, "batch_size": 2, "device": "cpu"})
    ins.training.start()
    started = wait_for(app, lambda: any(type(e).__name__ == "Step" for e in steps), 120)
    n0 = len(steps)
    lines.append(describe("while training", probe.run(seconds), probe)
                 + f"\n    training events received: {len(steps) - n0} (trained: {started})")
    job = grabcut_all(ins)
    lines.append(describe("while training and pseudo-labelling", probe.run(seconds), probe))
    job.cancel()
    ins.training.stop()
    wait_for(app, lambda: not (job.is_running() or ins.training.process.is_running()), 60)
    job = grabcut_all(ins)
    done = probe.run(3 * seconds, until=lambda: not job.is_running())
    lines.append(describe("while pseudo-labelling (GrabCut), up to its end", done, probe)
                 + f"\n    pseudo-label job finished: {not job.is_running()}; worker crashed: "
                 + str(ins.training.error.isVisibleTo(ins.training)))
    job.cancel()  # if it is still going: its end is what the next phase measures
    # what the GUI does once a job ends (masks reloaded, the list refreshed) is measured too
    lines.append(describe("in the 2 s after the job ends", probe.run(2.0), probe))
    ins.shutdown()
    ins.viewer.close()
    return lines


def run(args, folder: Path) -> list[str]:
    """Start-up and latency figures for the project in ``folder``, printed as they come."""
    import napari
    import qtpy

    lines = [f"machine: {machine()}; Python {platform.python_version()}; {qtpy.API_NAME} "
             f"{qtpy.QT_VERSION} (binding {qtpy.PYSIDE_VERSION or qtpy.PYQT_VERSION}), napari "
             f"{napari.__version__}",
             f"project: {args.images} photos of {args.size}x{args.size} px; {load()}"]
    print(*lines, sep="\n", flush=True)
    parts = [] if args.latency_only else [lambda: startup_lines(folder, args.startup_runs)]
    if not args.startup_only:
        parts.append(lambda: latency_lines(folder, args.seconds, not args.no_gc_freeze))
    for fn in parts:
        part = fn()
        print(*part, sep="\n", flush=True)
        lines += part
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="per busy phase")
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--startup-runs", type=int, default=3)
    ap.add_argument("--out", type=Path, help="also write the figures to this file")
    ap.add_argument("--startup-only", action="store_true", help="skip the latency phases")
    ap.add_argument("--latency-only", action="store_true", help="skip the start-up runs")
    ap.add_argument("--no-gc-freeze", action="store_true",
                    help="leave start-up objects in full garbage collections (as before)")
    ap.add_argument("--startup-child", nargs=2, metavar=("MODE", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.startup_child:
        startup_child(*args.startup_child)
        return 0
    # the app's and napari's settings (recent projects, window geometry) go to a fresh folder,
    # for this process and the start-up children: every run starts as a first run would, and
    # the person's own settings are left alone
    os.environ["XDG_CONFIG_HOME"] = config = tempfile.mkdtemp(prefix="b2p-bench-config-")
    folder = make_project(args)
    try:
        lines = run(args, folder)
    finally:  # the project (about 350 MB with its model) and the settings go with the run
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(config, ignore_errors=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        cmd = "xvfb-run -a python bench/gui_latency.py " + " ".join(sys.argv[1:])
        args.out.write_text("\n".join([*lines, f"command: {cmd}"]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
