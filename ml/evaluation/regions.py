"""Region-level scores: are the defects found, and is each predicted region on a defect?

A pixel score cannot tell nine defects found and buried under three thousand specks from nine
defects found cleanly; an inspector's queue can. Regions are the 8-connected components of a
binary defect mask (any class id > 0, :data:`ml.common.classes.IGNORE` left out):

* region recall: a true region is **found** when a predicted pixel lies within ``tol`` px of
  it (3 px by default, the usual tolerance for cracks labelled 1-2 px wide);
* region precision: a predicted region **touches a defect** when a true defect pixel lies
  within ``tol`` px of it; otherwise it is a false alarm.

Counts add up over photos (:class:`RegionCounts`), so a set's recall is found / true regions
and its precision is touching / predicted regions.

    c = region_counts(pred_label, gt_label)        # one photo
    total = sum((region_counts(p, g) for p, g in pairs), RegionCounts())
    total.recall, total.precision
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ml.common.classes import IGNORE

TOLERANCE = 3  # px: a predicted region this close to a true one finds it


@dataclass(frozen=True)
class RegionCounts:
    """Region counts of one or more photos; ``+`` adds them."""

    true: int = 0  # true regions
    found: int = 0  # true regions with a predicted pixel within the tolerance
    predicted: int = 0  # predicted regions
    touching: int = 0  # predicted regions with a true defect pixel within the tolerance

    def __add__(self, other: RegionCounts) -> RegionCounts:
        return RegionCounts(self.true + other.true, self.found + other.found,
                            self.predicted + other.predicted, self.touching + other.touching)

    @property
    def recall(self) -> float:
        """Share of true regions found (nan without any)."""
        return self.found / self.true if self.true else float("nan")

    @property
    def precision(self) -> float:
        """Share of predicted regions that touch a defect (nan without any)."""
        return self.touching / self.predicted if self.predicted else float("nan")

    def as_dict(self) -> dict[str, float]:
        return {"region_recall": self.recall, "region_precision": self.precision,
                "true_regions": self.true, "predicted_regions": self.predicted}


def defect_mask(label: np.ndarray) -> np.ndarray:
    """Bool mask of a class-id map's defect pixels (ignore pixels are not defect)."""
    a = np.asarray(label)
    return (a > 0) & (a != IGNORE)


def _near(mask: np.ndarray, tol: float) -> np.ndarray:
    """Pixels within ``tol`` px (Euclidean) of ``mask``."""
    if not mask.any():
        return np.zeros(mask.shape, bool)
    d = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return d <= tol


def _hits(mask: np.ndarray, target_near: np.ndarray) -> tuple[int, int]:
    """(regions of ``mask``, those with a pixel in ``target_near``)."""
    n, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return 0, 0
    hit = np.unique(comp[target_near & mask])
    return n - 1, int((hit > 0).sum())


def region_counts(pred: np.ndarray, gt: np.ndarray, tol: float = TOLERANCE) -> RegionCounts:
    """Region counts of one photo's predicted and true class-id (or bool) masks."""
    p, g = defect_mask(pred), defect_mask(gt)
    if p.shape != g.shape:
        raise ValueError(f"prediction {p.shape} and ground truth {g.shape} differ")
    true, found = _hits(g, _near(p, tol))
    predicted, touching = _hits(p, _near(g, tol))
    return RegionCounts(true, found, predicted, touching)
