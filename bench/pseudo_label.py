"""Teacher speed: SAM with one embedding + one batched decode per image vs one call per box.

Naive box-prompt tools call the predictor once per box and re-embed the image every time;
our SAM teacher embeds once per image and decodes all its boxes together. Timed on synthetic
photos with a randomly initialised SAM (speed does not depend on the weights), plus GrabCut
and box fill per image.

    python bench/pseudo_label.py [--images 2] [--boxes 5] [--model-type vit_b]
        [--device cpu] [--out bench/results/pseudo_label.md]

Goal: all boxes of an image cost at most 1.1x one embedding.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.common.atomic import atomic_write_text  # noqa: E402
from ml.project.store import boxes_to_arrays  # noqa: E402
from ml.teachers import make_teacher  # noqa: E402

GOAL = 1.1


def _images(n: int, n_boxes: int) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(name, image, boxes, classes) with the ``n_boxes`` largest boxes of each photo."""
    from ml.datasets.synthetic import generate

    out = []
    for s in generate(n, 512, seed=0):
        boxes = sorted(s.boxes, key=lambda b: -b.area)[:n_boxes]
        xyxy, cls = boxes_to_arrays(boxes)
        out.append((s.name, s.image, xyxy, cls))
    return out


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()  # GPU work is asynchronous: wait before reading the clock


def _timed(fn, *args):
    _sync()
    t0 = time.perf_counter()
    out = fn(*args)
    _sync()
    return time.perf_counter() - t0, out


def _sam_rows(samples, model_type: str, device: str) -> list[dict]:
    import torch
    from segment_anything import SamPredictor

    from ml.teachers.sam import build_sam

    torch.manual_seed(0)
    sam = build_sam(model_type)
    teacher = make_teacher("sam", model=sam, model_type=model_type, device=device)
    naive = SamPredictor(sam)
    rows = []
    for name, image, boxes, cls in samples:
        embed_s, _ = _timed(teacher.set_image, image)
        decode_s, _ = _timed(teacher.predict, boxes, cls)
        naive_s = 0.0
        for b in boxes:  # what per-box tools do: set the image again for every box
            t0 = time.perf_counter()
            naive.set_image(image)
            naive.predict(box=b, multimask_output=False)
            _sync()
            naive_s += time.perf_counter() - t0
        rows.append({"image": name, "boxes": len(boxes), "embed_s": embed_s,
                     "decode_s": decode_s, "batched_s": embed_s + decode_s,
                     "naive_s": naive_s})
        print(f"{name}: {len(boxes)} boxes  embed {embed_s:.2f} s  batched decode "
              f"{decode_s:.3f} s  naive {naive_s:.2f} s", flush=True)
    return rows


def _cheap_rows(samples, name: str) -> list[float]:
    t = make_teacher(name)
    times = []
    for _, image, boxes, cls in samples:
        t0 = time.perf_counter()
        t.set_image(image)
        t.predict(boxes, cls)
        times.append(time.perf_counter() - t0)
    return times


def machine() -> str:
    import torch

    load = ""
    if hasattr(os, "getloadavg"):  # other work on the machine slows every figure
        load = f", load average {os.getloadavg()[0]:.1f}"
    return (f"{platform.platform()}, {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs{load}, torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads, python {platform.python_version()}")


def report(rows: list[dict], grabcut: list[float], box: list[float], args) -> str:
    embed = sum(r["embed_s"] for r in rows)
    batched = sum(r["batched_s"] for r in rows)
    naive = sum(r["naive_s"] for r in rows)
    ratio = batched / embed
    lines = [
        "# Pseudo-label teacher speed",
        "",
        f"Machine: {machine()}; device {args.device}.",
        f"SAM {args.model_type}, randomly initialised; {len(rows)} synthetic photos "
        f"(ml.datasets.synthetic, 512 px high), the {args.boxes} largest boxes of each.",
        "Command: `python bench/pseudo_label.py "
        f"--images {args.images} --boxes {args.boxes} --model-type {args.model_type} "
        f"--device {args.device}`",
        "",
        "| image | boxes | embedding s | batched decode s | batched total s | "
        "naive (embed per box) s | naive / batched |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['image']} | {r['boxes']} | {r['embed_s']:.2f} | {r['decode_s']:.3f} "
                     f"| {r['batched_s']:.2f} | {r['naive_s']:.2f} | "
                     f"{r['naive_s'] / r['batched_s']:.1f}x |")
    lines += [
        "",
        f"All boxes of an image cost **{ratio:.3f}x** one embedding (goal <= {GOAL}x): "
        f"{'met' if ratio <= GOAL else 'NOT met'}.",
        f"Per image: batched {batched / len(rows):.2f} s vs naive {naive / len(rows):.2f} s "
        f"({naive / batched:.1f}x faster).",
        f"GrabCut per image: {', '.join(f'{t:.3f} s' for t in grabcut)}; "
        f"box fill per image: {', '.join(f'{t * 1000:.2f} ms' for t in box)}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--boxes", type=int, default=5, help="boxes per image (largest first)")
    ap.add_argument("--model-type", default="vit_b", choices=["vit_b", "vit_l", "vit_h"])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pseudo_label.md")
    args = ap.parse_args(argv)
    samples = _images(args.images, args.boxes)
    print(machine(), flush=True)
    grabcut = _cheap_rows(samples, "grabcut")
    box = _cheap_rows(samples, "box")
    rows = _sam_rows(samples, args.model_type, args.device)
    text = report(rows, grabcut, box, args)
    print(text)
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
