"""What one training step of a candidate setting costs on this machine, measured.

:func:`measure_step` times the trainer's own step (:func:`ml.training.step.training_loss`,
:func:`ml.training.step.apply_gradients`, the EMA update) on random data at a :class:`Candidate`'s
settings; :func:`measured_costs` is the ``cost`` :func:`ml.training.budget.plan` asks, measuring
each setting once.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """One setting the plan may pick."""

    mode: str  # bitfit | frozen | full
    input_size: int
    crop: int = 0  # 0: whole photo resized; >0: crops of this many cached pixels


@dataclass(frozen=True)
class StepCost:
    """Measured seconds of one candidate's units of work on this machine."""

    encode_s: float  # backbone forward of one view without gradients (frozen: the cache fill)
    step_s: float  # one training step of a batch (frozen: the decoder only)
    eval_s: float  # one validation forward of a batch


def measure_step(cand: Candidate, device: str = "cpu", num_classes: int = 3,
                 batch_size: int = 4, repeats: int = 3, box_loss: float = 0.0,
                 members: int = 1) -> StepCost:
    """Time a few steps of ``cand`` on random data (random weights: same cost).

    A step is the trainer's own (:mod:`ml.training.step`'s loss and update, the EMA update of
    the whole model, the frozen backbone included), with the box terms when
    ``box_loss`` > 0 (one box per view) and every decoder of a ``members`` student; the median
    of ``repeats`` is taken, not the fastest.
    Without the clip and the EMA, and with the fastest step, a 5-minute plan on magnetic_tile
    ran 12 % long (docs/RESULTS.md, round 5).
    """
    import numpy as np
    import torch
    from timm.utils.model_ema import ModelEmaV3

    from ml.student import models
    from ml.student.config import StudentConfig, TrainConfig
    from ml.training.box_loss import BoxLoss
    from ml.training.box_raster import box_raster
    from ml.training.losses import B2PLoss
    from ml.training.step import apply_gradients, training_loss

    dev = torch.device(device)
    cfg = StudentConfig(num_classes=num_classes, input_size=cand.input_size, mode=cand.mode,
                        backbone_weights="none", members=members)
    model = models.build_model(cfg).to(dev)
    train_cfg = TrainConfig(box_loss=box_loss)
    loss_fn = B2PLoss(train_cfg, num_classes)
    box_fn = BoxLoss(train_cfg) if box_loss > 0 else None
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-6)
    s = cand.input_size
    x = torch.rand(batch_size, 3, s, s, device=dev)
    y = torch.randint(0, num_classes, (batch_size, s, s), device=dev)
    one_box = box_raster(np.array([[s / 4, s / 4, 3 * s / 4, 3 * s / 4]]), True, (s, s),
                         (0, 0, s, s), s)
    rasters = torch.as_tensor(np.stack([one_box] * batch_size), device=dev).long()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda")
    frozen = cand.mode == "frozen"

    def timed(fn: Callable[[], object]) -> float:
        fn()  # warm-up: allocations, kernels picked
        times = []
        for _ in range(repeats):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    with torch.no_grad(), autocast:
        feats = model.encode(x)
    run = (lambda: model.decode(feats, x)) if frozen else (lambda: model(x))

    ema = ModelEmaV3(model, decay=train_cfg.ema, use_warmup=True)
    steps = [0]

    def step() -> None:
        model.train()
        with autocast:
            out = run()
        loss, _ = training_loss(out, y, 0, loss_fn, None, box_fn, rasters, x)
        apply_gradients(loss, opt, params, train_cfg.grad_clip)
        steps[0] += 1
        ema.update(model, step=steps[0])

    def evaluate() -> None:
        model.eval()
        with torch.no_grad(), autocast:
            run()

    def encode() -> None:
        model.eval()
        with torch.no_grad(), autocast:
            model.encode(x)

    encode_s = timed(encode) / batch_size if frozen else 0.0
    return StepCost(encode_s, timed(step), timed(evaluate))


def measured_costs(device: str = "cpu", num_classes: int = 3, batch_size: int = 4,
                   box_loss: float = 0.0, members: int = 1) -> Callable[[Candidate], StepCost]:
    """A ``cost`` for :func:`plan` that measures each candidate once on this machine."""
    seen: dict[Candidate, StepCost] = {}

    def cost(cand: Candidate) -> StepCost:
        # the input size and mode set the cost; a crop only changes the number of views
        key = Candidate(cand.mode, cand.input_size)
        if key not in seen:
            seen[key] = measure_step(key, device, num_classes, batch_size, box_loss=box_loss,
                                     members=members)
        return seen[key]
    return cost
