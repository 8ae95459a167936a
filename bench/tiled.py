"""Tiled prediction of a 45 MP photo: peak memory, time against the tiles' own cost, seams.

    .venv/bin/python bench/tiled.py [--size 8000x5600] [--tile 518] [--device cpu]
        [--out bench/results/tiled_cpu.txt]

A synthetic blade photo (``--size`` W x H, JPEG) carries thin dark cracks and reddish blobs,
half of them placed across tile borders, half inside one tile. Three measurements:

1. Memory and time: a fresh subprocess predicts the photo as ``predict_folder(tiled=True)``
   does (read, tile, blend, write both PNGs band by band) using a randomly initialised student cut
   small (one ViT block, 16 decoder channels) at the real tile size. Its peak resident memory
   is ``ru_maxrss`` of that process alone. Time is compared with (number of tiles x one tile's
   time), the tile's time being the median of probe batches timed in the same process before,
   during (every 10th batch, their time left out of the run's) and after the run, so a shared
   machine's changing load affects both sides alike; and with the time the model itself spent
   inside the run (everything else is the streaming's overhead).
2. Seams with an exact reference: a fixed convolutional detector (3x3 blur of darkness and
   redness, zero padding, so tiles do disagree near their edges) is streamed over a region of
   the photo (6 x 8 tiles of its grid) and compared, defect by defect, with the same model
   run on a region around the defect (no tiles). Defects across borders and inside tiles are
   scored (IoU with the drawn mask) both ways; a seam would show as a gap between the two.
3. Seams of the student: the mean step of its confidence between neighbouring columns and rows
   at tile edges over the median step everywhere (1.0: no seam), blended (the product) and
   stitched hard (no overlap) on the same 2 x 2-tile region.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from _machine import cpu_name, load_average
from torch import nn

from ml.common.classes import DEFAULT_CLASSES, palette
from ml.common.images import load_label
from ml.prediction import predict as P
from ml.prediction.photo_rows import open_rows
from ml.prediction.png_stream import PngMaskSink
from ml.prediction.tiled import ArraySink, TileGrid
from ml.student.checkpoint import save_checkpoint
from ml.student.config import ModelCard, StudentConfig

ROOT = Path(__file__).resolve().parents[1]
CRACK, BLOB = 2, 1  # class ids drawn: damage, dirt
SEAM_TILES = (5, 7)  # the exact seam check's region: tile steps down and across
PROBE_EVERY = 10  # batches between two timed probe batches during the run


def _machine() -> str:
    cpu, load = cpu_name(), load_average()
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), load average {load:.1f}")


def _edges(starts: list[int], tile: int, n: int) -> list[int]:
    """Tile border lines inside ``[1, n)``: where a tile starts or ends."""
    return sorted({s for s in starts if s > 0} | {s + tile for s in starts if s + tile < n})


def _singles(starts: list[int], tile: int) -> list[tuple[int, int]]:
    """Intervals covered by one tile only (no border runs through them)."""
    ends = [*starts[1:], starts[-1] + tile]  # where the next tile begins, or the last ends
    lo = [0] + [s + tile for s in starts[:-1]]  # where the previous tile ends
    return [(max(s, a), b) for s, a, b in zip(starts, lo, ends, strict=True) if b > max(s, a)]


def _crack(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator, cx: int, cy: int,
           length: int, vertical: bool) -> tuple[int, int, int, int]:
    n = 12
    t = np.linspace(-length / 2, length / 2, n)
    wobble = np.cumsum(rng.normal(0, length / 60, n))
    wobble -= wobble.mean()
    xs, ys = (cx + wobble, cy + t) if vertical else (cx + t, cy + wobble)
    pts = np.stack([xs, ys], 1).round().astype(np.int32)[None]
    cv2.polylines(img, pts, False, (45, 40, 38), 3)
    cv2.polylines(mask, pts, False, CRACK, 3)
    return int(xs.min()) - 3, int(ys.min()) - 3, int(xs.max()) + 4, int(ys.max()) + 4


def _blob(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator, cx: int, cy: int,
          r: int) -> tuple[int, int, int, int]:
    axes = (r, int(r * rng.uniform(0.5, 1.0)))
    angle = float(rng.uniform(0, 180))
    cv2.ellipse(img, (cx, cy), axes, angle, 0, 360, (150, 85, 60), -1)
    cv2.ellipse(mask, (cx, cy), axes, angle, 0, 360, BLOB, -1)
    return cx - r - 1, cy - r - 1, cx + r + 2, cy + r + 2


def make_photo(w: int, h: int, grid: TileGrid, seed: int = 0
               ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(RGB photo, drawn mask, defects with box and whether a tile border crosses them)."""
    rng = np.random.default_rng(seed)
    low = rng.uniform(175, 215, (max(2, h // 400), max(2, w // 400))).astype(np.float32)
    base = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    img = np.empty((h, w, 3), np.uint8)
    for c, tint in enumerate((1.0, 0.99, 0.97)):
        img[..., c] = np.clip(base * tint, 0, 255).astype(np.uint8)
    img += rng.integers(0, 8, (h, w, 1), dtype=np.uint8)  # sensor grain
    mask = np.zeros((h, w), np.uint8)
    xs, ys, t = grid.xs, grid.ys, grid.tile
    sx, sy = _singles(xs, t), _singles(ys, t)
    centres_x = [(a + b) // 2 for a, b in sx]
    centres_y = [(a + b) // 2 for a, b in sy]
    defects = []

    def add(cx: int, cy: int, crossing: bool, vertical: bool) -> None:
        # sizes keep defects apart: a crossing one reaches 60 px into the single-tile zone
        # beside its border, an inside one stays 60 px around the zone's centre
        box = (_crack(img, mask, rng, cx, cy, 110, vertical) if rng.random() < 0.5
               else _blob(img, mask, rng, cx, cy, 40))
        defects.append({"box": box, "crossing": crossing})

    for cx in centres_x:  # inside one tile: centred in the cells one tile covers
        for cy in centres_y:
            if rng.random() < 0.5:
                add(cx, cy, False, bool(rng.random() < 0.5))
    for x in _edges(xs, t, w):  # across a vertical border, a crack running across it
        for cy in centres_y[::2]:
            add(x, cy, True, False)
    for y in _edges(ys, t, h):  # across a horizontal border
        for cx in centres_x[1::2]:
            add(cx, y, True, True)
    return img, mask, defects


BENCH_STUDENT = StudentConfig(backbone_weights="none", taps=(0,), decoder_channels=16)


class LocalDetector(nn.Module):
    """A fixed detector with a 3x3 receptive field: dark = crack, reddish = blob.

    Zero padding makes a tile's edge pixels differ from the same pixels seen inside a tile, as
    a real network's do, so the blend has something to hide.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("box", torch.full((2, 1, 3, 3), 1 / 9), persistent=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        dark = 1 - x.mean(1, keepdim=True)
        red = x[:, :1] - (x[:, 1:2] + x[:, 2:3]) / 2
        blur = F.conv2d(torch.cat([dark, red], 1), self.box, padding=1, groups=2)
        d, r = blur[:, :1], blur[:, 1:]
        logits = torch.cat([torch.zeros_like(d), 40 * (r - 0.12), 40 * (d - 0.5 - r)], 1)
        return {"fine": logits}


def _card(cfg: StudentConfig) -> ModelCard:
    return ModelCard(student=cfg, classes=[c.to_json() for c in DEFAULT_CLASSES])


def child(model_dir: str, photos: str, out: str, device: str, batch: int) -> None:
    """Runs in its own process: prints one JSON line of its figures."""
    import psutil

    pred = P.Predictor.from_dir(model_dir, device, tiled=True, batch_size=batch)
    t = pred.tile
    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 256, (batch, t, t, 3), dtype=np.uint8)
    forward = pred._forward

    def tile_time(reps: int = 3) -> list[float]:
        out_ = []
        for _ in range(reps):
            t0 = time.perf_counter()
            forward(tiles)
            _sync()
            out_.append((time.perf_counter() - t0) / batch)
        return out_

    tile_time(1)  # warm-up
    before = tile_time()
    rss_ready = psutil.Process().memory_info().rss
    in_model, calls = [0.0], [0]

    probes: list[float] = []
    probe_s = [0.0]

    def timed(b: np.ndarray) -> torch.Tensor:
        if len(probes) * PROBE_EVERY <= calls[0]:  # a probe batch, outside the run's time
            t0 = time.perf_counter()
            probes.extend(tile_time(1))
            probe_s[0] += time.perf_counter() - t0
        calls[0] += 1
        t0 = time.perf_counter()
        p = forward(b)
        _sync()
        in_model[0] += time.perf_counter() - t0
        return p

    pred._forward = timed
    photo = next(Path(photos).iterdir())
    t0 = time.perf_counter()
    # what predict_folder does for each photo, with this predictor so its model time is known
    with open_rows(photo) as src, PngMaskSink(Path(out) / "blade.png",
                                              Path(out) / "blade_conf.png", src.width,
                                              src.height, palette(DEFAULT_CLASSES)) as sink:
        pred.stream(src, sink)
        h, w = src.height, src.width
    total = time.perf_counter() - t0 - probe_s[0]
    pred._forward = forward
    after = tile_time()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"total_s": total, "in_model_s": in_model[0],
                      "tile_s": statistics.median(before + probes + after),
                      "tile_before": before, "tile_during": probes, "tile_after": after,
                      "tiles": pred.tile_count(h, w),
                      "peak_rss_mb": peak_kb / 1024, "ready_rss_mb": rss_ready / 2**20,
                      "size": [w, h], "tile": t, "overlap": pred.overlap}))


def _ms(v: list[float]) -> str:
    return "/".join(f"{x * 1000:.0f}" for x in v) + " ms"


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def run_child(model_dir: Path, photos: Path, out: Path, device: str, batch: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(model_dir), str(photos),
           str(out), "--device", device, "--batch", str(batch)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"the prediction process failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def seams_exact(image: np.ndarray, mask: np.ndarray, defects: list[dict], tile: int
                ) -> dict:
    """Streamed detector vs the detector on a region around each defect (no tiles)."""
    det = LocalDetector()
    pred = P.Predictor(det, _card(StudentConfig(input_size=tile)), "cpu", tiled=True,
                       batch_size=4)
    # a top-left region ending where a tile of the photo's grid ends: the same tiles there
    step = tile - pred.overlap
    h, w = (min(n, tile + k * step) for n, k in zip(mask.shape, SEAM_TILES, strict=True))
    image, mask = image[:h, :w], mask[:h, :w]
    defects = [d for d in defects if d["box"][2] <= w and d["box"][3] <= h]
    sink = ArraySink(h, w)
    pred.stream(image, sink)
    rows: dict[bool, dict[str, list]] = {k: {"tiled": [], "ref": [], "diff": [], "dconf": []}
                                         for k in (False, True)}
    m = 8  # margin: the region's own zero padding stays out of the compared box
    for d in defects:
        x0, y0, x1, y1 = d["box"]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        rx0, ry0, rx1, ry1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)
        with torch.inference_mode():
            x = torch.from_numpy(image[ry0:ry1, rx0:rx1]).permute(2, 0, 1)[None].float() / 255
            p = det(x)["fine"].softmax(1)[0].numpy()
        sl = (slice(y0 - ry0, y1 - ry0), slice(x0 - rx0, x1 - rx0))
        ref_label = p.argmax(0)[sl]
        ref_conf = np.round(p.max(0)[sl] * 255)
        got_label = sink.label[y0:y1, x0:x1]
        truth = mask[y0:y1, x0:x1] > 0
        r = rows[d["crossing"]]
        r["tiled"].append(_iou(got_label > 0, truth))
        r["ref"].append(_iou(ref_label > 0, truth))
        r["diff"].append(int(np.count_nonzero(got_label != ref_label)))
        r["dconf"].append(float(np.abs(sink.confidence[y0:y1, x0:x1] - ref_conf).max()))
    return {("across tile borders" if k else "inside one tile"): {
        "defects": len(v["tiled"]), "iou_tiled": float(np.mean(v["tiled"])),
        "iou_reference": float(np.mean(v["ref"])), "label_pixels_differing": int(sum(v["diff"])),
        "max_conf_diff": max(v["dconf"], default=0.0)} for k, v in rows.items()}


def _edge_step_ratio(conf: np.ndarray, grid: TileGrid) -> float:
    """Mean confidence step across tile edges over the median step anywhere (rows and cols)."""
    c = conf.astype(np.float32)
    col = np.abs(np.diff(c, axis=1)).mean(axis=0)  # step between column x-1 and x, at x-1
    row = np.abs(np.diff(c, axis=0)).mean(axis=1)
    ex = [x - 1 for x in _edges(grid.xs, grid.tile, conf.shape[1])]
    ey = [y - 1 for y in _edges(grid.ys, grid.tile, conf.shape[0])]
    at = np.concatenate([col[ex], row[ey]])
    return float(at.mean() / np.median(np.concatenate([col, row])))


def seams_student(model_dir: Path, image: np.ndarray, device: str) -> dict:
    """Edge-step ratio of the student's confidence on a 2 x 2-tile region, blended and hard."""
    out = {}
    for name, overlap in (("blended", 0.25), ("hard", 0.0)):
        pred = P.Predictor.from_dir(model_dir, device, tiled=True, overlap=overlap)
        t = pred.tile
        region = np.ascontiguousarray(image[:2 * t, :2 * t])
        res = pred.predict(region)
        out[name] = _edge_step_ratio(res.confidence, TileGrid(*region.shape[:2], t,
                                                              pred.overlap))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="8000x5600", help="photo W x H (default 8000x5600)")
    ap.add_argument("--tile", type=int, default=518, help="tile (student input) size")
    ap.add_argument("--batch", type=int, default=4, help="tiles per model run")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, help="also write the report here")
    ap.add_argument("--child", nargs=3, metavar=("MODEL", "PHOTOS", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child, a.device, a.batch)
        return
    from PIL import Image

    w, h = (int(v) for v in a.size.lower().split("x"))
    lines = [f"bench/tiled.py --size {w}x{h} --tile {a.tile} --batch {a.batch} "
             f"--device {a.device}", f"machine: {_machine()}"]

    def say(s: str) -> None:
        print(s, flush=True)
        lines.append(s)

    print("\n".join(lines), flush=True)
    t_start = time.perf_counter()
    cfg = StudentConfig(**{**BENCH_STUDENT.to_dict(), "input_size": a.tile})
    grid = TileGrid(h, w, a.tile, int(round(a.tile * 0.25)))
    image, mask, defects = make_photo(w, h, grid)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        from ml.student.models import build_model

        model_dir = save_checkpoint(tmp / "model", build_model(cfg).eval(), _card(cfg))
        (tmp / "photos").mkdir()
        Image.fromarray(image).save(tmp / "photos" / "blade.jpg", quality=95)
        say(f"photo: {w} x {h} = {w * h / 1e6:.1f} MP JPEG, {len(defects)} defects "
            f"({sum(d['crossing'] for d in defects)} across tile borders); "
            f"made in {time.perf_counter() - t_start:.0f} s")
        r = run_child(model_dir, tmp / "photos", tmp / "out", a.device, a.batch)
        ideal = r["tiles"] * r["tile_s"]
        say(f"student: random init, 1 ViT block + 16-channel decoder, {r['tile']} px tiles, "
            f"overlap {r['overlap']} px, {r['tiles']} tiles, batch {a.batch}")
        say(f"peak resident memory (own process): {r['peak_rss_mb']:.0f} MB "
            f"({r['peak_rss_mb'] / 1024:.2f} GB; target < 4 GB); after loading the model, "
            f"before the photo: {r['ready_rss_mb']:.0f} MB")
        say(f"time: {r['total_s']:.1f} s for read + predict + write; one tile "
            f"{r['tile_s'] * 1000:.0f} ms (median of probe batches: before "
            f"{_ms(r['tile_before'])}, during {_ms(r['tile_during'])}, after "
            f"{_ms(r['tile_after'])}; their time is not in the run's); tiles x tile = "
            f"{ideal:.1f} s")
        say(f"ratio time / (tiles x tile): {r['total_s'] / ideal:.3f} (target <= 1.1)")
        say(f"ratio time / time inside the model in this run: "
            f"{r['total_s'] / r['in_model_s']:.3f} (the rest is reading, blending, writing)")
        label = load_label(tmp / "out" / "blade.png")
        say(f"mask written: {label.shape[1]} x {label.shape[0]}, "
            f"{np.count_nonzero(label) / label.size:.1%} defect pixels (random student)")
        t0 = time.perf_counter()
        ex = seams_exact(image, mask, defects, a.tile)
        for k, v in ex.items():
            say(f"seam check, exact detector, defects {k} ({v['defects']}): IoU "
                f"streamed {v['iou_tiled']:.4f} vs region reference {v['iou_reference']:.4f}; "
                f"label pixels differing {v['label_pixels_differing']}, max confidence "
                f"difference {v['max_conf_diff']:.0f}/255")
        st = seams_student(model_dir, image, a.device)
        say(f"seam check, student confidence step at tile edges / median step (1.0 = no seam): "
            f"blended {st['blended']:.2f}, hard-stitched {st['hard']:.2f} "
            f"({time.perf_counter() - t0:.0f} s for the seam checks)")
    say(f"bench wall time: {time.perf_counter() - t_start:.0f} s; load average now "
        f"{os.getloadavg()[0]:.1f}")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
