"""The event-loop probe of ``gui_latency.py``: a 10 ms timer that notes how late each tick is,
a watchdog naming where the GUI thread was while a tick was overdue (and how long it waited for
a CPU), napari canvas redraws and full garbage collections per phase.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import traceback
from pathlib import Path

P99_GOAL_MS, MAX_GOAL_MS = 50.0, 100.0
TICK_MS = 10
STALL_MS = 40  # the watchdog samples the GUI thread's stack past this lateness


def load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load n/a"
    return f"load avg 1 min {one:.2f}, 5 min {five:.2f}"


CANVAS = {"paints": 0, "paint_ms": 0.0, "resizes": 0}


def count_canvas_work() -> None:
    """Count napari canvas paints (each a software-OpenGL frame) and resizes; call before the
    viewer is built (Qt binds the Python overrides of a class when it first sees them)."""
    import napari._vispy  # noqa: F401 (chooses vispy's Qt backend, which loads _qt)
    from vispy.app.backends import _qt

    backend = _qt.CanvasBackendDesktop
    paint, resize = backend.paintGL, backend.resizeGL

    def counted_paint(canvas):
        t = time.perf_counter()
        paint(canvas)
        CANVAS["paints"] += 1
        CANVAS["paint_ms"] += (time.perf_counter() - t) * 1000

    def counted_resize(canvas, w, h):
        CANVAS["resizes"] += 1
        resize(canvas, w, h)

    backend.paintGL, backend.resizeGL = counted_paint, counted_resize


class LatencyProbe:
    """A 10 ms precise timer in the GUI thread noting how late each tick is, and a watchdog
    thread that samples the GUI thread's stack while a tick is overdue."""

    def __init__(self) -> None:
        from qtpy.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.samples: list[tuple[float, float]] = []  # (lateness ms, time of the tick)
        self.stacks: list[tuple[float, str]] = []  # (time, GUI thread's stack summary)
        self._last = time.perf_counter()
        self._main = threading.main_thread().ident
        self._main_tid = threading.main_thread().native_id
        self.waits: list[tuple[float, float | None]] = []  # (time, GUI thread's queue wait)
        self._on = False
        self.canvas = CANVAS
        self.full_gcs: list[float] = []  # ms of each full garbage collection in this phase
        self._gc_t0 = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._gc_t0 = time.perf_counter()
        else:
            self.full_gcs.append((time.perf_counter() - self._gc_t0) * 1000)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.samples.append((max((now - self._last) * 1000 - TICK_MS, 0.0), now))
        self._last = now

    def _watch(self) -> None:
        while self._on:
            time.sleep(0.01)
            self.waits.append((time.perf_counter(), run_queue_wait(self._main_tid)))
            if (time.perf_counter() - self._last) * 1000 > STALL_MS + TICK_MS:
                frame = sys._current_frames().get(self._main)
                if frame is not None:
                    self.stacks.append((time.perf_counter(), summarize(frame)))

    def run(self, seconds: float, until=lambda: False) -> list[tuple[float, float]]:
        """Spin the event loop for ``seconds`` (or until ``until()``); this phase's samples."""
        from qtpy.QtCore import QEventLoop, QTimer

        self.samples, self.stacks, self.waits, self.full_gcs = [], [], [], []
        wait0 = run_queue_wait(self._main_tid)
        self.canvas.update(paints=0, paint_ms=0.0, resizes=0)
        loop = QEventLoop()
        end = time.perf_counter() + seconds
        check = QTimer()
        check.timeout.connect(lambda: loop.quit() if until() or time.perf_counter() > end
                              else None)
        check.start(50)
        self._on = True
        watch = threading.Thread(target=self._watch, daemon=True)
        watch.start()
        self._last = time.perf_counter()
        self.timer.start()
        loop.exec()
        self.timer.stop()
        self._on = False
        watch.join()
        check.stop()
        wait1 = run_queue_wait(self._main_tid)
        self.phase_wait_s = None if wait0 is None or wait1 is None else wait1 - wait0
        return self.samples

    def worst_stalls(self, n: int = 3) -> list[str]:
        """The ``n`` latest ticks with the stack seen most often while each was overdue."""
        out = []
        for late, t in sorted(self.samples, reverse=True)[:n]:
            if late < STALL_MS:
                break
            t0 = t - late / 1000 - TICK_MS / 1000
            seen = [s for ts, s in self.stacks if t0 <= ts <= t]
            where = max(set(seen), key=seen.count) if seen else "(no sample)"
            out.append(f"{late:.0f} ms in {where}{self._waited(t0, t)}")
        return out

    def _waited(self, t0: float, t1: float) -> str:
        """How long the GUI thread sat runnable without a CPU between ``t0`` and ``t1``."""
        before = [w for ts, w in self.waits if ts <= t0 and w is not None]
        after = [w for ts, w in self.waits if ts >= t1 and w is not None]
        if not before or not after:
            return ""
        return f" (waiting for a CPU {1000 * (after[0] - before[-1]):.0f} ms of it)"


def run_queue_wait(tid: int) -> float | None:
    """Seconds thread ``tid`` has spent runnable but waiting for a CPU (Linux schedstat)."""
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def summarize(frame) -> str:
    """Innermost frames of our code and of the library below it, outermost first."""
    stack = traceback.extract_stack(frame)
    ours = [f for f in stack if "/app/" in f.filename or "/ml/" in f.filename]
    inner = stack[-1]
    parts = [f"{Path(f.filename).name}:{f.name}" for f in ours[-2:]]
    if not ours or inner is not ours[-1]:
        parts.append(f"{Path(inner.filename).parent.name}/{Path(inner.filename).name}:"
                     f"{inner.name}")
    return " > ".join(parts)


def describe(name: str, samples: list[tuple[float, float]], probe: LatencyProbe) -> str:
    ms = sorted(x for x, _ in samples)
    if not ms:
        return f"event-loop latency {name}: no samples"
    p50, p99, worst = ms[len(ms) // 2], ms[min(len(ms) - 1, int(0.99 * len(ms)))], ms[-1]
    ok = "meets" if p99 < P99_GOAL_MS and worst < MAX_GOAL_MS else "MISSES"
    text = (f"event-loop latency {name}: n={len(ms)} p50={p50:.1f} ms p99={p99:.1f} ms "
            f"max={worst:.1f} ms; p99/goal {p99 / P99_GOAL_MS:.2f}, max/goal "
            f"{worst / MAX_GOAL_MS:.2f} ({ok} p99 < {P99_GOAL_MS:g} ms, max < {MAX_GOAL_MS:g} "
            f"ms); {load()}")
    c = probe.canvas
    text += (f"\n    napari canvas: {c['paints']} paints ({c['paint_ms']:.0f} ms in all), "
             f"{c['resizes']} resizes")
    if probe.full_gcs:
        text += (f"; {len(probe.full_gcs)} full garbage collections (longest "
                 f"{max(probe.full_gcs):.0f} ms)")
    if getattr(probe, "phase_wait_s", None) is not None:
        text += (f"; the GUI thread waited {probe.phase_wait_s:.2f} s in all for a CPU held by "
                 f"other processes or threads")
    stalls = probe.worst_stalls()
    return text + ("\n    worst stalls: " + "; ".join(stalls) if stalls else "")
