"""The box-free decision threshold: how sure the student must be before a pixel with no box
around it is called a defect.

Inside a person's box the box rule decides. Without a box the argmax calls a pixel a defect as
soon as background is less likely than the likeliest defect class; on textured photos (grain,
paint, tile) that floods the mask: round 14 measured box-free precision 0.55 on
magnetic_tile. The threshold here is on the defect score, 1 - p(background), and is chosen
where the student's box-free mask best matches the project's own labels on the validation
photos (binary IoU pooled over the photos; their teacher masks, background outside the boxes).
No ground truth and no photo that is scored is used. Training chooses only when it
validates on :data:`MIN_PHOTOS` photos or more, not on its training photos.

:class:`ScoreCurve` gathers, photo by photo (or batch by batch in training), how many defect
and background pixels lie in each score bin; :meth:`ScoreCurve.choice` reads off the IoU at each
threshold of :data:`GRID` and keeps the best. The trainer keeps its best epoch's choice in the
model card (``ModelCard.free_threshold``) and :class:`ml.prediction.predict.Predictor` applies
it to box-free predictions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ml.common.classes import IGNORE

# thresholds tried: a coarse grid, so a handful of validation photos cannot pick a lucky value
GRID = tuple(round(0.30 + 0.05 * i, 2) for i in range(14))  # 0.30 .. 0.95
BINS = 100  # score histogram resolution
# fewer validation photos than this: no threshold (the argmax decides). On 1-3 photos the
# choice is a gamble: in round 15's review loop, one magnetic_tile student's 0.95 from three
# photos gave 0.022 box-free IoU on the test photos where the argmax gave 0.162
MIN_PHOTOS = 5


@dataclass(frozen=True)
class FreeThreshold:
    """The chosen threshold, its IoU and the argmax-like 0.5's, and the curve it came from."""

    threshold: float
    iou: float
    iou_at_half: float
    pixels: int  # labelled pixels it was chosen on
    curve: list[list[float]] = field(default_factory=list)  # [threshold, IoU] per GRID value

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict | None) -> FreeThreshold | None:
        if not d or "threshold" not in d:
            return None
        return cls(float(d["threshold"]), float(d.get("iou", 0.0)),
                   float(d.get("iou_at_half", 0.0)), int(d.get("pixels", 0)),
                   [list(map(float, r)) for r in d.get("curve", [])])


class ScoreCurve:
    """Counts of defect and background pixels per defect-score bin, added up over photos."""

    def __init__(self, defect: np.ndarray | None = None,
                 background: np.ndarray | None = None) -> None:
        self.defect = np.zeros(BINS, np.int64) if defect is None else np.array(defect, np.int64)
        self.background = (np.zeros(BINS, np.int64) if background is None
                           else np.array(background, np.int64))

    def counts(self) -> np.ndarray:
        """(2, BINS): defect then background pixels per bin (DDP ranks sum these)."""
        return np.stack([self.defect, self.background])

    def add(self, score: np.ndarray, truth: np.ndarray) -> None:
        """``score``: defect score (1 - p(background)) in [0, 1]; ``truth``: class ids, same
        shape (:data:`~ml.common.classes.IGNORE` left out)."""
        score, truth = np.asarray(score, np.float32).ravel(), np.asarray(truth).ravel()
        keep = truth != IGNORE
        b = np.clip((score[keep] * BINS).astype(np.int64), 0, BINS - 1)
        t = truth[keep] > 0
        self.defect += np.bincount(b[t], minlength=BINS)
        self.background += np.bincount(b[~t], minlength=BINS)

    def iou(self, t: float) -> float:
        """Binary IoU of ``score > t`` against the truth (bin resolution: 1 / BINS)."""
        k = int(round(t * BINS))
        tp, fp = int(self.defect[k:].sum()), int(self.background[k:].sum())
        union = int(self.defect.sum()) + fp
        return tp / union if union else 0.0

    def choice(self) -> FreeThreshold | None:
        """The best threshold of :data:`GRID` (the lower one on a tie); None without a single
        defect pixel to choose on."""
        if not self.defect.any():
            return None
        curve = [[t, round(self.iou(t), 4)] for t in GRID]
        best = max(curve, key=lambda r: (r[1], -r[0]))
        return FreeThreshold(best[0], best[1], round(self.iou(0.5), 4),
                             int(self.defect.sum() + self.background.sum()), curve)


def summary_line(card_value: dict | None) -> str | None:
    """One line for people: the threshold training chose and what it gained (None: none)."""
    chosen = FreeThreshold.from_json(card_value)
    if chosen is None:
        return None
    return (f"box-free threshold {chosen.threshold:.2f}: validation IoU {chosen.iou:.3f} "
            f"(at 0.50: {chosen.iou_at_half:.3f})")
