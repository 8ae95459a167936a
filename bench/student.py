"""Student speed against a faithful re-implementation of the reference forward pass.

Reference: the paper's forward as published: the whole DINOv2 ViT-S/14 runs (all 12 blocks and
the final norm of the last token map), the decoder taps blocks 1, 2, 4, 7 from that full pass.
Ours: the backbone is cut after block 7. Both share every weight, so their outputs must agree
(checked before timing). Timings alternate between the two models to spread out the noise of a
shared machine; medians are reported.

    .venv/bin/python bench/student.py [--size 518] [--iters 3] [--batch 2] [--out FILE]
        [--device cuda] [--amp]

On CUDA the timings synchronise the device, ``--amp`` runs under bf16 autocast (as training
does there) and the peak GPU memory of each model's training step is printed.

TODO(train): frozen+feature-cache vs bitfit epoch timing belongs to ml/training/trainer.py's
benchmark (``ml.training.trainer.train`` on a synthetic project with ``mode="frozen"`` and
``"bitfit"``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _machine import cpu_name, load_average
from torch import nn

from ml.common.device import resolve_device
from ml.student.config import StudentConfig
from ml.student.models import Student, build_model, count_parameters
from ml.student.models.backbone import set_trainable


class ReferenceStudent(nn.Module):
    """All 12 blocks computed, taps read from the full pass; decoder shared with ``ours``."""

    def __init__(self, ours: Student) -> None:
        super().__init__()
        import timm

        cfg = ours.cfg
        self.vit = timm.create_model(cfg.backbone, pretrained=False, img_size=cfg.input_size,
                                     dynamic_img_size=True, num_classes=0)
        self.vit.load_state_dict(ours.backbone.vit.state_dict(), strict=False)  # blocks 0-7
        set_trainable(self.vit, ours.backbone.mode)  # same fine-tuning rule (BitFit)
        self.ours = ours
        self.taps = list(cfg.taps)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        xn = self.ours.backbone.normalize(x)
        _, feats = self.vit.forward_intermediates(xn, indices=self.taps, norm=True,
                                                  output_fmt="NCHW")
        return self.ours.decoder(feats, xn)


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _time(fn: Callable[[], object]) -> float:
    _sync()
    t0 = time.perf_counter()
    fn()
    _sync()
    return time.perf_counter() - t0


def _alternate(fns: dict[str, Callable[[], object]], iters: int) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved; one warm-up each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(iters):
        for k, fn in fns.items():
            times[k].append(_time(fn))
    return {k: statistics.median(v) for k, v in times.items()}


def _autocast(x: torch.Tensor, amp: bool):
    return torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp)


def _train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                amp: bool = False) -> Callable[[], None]:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    ce = nn.CrossEntropyLoss()

    def step() -> None:
        with _autocast(x, amp):
            out = model(x)
        loss = ce(out["fine"].float(), y) + ce(out["binary"].float(), (y > 0).long())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _machine() -> str:
    cpu, load = cpu_name(), load_average()
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), load average {load:.1f}{gpu}")


def _peak_memory(step: Callable[[], None], device: torch.device) -> float:
    """Peak GPU memory (GiB) of one training step; NaN on CPU."""
    if device.type != "cuda":
        return float("nan")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**30


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=518)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2, help="training batch size")
    ap.add_argument("--out", type=Path, help="append a Markdown row block to this file")
    ap.add_argument("--device", default="cpu", help="auto | cpu | cuda")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA training's setting)")
    args = ap.parse_args()
    dev = resolve_device(args.device)

    torch.manual_seed(0)
    ours = build_model(StudentConfig(input_size=args.size, backbone_weights="none"))
    ref = ReferenceStudent(ours).to(dev)
    x1 = torch.rand(1, 3, args.size, args.size, device=dev)
    ours.eval()
    with torch.inference_mode():
        diff = (ours(x1)["fine"] - ref(x1)["fine"]).abs().max().item()
    # TF32 matmuls on CUDA round differently from CPU fp32; the check is of the wiring.
    assert diff < (1e-4 if dev.type == "cpu" else 5e-2), f"reference and ours disagree by {diff}"

    def infer_fn(model: nn.Module) -> Callable[[], object]:
        return lambda: model(x1)

    with torch.inference_mode(), _autocast(x1, args.amp):
        infer = _alternate({"ours": infer_fn(ours), "reference": infer_fn(ref)}, args.iters)
    ours.train()
    xb = torch.rand(args.batch, 3, args.size, args.size, device=dev)
    yb = torch.randint(0, ours.cfg.num_classes, (args.batch, args.size, args.size), device=dev)
    steps = {"ours": _train_step(ours, xb, yb, args.amp),
             "reference": _train_step(ref, xb, yb, args.amp)}
    train = _alternate(steps, args.iters)
    peak = {k: _peak_memory(fn, dev) for k, fn in steps.items()}

    trainable, total = count_parameters(ours)
    lines = [
        f"machine: {_machine()}",
        f"input {args.size}px, {'bf16 autocast' if args.amp else 'fp32'} on {dev.type}; "
        f"ours {len(ours.backbone.vit.blocks)} blocks, reference "
        f"{len(ref.vit.blocks)}; max |fine logit diff| {diff:.1e}",
        f"params (bitfit): trainable {trainable / 1e6:.2f} M of {total / 1e6:.2f} M",
        f"inference batch 1: ours {infer['ours'] * 1e3:.0f} ms, reference "
        f"{infer['reference'] * 1e3:.0f} ms -> {infer['reference'] / infer['ours']:.2f}x",
        f"train step batch {args.batch}: ours {args.batch / train['ours']:.2f} img/s, reference "
        f"{args.batch / train['reference']:.2f} img/s -> "
        f"{train['reference'] / train['ours']:.2f}x",
    ]
    if dev.type == "cuda":
        lines.append(f"peak GPU memory of a train step: ours {peak['ours']:.2f} GiB, reference "
                     f"{peak['reference']:.2f} GiB")
    print("\n".join(lines))
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write("\n".join(f"- {s}" for s in lines) + "\n\n")


if __name__ == "__main__":
    main()
