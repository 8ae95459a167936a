"""What changed between two models' masks of a photo: a change map and per-class pixel counts.

After a new model predicts, the store keeps the model before's masks as the ``previous`` kind
(:meth:`ml.project.store.Project.keep_previous`); this module compares them with the new ``student``
masks. The change map uses the codes of :mod:`ml.evaluation.corrections` (the new model in the
student's place, the previous one in the pseudo-mask's), so the GUI shows it with the same layer and
colours, under the names in :data:`NAMES`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ml.common.classes import IGNORE
from ml.common.images import ImageError
from ml.evaluation.corrections import RECLASSIFIED, RECOVERED, REJECTED, corrections

GAINED, LOST, CHANGED = RECOVERED, REJECTED, RECLASSIFIED
NAMES = {GAINED: "gained", LOST: "lost", CHANGED: "class changed"}


@dataclass(frozen=True)
class ModelDiff:
    """The change from ``previous`` to ``current``; counts are pixels per defect class id.

    ``gained[c]``: pixels the current model gives class ``c`` that the previous did not;
    ``lost[c]``: pixels the previous model gave ``c`` that the current does not. A pixel whose
    class changed counts as lost for the old class and gained for the new one.
    """

    changes: np.ndarray | None  # uint8 codes (GAINED, LOST, CHANGED; 0 same); None for totals
    gained: dict[int, int] = field(default_factory=dict)
    lost: dict[int, int] = field(default_factory=dict)
    photos: int = 1  # photos compared
    photos_changed: int = 0  # of which at least one pixel differs

    def summary(self, class_names: list[str]) -> str:
        """``dirt: 120 px gained, 30 lost; damage: 0 px gained, 12 lost`` (classes that
        changed)."""
        parts = []
        for c in sorted(set(self.gained) | set(self.lost)):
            g, lo = self.gained.get(c, 0), self.lost.get(c, 0)
            if g or lo:
                name = class_names[c] if 0 <= c < len(class_names) else f"class {c}"
                parts.append(f"{name}: {g:,} px gained, {lo:,} lost")
        return "; ".join(parts) if parts else "no change"


def _defect(mask: np.ndarray) -> np.ndarray:
    return (mask > 0) & (mask != IGNORE)


def model_diff(previous: np.ndarray, current: np.ndarray) -> ModelDiff:
    """Change map and per-class gained/lost pixels from ``previous`` to ``current`` labels.

    Pixels marked :data:`ml.common.classes.IGNORE` in either mask count nowhere.
    """
    if previous.shape != current.shape:
        raise ValueError(f"the previous mask {previous.shape} and the current mask "
                         f"{current.shape} differ in size; the photo changed between the runs")
    keep = (previous != IGNORE) & (current != IGNORE)
    prev = np.where(keep, previous, 0).astype(np.uint8)
    cur = np.where(keep, current, 0).astype(np.uint8)
    changes = corrections(cur, prev)  # current in the student's place: recovered = gained
    differ = prev != cur
    gained = _counts(cur[differ & _defect(cur)])
    lost = _counts(prev[differ & _defect(prev)])
    return ModelDiff(changes, gained, lost, 1, int(bool(differ.any())))


def _counts(values: np.ndarray) -> dict[int, int]:
    ids, n = np.unique(values, return_counts=True)
    return {int(i): int(k) for i, k in zip(ids, n, strict=True)}


def total(diffs: Iterable[ModelDiff]) -> ModelDiff:
    """The sum of several photos' diffs (no change map)."""
    gained: dict[int, int] = {}
    lost: dict[int, int] = {}
    photos = changed = 0
    for d in diffs:
        for src, dst in ((d.gained, gained), (d.lost, lost)):
            for c, n in src.items():
                dst[c] = dst.get(c, 0) + n
        photos += d.photos
        changed += d.photos_changed
    return ModelDiff(None, gained, lost, photos, changed)


def photo_diff(project, key: str) -> ModelDiff | None:
    """``key``'s change from its previous model's mask to its student mask; None without both
    (or when their sizes differ, or a mask file cannot be read)."""
    try:
        previous = project.load_mask(key, "previous")
        current = project.load_mask(key, "student")
    except (ImageError, OSError):
        return None
    if previous is None or current is None or previous.shape != current.shape:
        return None
    return model_diff(previous, current)


def project_diff(project, keys: Iterable[str] | None = None) -> ModelDiff:
    """The change over ``keys`` (default: every photo) that has both masks."""
    keys = project.keys() if keys is None else keys
    return total(d for d in (photo_diff(project, k) for k in keys) if d is not None)
