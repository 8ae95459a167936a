"""Box-consistency loss: what a box says for certain, learned beside the teacher's mask.

Terms (literature: the bounding-box tightness prior, Hsu et al., NeurIPS 2019; BoxInst's
projection and colour-pairwise losses, Tian et al., CVPR 2021), on the binary head's defect
probability ``p`` (the fine head's ``1 - p(background)`` when there is no binary head):

* projection: a defect touches every side of a tight box, so along every row and column that
  crosses it the box holds a defect pixel. Per box, the maxima of ``p`` along its rows and
  columns (inside the box) are matched to the box's own 1-D masks (all ones) with Dice, summed
  over every box of the batch. A box cut by the view's edge keeps only the axis it shows whole.
* outside: on photos whose every defect is boxed, ``p`` is pushed to 0 outside all boxes
  (binary cross-entropy, mean over those pixels).
* pairwise: neighbouring pixels (8-neighbourhood, dilation 2) whose colours are alike (CIE Lab
  similarity ``exp(-|dLab| / 2)`` >= ``box_color_sim``) take the same label: ``-log P(same)``,
  mean over such pairs touching a box.

The terms read the view's box raster (:mod:`ml.training.box_raster`). Where a view has no box (or no
pixel a term needs) that term is 0, never NaN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ml.student.config import TrainConfig
from ml.training.box_raster import CUT_X, CUT_Y, OUTSIDE, SHIFT

PAIR_OFFSETS = ((0, 2), (2, 0), (2, 2), (2, -2))  # each undirected 8-neighbour pair once


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB in [0, 1] to CIE Lab (D65), L in [0, 100]."""
    x = x.float().clamp(0, 1)
    lin = torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
    m = torch.tensor([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                      [0.0193339, 0.1191920, 0.9503041]], dtype=x.dtype, device=x.device)
    xyz = torch.einsum("ij,bjhw->bihw", m, lin)
    white = torch.tensor([0.95047, 1.0, 1.08883], dtype=x.dtype, device=x.device)
    t = xyz / white.view(1, 3, 1, 1)
    d = 6 / 29
    f = torch.where(t > d ** 3, t.clamp_min(1e-12) ** (1 / 3), t / (3 * d * d) + 4 / 29)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]),
                        200 * (f[:, 1] - f[:, 2])], dim=1)


def defect_logit(outputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, H, W) log-odds of "defect": from the binary head, else from the fine head."""
    if "binary" in outputs:
        b = outputs["binary"].float()
        return b[:, 1] - b[:, 0]
    logp = F.log_softmax(outputs["fine"].float(), dim=1)
    log_bg = logp[:, 0]
    log_def = torch.logsumexp(logp[:, 1:], dim=1)
    return log_def - log_bg


def box_extents(raster: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per box in one (H, W) raster: (K, 4) long y0, x0, y1, x1 (inclusive) and (K,) flags."""
    ys, xs = torch.nonzero(raster >= (1 << SHIFT), as_tuple=True)
    if len(ys) == 0:
        return torch.zeros((0, 4), dtype=torch.long), torch.zeros(0, dtype=torch.long)
    vals = raster[ys, xs]
    ids, inv = torch.unique(vals >> SHIFT, return_inverse=True)
    k = len(ids)
    ext = torch.empty((4, k), dtype=torch.long, device=raster.device)
    for row, (coord, how) in enumerate(((ys, "amin"), (xs, "amin"), (ys, "amax"),
                                        (xs, "amax"))):
        ext[row] = torch.zeros(k, dtype=torch.long, device=raster.device).scatter_reduce(
            0, inv, coord, how, include_self=False)
    flags = torch.zeros(k, dtype=torch.long, device=raster.device).scatter_reduce(
        0, inv, vals & (CUT_X | CUT_Y), "amax", include_self=False)
    return ext.t().cpu(), flags.cpu()


def projection_loss(p: torch.Tensor, rasters: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Dice between each box's row and column maxima of ``p`` and the box's 1-D masks."""
    total, n = p.sum() * 0.0, 0
    for b in range(p.shape[0]):
        ext, flags = box_extents(rasters[b])
        for (y0, x0, y1, x1), f in zip(ext.tolist(), flags.tolist(), strict=True):
            inside = p[b, y0:y1 + 1, x0:x1 + 1]
            if not f & CUT_X:  # the box's full width is in view: each row holds a defect
                total = total + inside.amax(dim=1).sum()
                n += y1 - y0 + 1
            if not f & CUT_Y:
                total = total + inside.amax(dim=0).sum()
                n += x1 - x0 + 1
    if n == 0:
        return total  # 0, still attached to the graph
    return 1 - (2 * total + eps) / (total + n + eps)


def outside_loss(logit: torch.Tensor, rasters: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean BCE towards background on known-background pixels (outside boxes, all boxed)."""
    known = (rasters == OUTSIDE) & valid
    if not known.any():
        return logit.sum() * 0.0
    return -F.logsigmoid(-logit[known]).mean()


def pairwise_loss(logit: torch.Tensor, image: torch.Tensor, rasters: torch.Tensor,
                  valid: torch.Tensor, threshold: float = 0.3) -> torch.Tensor:
    """Mean ``-log P(same label)`` over colour-alike neighbour pairs touching a box."""
    lab = rgb_to_lab(image)
    log_p, log_q = F.logsigmoid(logit), F.logsigmoid(-logit)
    inbox = rasters >= (1 << SHIFT)
    h, w = logit.shape[-2:]
    total, count = logit.sum() * 0.0, 0
    for dy, dx in PAIR_OFFSETS:
        ya, yb = slice(0, h - dy), slice(dy, h)
        xa, xb = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w),
                                                                   slice(0, w + dx))
        sim = torch.exp(-torch.linalg.vector_norm(lab[:, :, ya, xa] - lab[:, :, yb, xb],
                                                  dim=1) * 0.5)
        use = ((sim >= threshold) & (inbox[:, ya, xa] | inbox[:, yb, xb])
               & valid[:, ya, xa] & valid[:, yb, xb])
        if not use.any():
            continue
        same = torch.logaddexp(log_p[:, ya, xa] + log_p[:, yb, xb],
                               log_q[:, ya, xa] + log_q[:, yb, xb])
        total = total - same[use].sum()
        count += int(use.sum())
    return total / max(count, 1)


class BoxLoss:
    """``loss(outputs, rasters, image, valid) -> (weighted total, parts)``.

    ``total = box_loss * (projection + box_outside * outside + box_pairwise * pairwise)``,
    added to the teacher's loss by the trainer: with ``box_loss`` comparable to the teacher
    weights, a box the teacher left empty still teaches through its projection.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg

    def __call__(self, outputs: dict[str, torch.Tensor], rasters: torch.Tensor,
                 image: torch.Tensor, valid: torch.Tensor
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        logit = defect_logit(outputs)
        proj = projection_loss(torch.sigmoid(logit), rasters)
        out = outside_loss(logit, rasters, valid) if cfg.box_outside > 0 else logit.sum() * 0
        pair = (pairwise_loss(logit, image, rasters, valid, cfg.box_color_sim)
                if cfg.box_pairwise > 0 else logit.sum() * 0)
        total = cfg.box_loss * (proj + cfg.box_outside * out + cfg.box_pairwise * pair)
        return total, {"box": float(total.detach()), "box_projection": float(proj.detach()),
                       "box_outside": float(out.detach()), "box_pairwise": float(pair.detach())}
