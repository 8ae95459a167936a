"""What every teacher shares: input checks, box clipping, hole filling and overlap priority.

A teacher turns the boxes of one image into a class-id label map. Subclasses only say how one
box becomes a binary mask (:meth:`Teacher._box_masks`); this module clips each mask to its
padded box, fills its small holes and paints the masks into one map.

Overlap rule: where masks of different classes overlap, the class listed first in
``priority`` wins; classes not listed lose to listed ones and among themselves the higher
class id wins. With no ``priority`` the higher class id always wins (damage over dirt).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

# A region of the image in pixels: x0, y0, x1, y1 with x1 / y1 exclusive.
Region = tuple[int, int, int, int]

EMPTY_COVER = 0.02  # a box whose mask covers less than this share of it counts as left empty
HIGH, LOW = 255, 64  # confidence of a sure pixel, and of a guess (a box fill, an edge band)


@dataclass(frozen=True)
class TeacherOutput:
    """A teacher's answer for one image: labels, per-pixel confidence and box coverage.

    ``confidence`` is uint8 (H, W): 255 where the teacher is sure (everywhere outside the
    boxes), lower where it guessed. ``coverage`` is each input box's share covered by its own
    mask (0 for a box with no pixel). ``empty`` counts boxes under :data:`EMPTY_COVER` per
    teacher (an ``auto`` teacher also counts its candidates').
    """

    label: np.ndarray
    confidence: np.ndarray
    coverage: tuple[float, ...] = ()
    empty: dict[str, int] = field(default_factory=dict)


def band_confidence(mask: np.ndarray, band: float, low: int = LOW,
                    high: int = HIGH) -> np.ndarray:
    """uint8 confidence rising from ``low`` at the mask's edge to ``high`` ``band`` px away."""
    m = mask.astype(np.uint8)
    if m.size == 0:
        return np.zeros(mask.shape, np.uint8)
    if not m.any() or m.all():
        return np.full(mask.shape, high, np.uint8)
    # distance to the other side, inside and outside the mask (zeros are the targets)
    d = np.where(m > 0, cv2.distanceTransform(m, cv2.DIST_L2, 3),
                 cv2.distanceTransform(1 - m, cv2.DIST_L2, 3))
    t = np.clip((d - 0.5) / max(band, 1e-6), 0.0, 1.0)
    return (low + (high - low) * t).round().astype(np.uint8)


def check_image(image: np.ndarray) -> np.ndarray:
    """The image as a contiguous uint8 (H, W, 3) array; ValueError on anything else."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or arr.size == 0:
        raise ValueError(f"teacher image must be uint8 (H, W, 3) RGB, got {arr.dtype} "
                         f"{arr.shape}")
    return np.ascontiguousarray(arr)


def check_prompts(boxes: Any, classes: Any) -> tuple[np.ndarray, np.ndarray]:
    """Boxes as (N, 4) float32 xyxy and classes as (N,) int64; ValueError on bad input."""
    b = np.asarray(boxes, dtype=np.float32)
    if b.size == 0:
        b = b.reshape(0, 4)
    c = np.asarray(classes).reshape(-1)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must be (N, 4) xyxy, got shape {b.shape}")
    if c.shape[0] != b.shape[0]:
        raise ValueError(f"{b.shape[0]} boxes but {c.shape[0]} class ids")
    if not np.isfinite(b).all():
        raise ValueError("boxes contain NaN or infinite coordinates")
    if c.size and (not np.issubdtype(c.dtype, np.integer) or c.min() < 1 or c.max() > 255):
        raise ValueError(f"box class ids must be integers in 1..255, got {sorted(set(c))[:5]}")
    return b, c.astype(np.int64)


def box_region(box: np.ndarray, pad: int, width: int, height: int) -> Region:
    """Pixels touched by ``box`` grown by ``pad`` on each side, clipped to the image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    return (max(0, math.floor(x0) - pad), max(0, math.floor(y0) - pad),
            min(width, math.ceil(x1) + pad), min(height, math.ceil(y1) + pad))


def context_window(box: np.ndarray, pad: int, width: int, height: int) -> Region:
    """The box and a ring round it (a quarter of its long side, at least ``pad`` and 8 px).

    Where candidates of one box are weighed against its surroundings, clipped to the image.
    """
    bx = box_region(box, 0, width, height)
    ring = max(pad, 8, round(0.25 * max(bx[2] - bx[0], bx[3] - bx[1])))
    return (max(0, bx[0] - ring), max(0, bx[1] - ring), min(width, bx[2] + ring),
            min(height, bx[3] + ring))


def region_empty(r: Region) -> bool:
    return r[2] <= r[0] or r[3] <= r[1]


def fill_small_holes(mask: np.ndarray, max_area: float) -> np.ndarray:
    """Fill background pockets of ``mask`` that do not touch its border and are <= max_area."""
    if max_area <= 0 or not mask.any():
        return mask
    inv = (~mask).astype(np.uint8)
    # 4-connected background pairs with the 8-connected foreground used elsewhere.
    n, comp, stats, _ = cv2.connectedComponentsWithStats(inv, connectivity=4)
    if n <= 1:
        return mask
    border = np.unique(np.concatenate([comp[0], comp[-1], comp[:, 0], comp[:, -1]]))
    fill = stats[:, cv2.CC_STAT_AREA] <= max_area
    fill[0] = False  # label 0 is the foreground itself
    fill[border] = False
    if not fill.any():
        return mask
    return mask | fill[comp]


def paint_order(classes: np.ndarray, priority: tuple[int, ...] | None) -> np.ndarray:
    """Indices of the boxes in painting order: the winning class is painted last."""
    if priority is None:
        scores = [(0, int(c)) for c in classes]
    else:
        pos = {int(c): i for i, c in enumerate(priority)}
        scores = [(1, -pos[int(c)]) if int(c) in pos else (0, int(c)) for c in classes]
    return np.array(sorted(range(len(scores)), key=lambda i: scores[i]), dtype=np.int64)


class Teacher:
    """Base of the box-to-mask teachers, shaped like ``SamPredictor``: set_image, predict."""

    name = "teacher"

    def __init__(self, *, pad: int = 4, clip_to_box: bool = True, fill_holes: bool = True,
                 max_hole_frac: float = 0.05, priority: tuple[int, ...] | None = None) -> None:
        if pad < 0:
            raise ValueError(f"pad must be >= 0 pixels, got {pad}")
        if not 0 <= max_hole_frac <= 1:
            raise ValueError(f"max_hole_frac must be in [0, 1], got {max_hole_frac}")
        self.pad = int(pad)
        self.clip_to_box = bool(clip_to_box)
        self.fill_holes = bool(fill_holes)
        self.max_hole_frac = float(max_hole_frac)
        self.priority = tuple(int(c) for c in priority) if priority is not None else None
        self._image: np.ndarray | None = None
        self._classes: np.ndarray = np.zeros(0, np.int64)

    # ----------------------------------------------------------------- public API
    def set_image(self, image: np.ndarray) -> None:
        """Take the image the next :meth:`predict` calls work on (SAM embeds it here)."""
        img = check_image(image)
        self._image = None
        self._prepare(img)
        self._image = img

    def predict(self, boxes_xyxy: Any, classes: Any) -> np.ndarray:
        """uint8 (H, W) class-id map of the current image from (N, 4) boxes and (N,) ids."""
        return self.predict_with_confidence(boxes_xyxy, classes).label

    def predict_with_confidence(self, boxes_xyxy: Any, classes: Any) -> TeacherOutput:
        """Labels, per-pixel confidence and per-box coverage of the current image."""
        if self._image is None:
            raise RuntimeError(f"{self.name} teacher: call set_image(image) before "
                               f"predict(boxes, classes)")
        boxes, cls = check_prompts(boxes_xyxy, classes)
        h, w = self._image.shape[:2]
        label = np.zeros((h, w), dtype=np.uint8)
        conf = np.full((h, w), HIGH, dtype=np.uint8)
        coverage = [0.0] * len(boxes)
        padded = [box_region(b, self.pad, w, h) for b in boxes]
        keep = [i for i, r in enumerate(padded) if not region_empty(box_region(boxes[i], 0, w, h))
                and not region_empty(r)]
        if keep:
            sub = boxes[keep]
            self._classes = cls[keep]  # the boxes' class ids, for teachers that weigh them
            items = self._box_masks(sub, [padded[i] for i in keep])
            for j in paint_order(cls[keep], self.priority):
                i = keep[j]
                region, mask, c = self._finish_item(items[j], padded[i], sub[j])
                x0, y0, x1, y1 = region
                if mask.any():
                    label[y0:y1, x0:x1][mask] = cls[i]
                if c is not None and c.size:
                    np.minimum(conf[y0:y1, x0:x1], c, out=conf[y0:y1, x0:x1])
                coverage[i] = box_coverage(region, mask, box_region(sub[j], 0, w, h))
        empty = {self.name: sum(c < EMPTY_COVER for c in coverage), **self._extra_empty()}
        return TeacherOutput(label, conf, tuple(coverage), empty)

    def settings(self) -> dict[str, Any]:
        """Name and options, stored with every mask this teacher makes."""
        return {"name": self.name, "pad": self.pad, "clip_to_box": self.clip_to_box,
                "fill_holes": self.fill_holes, "max_hole_frac": self.max_hole_frac,
                "priority": list(self.priority) if self.priority is not None else None,
                **self._options()}

    # ----------------------------------------------------------------- for subclasses
    def _prepare(self, image: np.ndarray) -> None:
        """Per-image work done once (e.g. an embedding); nothing by default."""

    def _options(self) -> dict[str, Any]:
        return {}

    def _box_masks(self, boxes: np.ndarray,
                   padded: list[Region]) -> list[tuple[Region, np.ndarray]]:
        """Per box: a region of the image and a bool mask of that region's shape.

        A third element, a uint8 confidence map of the same shape, may follow; without it the
        confidence is derived from the finished mask (:meth:`_confidence`).
        """
        raise NotImplementedError

    def _extra_empty(self) -> dict[str, int]:
        """Empty-box counts of other teachers consulted for the last image (auto: candidates)."""
        return {}

    def _confidence(self, box: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Confidence of a box's finished mask when the teacher gives none: low at its edge."""
        side = min(float(box[2] - box[0]), float(box[3] - box[1]))
        return band_confidence(mask, max(1.0, 0.05 * side))

    # ----------------------------------------------------------------- helpers
    def _finish_item(self, item: tuple, padded: Region,
                     box: np.ndarray) -> tuple[Region, np.ndarray, np.ndarray | None]:
        """A finished box mask and its confidence (the teacher's, clipped alike, or derived)."""
        region, mask = self._finish(item[:2], padded, box)
        if len(item) > 2 and item[2] is not None:
            _, c = _intersect(item[0], item[2], region)
            return region, mask, c
        return region, mask, self._confidence(box, mask)

    def _finish(self, item: tuple[Region, np.ndarray], padded: Region,
                box: np.ndarray) -> tuple[Region, np.ndarray]:
        """Clip a box mask to its padded box and fill its small holes."""
        region, mask = item
        mask = mask.astype(bool, copy=False)
        if self.clip_to_box:
            region, mask = _intersect(region, mask, padded)
        if self.fill_holes and mask.size:
            bw = max(1.0, float(box[2] - box[0]))
            bh = max(1.0, float(box[3] - box[1]))
            mask = fill_small_holes(mask, self.max_hole_frac * bw * bh)
        return region, mask


def _intersect(region: Region, mask: np.ndarray, clip: Region) -> tuple[Region, np.ndarray]:
    """The part of ``mask`` (placed at ``region``) inside ``clip``."""
    x0, y0 = max(region[0], clip[0]), max(region[1], clip[1])
    x1, y1 = min(region[2], clip[2]), min(region[3], clip[3])
    if x1 <= x0 or y1 <= y0:
        return (x0, y0, x0, y0), np.zeros((0, 0), dtype=bool)
    sub = mask[y0 - region[1]:y1 - region[1], x0 - region[0]:x1 - region[0]]
    return (x0, y0, x1, y1), sub


def box_coverage(region: Region, mask: np.ndarray, box: Region) -> float:
    """Share of ``box``'s pixels that ``mask`` (placed at ``region``) covers."""
    area = (box[2] - box[0]) * (box[3] - box[1])
    if area <= 0 or mask.size == 0:
        return 0.0
    _, inside = _intersect(region, mask, box)
    return float(inside.sum()) / area
