"""Campaign prediction on Dask: throughput on 1 and 2 local workers, scheduler overhead per
task, and a model on paper of a 48,000-photo campaign on N workers (docs/SCALING.md).

    .venv/bin/python bench/scale.py [--photos 24] [--size 512] [--tasks 2000]
        [--out bench/results/scale_cpu.txt]

Throughput: synthetic photos, a tiny random student (56 px tiles, tiled prediction), the whole
campaign path (``ml.campaign.client.predict_campaign``: tasks, files, the client moving them into
the project). Photos per second are timed in steady state: from the result after which every worker
has had a photo (its model loaded) to the last. Baselines in the same run: in-process
``predict_project`` (one torch thread, and all cores' threads on the first photos) and one Dask
worker with one torch thread. The load average is printed with the figures: on a machine shared
by other work, torch's threads wait on each other and one thread per worker wins by far.

The model on paper multiplies measured figures: the real student's time per 518 px tile
(random weights, one core of this CPU; on a GPU the H200 figure measured by bench/student.py,
fp32 batch 1, in bench/results/gpu_h200_paper_attempt1/student_gpu.txt), the tiles of a 45 MP
photo, and the per-photo reading and writing measured here at 4 MP and scaled by pixels.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _machine import cpu_name, load_average  # noqa: E402

from ml.campaign import client as campaign  # noqa: E402
from ml.common.classes import DEFAULT_CLASSES  # noqa: E402
from ml.common.images import load_image, save_label  # noqa: E402
from ml.prediction import batch_predict, predict  # noqa: E402
from ml.project.regions import find_regions  # noqa: E402
from ml.project.store import Box, Project  # noqa: E402
from ml.student.checkpoint import save_checkpoint  # noqa: E402
from ml.student.config import ModelCard, StudentConfig  # noqa: E402
from ml.student.models import build_model  # noqa: E402

TINY = StudentConfig(input_size=56, backbone_weights="none", taps=(0, 1), decoder_channels=32)
GPU_TILE_S = 0.004  # H200, fp32, batch 1, 518 px: bench/results/gpu_h200_paper_attempt1
CAMPAIGN = 48_000
PHOTO_HW = (5464, 8192)  # 45 MP, 3:2
JPEG_MB = 12.0  # a 45 MP camera JPEG, assumed
lines: list[str] = []


def say(line: str = "") -> None:
    print(line, flush=True)
    lines.append(line)


def machine() -> str:
    import dask

    cpu, load = cpu_name(), load_average()
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, dask "
            f"{dask.__version__}, load average {load:.1f}")


def make_project(root: Path, n: int, size: int) -> tuple[Project, Path]:
    rng = np.random.default_rng(0)
    photos = root / "photos"
    photos.mkdir(parents=True)
    h = size * 3 // 4
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (h, size, 3), np.uint8)).save(photos / f"p{i}.jpg")
    proj = Project.create(root / "proj", photos)
    with proj.batch():
        for k in proj.keys():
            proj.set_boxes(k, [Box(8, 8, size // 3, h // 3, 1), Box(size // 2, h // 2, size - 8,
                                                                  h - 8, 2)])
    torch.manual_seed(0)
    card = ModelCard(student=TINY, classes=[c.to_json() for c in DEFAULT_CLASSES])
    return proj, save_checkpoint(root / "model", build_model(TINY).eval(), card)


def steady_rate(stamps: list[float], warm: int) -> float:
    """Photos per second after the ``warm``-th result."""
    warm = min(max(warm, 1), len(stamps) - 1)
    return (len(stamps) - warm) / max(stamps[-1] - stamps[warm - 1], 1e-9)


def run_in_process(proj: Project, model: Path, threads: int, keys: list[str]) -> float:
    stamps: list[float] = []
    torch.set_num_threads(threads)
    batch_predict.predict_project(proj, model, keys, tiled=True, device="cpu",
                            progress=lambda p: stamps.append(time.perf_counter()))
    return steady_rate(stamps, 2)


def run_dask(proj: Project, model: Path, workers: int, threads: int,
             keys: list[str]) -> tuple[float, float]:
    """(steady photos/s, seconds from the call to the first result: cluster start, model load)."""
    stamps: list[float] = []
    t0 = time.perf_counter()
    res = campaign.predict_campaign(proj, model, scheduler="local", workers=workers, keys=keys,
                                    torch_threads=threads, tiled=True, device="cpu",
                                    progress=lambda p: stamps.append(time.perf_counter()))
    assert len(res.done) == res.total, res.summary()
    return steady_rate(stamps, 2 * workers), stamps[0] - t0


def scheduler_overhead(n_tasks: int) -> tuple[float, float]:
    """Seconds per no-op task: client.map + gather, and a 16-task window with as_completed."""
    from distributed import Client, LocalCluster, as_completed

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        client.gather(client.map(abs, range(50)))  # warm
        t = time.perf_counter()
        client.gather(client.map(abs, range(n_tasks)))
        mapped = (time.perf_counter() - t) / n_tasks
        t = time.perf_counter()
        todo = iter(range(n_tasks // 2))
        flow = as_completed([client.submit(abs, next(todo), pure=False) for _ in range(16)])
        for fut in flow:
            fut.release()
            nxt = next(todo, None)
            if nxt is not None:
                flow.add(client.submit(abs, nxt, pure=False))
        windowed = (time.perf_counter() - t) / (n_tasks // 2)
    return mapped, windowed


def tile_time() -> float:
    """Seconds per 518 px tile of the real student (random weights), one thread of this CPU."""
    cfg = StudentConfig(backbone_weights="none")
    card = ModelCard(student=cfg, classes=[c.to_json() for c in DEFAULT_CLASSES])
    torch.set_num_threads(1)
    p = predict.Predictor(build_model(cfg).eval(), card, "cpu", tiled=True)
    image = np.random.default_rng(0).integers(0, 255, (p.tile, p.tile, 3), np.uint8)
    p.probabilities(image)  # warm
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        p.probabilities(image)
        best = min(best, time.perf_counter() - t)
    return best


def io_time(mp: float = 4.0) -> tuple[float, float]:
    """(seconds, output MB) to read a JPEG and write label + confidence PNGs + regions at
    ``mp`` megapixels (synthetic smooth photo, a few defect blobs)."""
    import cv2

    w = int((mp * 1e6 * 1.5) ** 0.5)
    h = int(w / 1.5)
    rng = np.random.default_rng(1)
    small = rng.integers(0, 255, (h // 16, w // 16, 3), np.uint8)
    photo = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    label = np.zeros((h, w), np.uint8)
    for _ in range(8):
        cv2.circle(label, (int(rng.integers(w)), int(rng.integers(h))), 40, 1, -1)
    conf = cv2.resize(rng.integers(90, 255, (h // 32, w // 32), np.uint8), (w, h))
    with tempfile.TemporaryDirectory() as d:
        buf = io.BytesIO()
        Image.fromarray(photo).save(buf, "JPEG", quality=90)
        (Path(d) / "p.jpg").write_bytes(buf.getvalue())
        t = time.perf_counter()
        load_image(Path(d) / "p.jpg")
        save_label(Path(d) / "l.png", label, [(0, 0, 0), (255, 0, 0), (0, 0, 255)])
        save_label(Path(d) / "c.png", conf)
        find_regions(label, conf)
        seconds = time.perf_counter() - t
        out_mb = sum((Path(d) / f).stat().st_size for f in ("l.png", "c.png")) / 1e6
    return seconds, out_mb


def tiles_of(hw: tuple[int, int], tile: int = 518, overlap: float = 0.25) -> int:
    step = tile - int(round(tile * overlap))
    return len(predict._starts(hw[0], tile, step)) * len(predict._starts(hw[1], tile, step))


def paper_model(cpu_tile: float, io_s: float, out_mb: float, overhead: float,
                storage_gbps: float) -> None:
    tiles = tiles_of(PHOTO_HW)
    scale = PHOTO_HW[0] * PHOTO_HW[1] / 4e6
    io45, out45 = io_s * scale, out_mb * scale
    cpu_photo = tiles * cpu_tile + io45
    gpu_compute = tiles * GPU_TILE_S
    mb = JPEG_MB + out45
    ceiling = storage_gbps * 1000 / mb  # photos/s the shared storage carries
    say(f"45 MP photo {PHOTO_HW[1]}x{PHOTO_HW[0]}: {tiles} tiles of 518 px (overlap 25 %); "
        f"read+write+regions {io45:.1f} s on one core ({io_s:.2f} s at 4 MP, scaled by pixels); "
        f"{mb:.0f} MB moved ({JPEG_MB:.0f} MB JPEG assumed in, {out45:.0f} MB PNGs out)")
    say(f"per photo: CPU worker (one core) {cpu_photo:.0f} s = {tiles} x "
        f"{cpu_tile:.2f} s + {io45:.1f} s; GPU worker {gpu_compute:.1f} s of GPU "
        f"({tiles} x {GPU_TILE_S * 1e3:.0f} ms, H200) + {io45:.1f} s of CPU")
    say(f"assumed: storage {storage_gbps:g} GB/s shared (ceiling {ceiling:.0f} photos/s), "
        f"throughput linear in workers up to that ceiling, scheduler {overhead * 1e3:.1f} "
        f"ms/task (measured)")
    say()
    say(f"{'workers':>8} | {'1-core CPU workers':>19} | {'GPUs, 1 CPU thread each':>24} | "
        f"{'GPUs, 4 CPU threads each':>25}")
    for n in (1, 2, 4, 8, 16, 32, 64):
        cells = []
        for per_photo in (cpu_photo, max(gpu_compute, io45), max(gpu_compute, io45 / 4)):
            rate = min(n / (per_photo + overhead), ceiling, 1 / overhead)
            cells.append(CAMPAIGN / rate / 3600)
        say(f"{n:>8} | {cells[0]:>17.1f} h | {cells[1]:>22.1f} h | {cells[2]:>23.1f} h")
    say(f"(a GPU worker with one thread decodes and encodes between tiles: the GPU waits "
        f"{io45:.1f} s of every {io45 + gpu_compute:.1f} s unless the worker has threads for "
        f"the next photo's reading)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=24)
    ap.add_argument("--size", type=int, default=320, help="photo width (height 3/4 of it)")
    ap.add_argument("--few", type=int, default=6, help="photos for the multi-threaded runs")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the single-thread runs")
    ap.add_argument("--tasks", type=int, default=2000, help="no-op tasks for the overhead")
    ap.add_argument("--storage-gbps", type=float, default=1.0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale_cpu.txt"))
    args = ap.parse_args()
    t_all = time.perf_counter()
    say(f"machine: {machine()}")
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as d:
        proj, model = make_project(Path(d), args.photos, args.size)
        keys, few = proj.keys(), proj.keys()[:args.few]
        say(f"{args.photos} photos {args.size}x{args.size * 3 // 4}, tiny random student "
            f"({TINY.input_size} px tiles, tiled), 2 boxes each; {args.rounds} rounds "
            f"alternating the runs, best of each kept; multi-threaded torch: once, on "
            f"{len(few)} photos")
        runs = {"in-process, 1 thread": lambda: run_in_process(proj, model, 1, keys),
                "Dask 1 worker x 1 thread": lambda: run_dask(proj, model, 1, 1, keys),
                "Dask 2 workers x 1 thread": lambda: run_dask(proj, model, 2, 1, keys),
                f"in-process, {cores} threads (today's default)":
                    lambda: run_in_process(proj, model, cores, few),
                f"Dask 1 worker x {cores} threads": lambda: run_dask(proj, model, 1, cores, few)}
        got: dict[str, list] = {name: [] for name in runs}
        for r in range(args.rounds):
            for name, run in runs.items():
                if r == 0 or "1 thread" in name:
                    got[name].append(run())
        rates = {}
        for name, results in got.items():
            rate = [x[0] if isinstance(x, tuple) else x for x in results]
            rates[name] = max(rate)
            start = [f"{x[1]:.1f}" for x in results if isinstance(x, tuple)]
            say(f"{name}: {max(rate):.2f} photos/s (runs: "
                + ", ".join(f"{x:.2f}" for x in rate) + ")"
                + (f"; {', '.join(start)} s from the call to the first result" if start
                   else ""))
    base, one, two = (rates[k] for k in list(runs)[:3])
    base_mt, one_mt = (rates[k] for k in list(runs)[3:])
    say(f"scaling 1 -> 2 workers: {two / one:.2f}x (efficiency {two / one / 2:.0%}); Dask "
        f"1 worker vs in-process, 1 thread each: {one / base:.2f}x; 2 workers vs in-process "
        f"with {cores} threads: {two / base_mt:.2f}x; vs 1 worker x {cores} threads: "
        f"{two / one_mt:.2f}x")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > cores:
        say(f"note: load average {load:.1f} on {cores} cores: other work holds the cores, so a "
            f"second worker does not get a core of its own; read the scaling with that in mind")
    mapped, windowed = scheduler_overhead(args.tasks)
    say(f"scheduler overhead: {mapped * 1e3:.2f} ms/task (client.map of {args.tasks} no-ops), "
        f"{windowed * 1e3:.2f} ms/task (16-task window, as_completed, as the campaign submits)")
    cpu_tile = tile_time()
    io_s, out_mb = io_time()
    say(f"real student (random weights) on this CPU: {cpu_tile:.2f} s per 518 px tile "
        f"(1 thread)")
    say()
    say(f"model on paper: a {CAMPAIGN:,}-photo campaign, one worker per GPU or per core")
    paper_model(cpu_tile, io_s, out_mb, windowed, args.storage_gbps)
    say()
    say(f"bench ran {time.perf_counter() - t_all:.0f} s; command: python bench/scale.py "
        + " ".join(sys.argv[1:]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
