"""How thin a project's defects are, and the finest photo scale a run must keep to see them.

A defect's width is read per box: where the photo has a mask of the run's source (the
teacher's pseudo-mask, or a reviewed mask), twice the largest distance from a mask pixel
inside the box to the mask's edge (:func:`mask_width`: the thickest point of the stroke; a
1 or 2 px line counts 2); a box that mask leaves empty counts its short side, the widest its
defect can be. A *typical thin* defect is the :data:`THIN_QUANTILE` of these widths (a quarter
of the boxes hold one this thin or thinner), and :func:`scale_floor` is the least photo scale
(input pixels per photo pixel) at which it still spans :data:`MIN_THIN_PX` pixels.

On the 150 ILIAD drone photos the ``auto`` teacher's masks put a quarter of the 669 boxes at
4.4 px or thinner: at 224 px for a 640 px photo (0.35 input px per photo px) such a streak is
1.5 px wide, so the floor is 0.46 and the planner's least setting is 336 px. That floor keeps
the defect on the input; it did not by itself make a 2-epoch student trace the streaks
(README, "On real drone photos").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

MIN_THIN_PX = 2.0  # a typical thin defect keeps at least this width at the student's input
THIN_QUANTILE = 0.25  # "typical thin": this share of the boxes hold a defect as thin or thinner


def mask_width(mask: np.ndarray) -> float:
    """Width (pixels) of the thickest part of a bool mask: twice its largest distance to the
    mask's edge (0 for an empty mask). The mask's outer frame counts as edge."""
    import cv2

    if not mask.any():
        return 0.0
    padded = np.pad(mask.astype(np.uint8), 1)
    return 2.0 * float(cv2.distanceTransform(padded, cv2.DIST_L2, 5).max())


def box_width(box: tuple[float, float, float, float], mask: np.ndarray | None) -> float:
    """One box's defect width (photo pixels): :func:`mask_width` of ``mask`` (a bool photo
    mask, or None) inside the box, capped at and, where empty, equal to the box's short side."""
    x0, y0, x1, y1 = box
    short = max(min(x1 - x0, y1 - y0), 1.0)
    if mask is None:
        return short
    h, w = mask.shape
    c0, r0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
    c1, r1 = min(int(np.ceil(x1)), w), min(int(np.ceil(y1)), h)
    width = mask_width(mask[r0:r1, c0:c1]) if r1 > r0 and c1 > c0 else 0.0
    return min(width, short) if width > 0 else short


@dataclass(frozen=True)
class Widths:
    """What the planner needs to know of a project's defect widths."""

    thin_px: float  # a typical thin defect's width in photo pixels (0: no boxes to measure)
    boxes: int  # boxes measured
    from_masks: int  # of them, measured on a mask (the rest: their short side)

    @property
    def scale_floor(self) -> float:
        """Least photo scale keeping a typical thin defect :data:`MIN_THIN_PX` wide (at most
        1, native resolution; 0 when nothing was measured)."""
        return scale_floor(self.thin_px)

    def describe(self) -> str:
        """``a quarter of the 669 boxes hold defects 4 px wide or thinner (teacher masks)``."""
        if not self.boxes:
            return "no boxes to measure the defects' widths by"
        where = ("their masks" if self.from_masks == self.boxes else
                 "their boxes' short sides" if not self.from_masks else
                 f"masks in {self.from_masks}, short sides in the rest")
        return (f"a quarter of the {self.boxes} boxes hold defects {self.thin_px:.0f} px wide or "
                f"thinner ({where})")


def scale_floor(thin_px: float) -> float:
    """Least photo scale at which a ``thin_px`` wide defect spans :data:`MIN_THIN_PX` input
    pixels: at most 1 (a defect thinner than that is kept at native resolution); 0 for 0."""
    return min(1.0, MIN_THIN_PX / thin_px) if thin_px > 0 else 0.0


def summarise(widths: Iterable[float], from_masks: int = 0) -> Widths:
    """:class:`Widths` of per-box widths: their :data:`THIN_QUANTILE`."""
    w = np.asarray(list(widths), float)
    if not w.size:
        return Widths(0.0, 0, 0)
    return Widths(float(np.quantile(w, THIN_QUANTILE)), int(w.size), int(from_masks))


def project_widths(project, keys: Iterable[str], source: str = "teacher") -> Widths:
    """:class:`Widths` of the boxes of ``keys``, on their ``source`` masks where stored."""
    widths, from_masks = [], 0
    for key in keys:
        boxes = project.record(key).boxes
        if not boxes:
            continue
        label = project.load_mask(key, source)
        mask = label > 0 if label is not None else None
        for b in boxes:
            widths.append(box_width((b.x0, b.y0, b.x1, b.y1), mask))
        from_masks += len(boxes) if mask is not None else 0
    return summarise(widths, from_masks)


def _spread(keys: Iterable[str], limit: int) -> list[str]:
    keys = list(keys)
    if len(keys) > limit:
        keys = [keys[round(i * (len(keys) - 1) / (limit - 1))] for i in range(limit)]
    return keys


def region_classes(project, keys: Iterable[str], limit: int = 64) -> list[int]:
    """Class ids the ``auto`` teacher's survey called regions (blobs) on every photo of
    ``keys`` that records one (up to ``limit`` photos); empty for other teachers."""
    from ml.teachers.auto import REGION

    seen: dict[int, set[str]] = {}
    for key in _spread(keys, limit):
        rec = project.record(key)
        kinds = (rec.teacher.settings or {}).get("kinds") if rec.teacher is not None else None
        for c, k in (kinds or {}).items():
            seen.setdefault(int(c), set()).add(k)
    return sorted(c for c, k in seen.items() if k == {REGION})


def thin_class_widths(project, keys: Iterable[str], limit: int = 64) -> dict[str, float]:
    """Class id (str) -> median width (photo px) of the boxes of each class the ``auto``
    teacher's survey called thin, on their teacher masks; up to ``limit`` photos spread over
    ``keys``. Empty where no teacher mask records a survey (other teachers)."""
    from ml.teachers.auto import THIN

    widths: dict[int, list[float]] = {}
    for key in _spread(keys, limit):
        rec = project.record(key)
        kinds = (rec.teacher.settings or {}).get("kinds") if rec.teacher is not None else None
        thin = {int(c) for c, k in (kinds or {}).items() if k == THIN}
        boxes = [b for b in rec.boxes if b.cls in thin]
        if not boxes:
            continue
        label = project.load_mask(key, "teacher")
        if label is None:
            continue
        for b in boxes:
            widths.setdefault(b.cls, []).append(box_width((b.x0, b.y0, b.x1, b.y1),
                                                          label == b.cls))
    return {str(c): round(float(np.median(w)), 2) for c, w in sorted(widths.items())}


def class_shapes(project, keys: Iterable[str]) -> tuple[dict[str, float], list[int]]:
    """(:func:`thin_class_widths`, :func:`region_classes`) of ``keys``: what a model's card
    tells its predictor about the shapes of the project's classes."""
    keys = list(keys)
    return thin_class_widths(project, keys), region_classes(project, keys)
