"""Training losses: the Boxes2Pixels loss (asymmetric Dice + self-correcting CE) and plain CE.

Targets are ``(B, H, W)`` long class ids with :data:`IGNORE` (255) on pixels outside the image
(padding); those pixels count nowhere. An optional ``(B, H, W)`` weight map in [0, 1] (the
teacher's per-pixel confidence) scales each pixel's share of the CE and Dice terms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ml.common.classes import IGNORE
from ml.student.config import TrainConfig, class_weights

LOSS_KINDS = ("b2p", "ce")


def asymmetric_dice(p_defect: torch.Tensor, target: torch.Tensor, beta: float = 0.4,
                    valid: torch.Tensor | None = None, eps: float = 1.0,
                    weight: torch.Tensor | None = None) -> torch.Tensor:
    """Tversky-style Dice loss ``1 - (TP+eps) / (TP + beta*FP + FN + eps)``.

    ``p_defect`` (B, H, W) is the soft defect probability, ``target`` (B, H, W) the 0/1 defect
    map. TP, FP and FN are summed over the whole batch (not per image), so an image without
    defects does not turn into a 0/0 term of its own. ``beta`` < 1 makes false positives
    cheaper than misses: box-derived teachers under-segment thin defects. ``weight`` (B, H, W)
    scales each pixel's share of TP, FP and FN.
    """
    t = target.to(p_defect.dtype)
    if valid is not None or weight is not None:
        v = valid.to(p_defect.dtype) if valid is not None else torch.ones_like(p_defect)
        if weight is not None:
            v = v * weight.to(p_defect.dtype)
        p_defect, t = p_defect * v, t * v
    tp = (p_defect * t).sum()
    fp = (p_defect * (1 - t)).sum()
    fn = ((1 - p_defect) * t).sum()
    return 1 - (tp + eps) / (tp + beta * fp + fn + eps)


def self_correct(fine_logits: torch.Tensor, target: torch.Tensor, tau: float = 0.9,
                 prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One-sided online correction of teacher targets; returns (new target, corrected mask).

    A background pixel of the teacher becomes the student's class where the student gives a
    defect class probability above ``tau``. Defect targets (and ignored pixels) never change:
    the teacher's boxes say a defect is there; only its missing pixels are recovered.

    ``prior`` (the CE class weights) is divided out of the probabilities first. A student
    trained with weights (0.4, 4, 4) inflates defect odds tenfold, so its raw p > 0.9 means a
    calibrated p of only ~0.47: with the prior undone, ``tau`` means what it says.
    """
    with torch.no_grad():
        prob = torch.softmax(fine_logits.detach().float(), dim=1)
        if prior is not None:
            prob = prob / prior.to(prob.device).view(1, -1, 1, 1)
            prob = prob / prob.sum(dim=1, keepdim=True).clamp_min(1e-12)
        conf, cls = prob.max(dim=1)
        corrected = (target == 0) & (cls > 0) & (conf > tau)
        new = torch.where(corrected, cls, target)
    return new, corrected


def weighted_ce(logits: torch.Tensor, target: torch.Tensor, class_weight: torch.Tensor,
                weight: torch.Tensor) -> torch.Tensor:
    """Class-weighted CE where each pixel also counts ``weight`` (a weighted mean, as torch's)."""
    nll = F.cross_entropy(logits, target, weight=class_weight, ignore_index=IGNORE,
                          reduction="none")  # already multiplied by the target's class weight
    valid = target != IGNORE
    cw = class_weight[target.clamp(0, len(class_weight) - 1)] * valid
    w = weight.to(nll.dtype) * cw
    return (nll * weight.to(nll.dtype) * valid).sum() / w.sum().clamp_min(1e-12)


def plain_ce(outputs: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """Unweighted cross-entropy on the fine head (the U-Net baseline's loss)."""
    return F.cross_entropy(outputs["fine"].float(), target, ignore_index=IGNORE)


class B2PLoss:
    """``loss(outputs, target, epoch) -> (total, parts)`` with parts as plain floats.

    ``kind="b2p"``: ``binary_weight * asymmetric Dice(binary head) + fine_weight *
    class-weighted CE(fine head, self-corrected target)``; without a binary head (ablation)
    the fine term alone. ``kind="ce"``: plain CE, no correction (baseline row "unet").
    Self-correction starts after ``warmup_epochs`` (0-based epochs < warmup are plain).
    """

    def __init__(self, train_cfg: TrainConfig, num_classes: int, kind: str = "b2p") -> None:
        if kind not in LOSS_KINDS:
            raise ValueError(f"unknown loss '{kind}' (choose from {', '.join(LOSS_KINDS)})")
        self.cfg = train_cfg
        self.num_classes = num_classes
        self.kind = kind
        self.weights = torch.tensor(class_weights(train_cfg, num_classes), dtype=torch.float32)

    def correcting(self, epoch: int) -> bool:
        return self.kind == "b2p" and self.cfg.self_correct and epoch >= self.cfg.warmup_epochs

    def __call__(self, outputs: dict[str, torch.Tensor], target: torch.Tensor,
                 epoch: int = 0, weight: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and its parts; ``weight`` (B, H, W) in [0, 1] scales each pixel's share."""
        fine = outputs["fine"].float()
        if fine.shape[1] != self.num_classes:
            raise ValueError(f"model gives {fine.shape[1]} classes, loss expects "
                             f"{self.num_classes}")
        valid = target != IGNORE
        n_valid = max(int(valid.sum()), 1)
        if self.kind == "ce":
            loss = plain_ce(outputs, target)
            return loss, {"binary": 0.0, "fine": float(loss.detach()), "corrected_frac": 0.0}
        fine_target, corrected = target, None
        if self.correcting(epoch):
            prior = self.weights if self.cfg.tau_calibrated else None
            fine_target, corrected = self_correct(fine, target, self.cfg.tau, prior)
        if weight is None:
            ce = F.cross_entropy(fine, fine_target, weight=self.weights.to(fine.device),
                                 ignore_index=IGNORE)
        else:
            ce = weighted_ce(fine, fine_target, self.weights.to(fine.device), weight)
        parts = {"fine": float(ce.detach()), "binary": 0.0,
                 "corrected_frac": float(corrected.sum()) / n_valid if corrected is not None
                 else 0.0}
        if "binary" not in outputs:
            return ce, parts
        p_defect = torch.softmax(outputs["binary"].float(), dim=1)[:, 1]
        dice = asymmetric_dice(p_defect, (target > 0) & valid, self.cfg.dice_beta, valid,
                               weight=weight)
        parts["binary"] = float(dice.detach())
        total = self.cfg.binary_weight * dice + self.cfg.fine_weight * ce
        return total, parts
