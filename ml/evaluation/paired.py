"""How sure a difference between two models is, when both were scored on the same photos.

A pooled binary IoU is sum(intersection) / sum(union) over the test photos. Two models scored on
the same photos give, per photo, (intersection, union) of each; :func:`paired_difference`
resamples the photos with replacement (the same draw for both models, so a photo that is hard
for both stays hard for both) and reports the difference of the pooled IoUs with a percentile
interval. It measures how much the difference owes to which photos happened to be the test
photos, not how much it would move with another training seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95

PerPhoto = Mapping[str, Sequence[int]]  # photo key -> (intersection, union) pixels


@dataclass(frozen=True)
class Difference:
    """``after`` minus ``before`` (pooled IoU) and its bootstrap interval over the photos."""

    diff: float
    low: float
    high: float
    photos: int

    @property
    def clear(self) -> bool:
        """The interval leaves out zero: the test photos alone do not explain the difference."""
        return self.low > 0 or self.high < 0

    def text(self) -> str:
        """'+1.8 (-0.9 to +4.6)' in IoU points."""
        return f"{100 * self.diff:+.1f} ({100 * self.low:+.1f} to {100 * self.high:+.1f})"

    def sentence(self, label: str) -> str:
        """The one line the demo and the benches print: '<label>: +1.8 (-0.9 to +4.6) binary IoU
        points (95 % bootstrap interval over N photos, which holds 0)'."""
        holds = "" if self.clear else ", which holds 0"
        return (f"{label}: {self.text()} binary IoU points (95 % bootstrap interval over "
                f"{self.photos} photos{holds})")


def pooled_iou(per_photo: PerPhoto) -> float:
    inter = sum(int(v[0]) for v in per_photo.values())
    union = sum(int(v[1]) for v in per_photo.values())
    return inter / union if union else 1.0


def paired_difference(before: PerPhoto, after: PerPhoto, resamples: int = RESAMPLES,
                      level: float = LEVEL, seed: int = 0) -> Difference:
    """Pooled IoU of ``after`` minus ``before`` on the photos both scored, with a paired
    percentile bootstrap interval at ``level``."""
    keys = sorted(set(before) & set(after))
    if not keys:
        raise ValueError("the two models share no scored photo")
    a = np.array([before[k] for k in keys], np.float64).reshape(-1, 2)
    b = np.array([after[k] for k in keys], np.float64).reshape(-1, 2)

    def iou(iu: np.ndarray) -> np.ndarray:  # (..., photos, 2) -> pooled IoU over the photos
        inter, union = iu[..., 0].sum(-1), iu[..., 1].sum(-1)
        return np.where(union > 0, inter / np.maximum(union, 1), 1.0)

    diff = float(iou(b) - iou(a))
    draw = np.random.default_rng(seed).integers(0, len(keys), size=(resamples, len(keys)))
    boots = iou(b[draw]) - iou(a[draw])
    tail = (1 - level) / 2
    low, high = np.quantile(boots, [tail, 1 - tail])
    return Difference(diff, float(low), float(high), len(keys))
