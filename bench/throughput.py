"""Throughput of the student: inference images/s at 518 px batched, training images/s on crops.

    python bench/throughput.py [--device cuda] [--size 518] [--batches 16,32,64]
        [--train-batch 8] [--seconds 20] [--out FILE.md]

Inference: the student (BitFit mode, random weights: speed does not depend on them) on
batches of ``--size`` px images under bf16 autocast on CUDA (fp32 on the CPU), as many batches
as fit in ``--seconds`` after a warm-up; images/s per batch size. Training: the same student's
full step (forward, the two CE terms, backward, AdamW) on ``--size`` px crops, the batch of
``b2p train`` on a GPU; images/s. Tiled: ``--tiled-photos`` random 8000 x 5600 photos (45 MP)
through the product's own tiled path (:class:`ml.prediction.predict.Predictor`, overlapping
tiles blended, label and confidence maps, as ``b2p predict --tiled``); photos per minute.
Goal of issue 28: >= 1000 img/s inference at 518 px in bf16 on one GPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from student import _autocast, _machine, _sync, _train_step  # noqa: E402

from ml.common.device import resolve_device  # noqa: E402
from ml.student.config import StudentConfig  # noqa: E402
from ml.student.models import build_model  # noqa: E402


def _rate(step, images: int, seconds: float) -> float:
    """Images per second of ``step`` (``images`` a call), timed for about ``seconds``."""
    step()  # warm-up (cuDNN autotuning, allocations)
    _sync()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 2:
        step()
        n += 1
    _sync()
    return n * images / (time.perf_counter() - t0)


def _tiled_rate(model, a: argparse.Namespace, device: torch.device) -> float:
    """45 MP photos per second through the product's tiled prediction."""
    import numpy as np

    from ml.prediction.predict import Predictor
    from ml.student.config import ModelCard, TrainConfig

    card = ModelCard(student=model.cfg, train=TrainConfig(crop=0))
    pred = Predictor(model.eval(), card, device, tiled=True, batch_size=a.tile_batch)
    rng = np.random.default_rng(0)
    pred.predict(rng.integers(0, 255, (a.size, 2 * a.size, 3), dtype=np.uint8))  # warm-up
    w, h = (int(v) for v in a.photo.split("x"))
    photo = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    _sync()
    t0 = time.perf_counter()
    for _ in range(a.tiled_photos):
        pred.predict(photo)
    _sync()
    return a.tiled_photos / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--size", type=int, default=518)
    ap.add_argument("--batches", default="16,32,64", help="inference batch sizes")
    ap.add_argument("--train-batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0, help="timing per figure")
    ap.add_argument("--tiled-photos", type=int, default=2, help="45 MP photos to predict (0: none)")
    ap.add_argument("--tile-batch", type=int, default=32, help="tiles per model run")
    ap.add_argument("--photo", default="8000x5600", help="tiled photo W x H (45 MP)")
    ap.add_argument("--out", type=Path, help="also write the table here")
    a = ap.parse_args(argv)
    device = resolve_device(a.device)
    amp = device.type == "cuda"
    if amp:
        torch.backends.cudnn.benchmark = True
    model = build_model(StudentConfig(num_classes=2, input_size=a.size, mode="bitfit",
                                      backbone_weights="none")).to(device)
    lines = [f"## Student throughput at {a.size} px ({'bf16' if amp else 'fp32'}, {device})", "",
             f"`python bench/throughput.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
             "", "| what | batch | images/s |", "|---|---|---|"]
    model.eval()
    for b in (int(v) for v in a.batches.split(",") if v):
        x = torch.rand(b, 3, a.size, a.size, device=device)

        @torch.inference_mode()
        def infer(x=x) -> None:
            with _autocast(x, amp):
                model(x)["fine"].softmax(dim=1)
        try:
            r = _rate(infer, b, a.seconds)
        except torch.OutOfMemoryError:
            lines.append(f"| inference | {b} | out of memory |")
            break
        lines.append(f"| inference | {b} | {r:.0f} |")
        print(lines[-1], flush=True)
    model.train()
    x = torch.rand(a.train_batch, 3, a.size, a.size, device=device)
    y = torch.randint(0, 2, (a.train_batch, a.size, a.size), device=device)
    r = _rate(_train_step(model, x, y, amp), a.train_batch, a.seconds)
    lines.append(f"| training step on {a.size} px crops | {a.train_batch} | {r:.1f} |")
    print(lines[-1], flush=True)
    if a.tiled_photos > 0:
        lines.append(f"| tiled {a.photo} photos, photos per minute | {a.tile_batch} "
                     f"tiles | {60 * _tiled_rate(model, a, device):.2f} |")
    lines += ["", f"Machine: {_machine()}"]
    md = "\n".join(lines) + "\n"
    print(md)
    if a.out:
        a.out.write_text(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
