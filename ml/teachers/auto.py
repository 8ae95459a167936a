"""The ``auto`` teacher: per box, the candidate mask that the box and the photo support best.

Candidates: ridge (thin lines), GrabCut, SAM (only when its checkpoint is already on this
machine; never downloaded) and a shrunken box fill (the box's inscribed ellipse, a guess).
A candidate leaving a box under 2 % covered is out. The others are scored by two things a
correct mask has, whatever the dataset:

* tightness: a tight box touches its defect on every row and column (the box tightness
  prior), so the share of the box's rows and columns the mask reaches;
* separation: the mask's colours (Lab) differ from the rest of the box and a ring around it,
  as a Fisher ratio (distance of the means over the pooled spread).

The best score wins. Confidence is the winner's own, lowered where the other real candidates
disagree with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ml.teachers._base import EMPTY_COVER, LOW, Region, Teacher, box_coverage, box_region
from ml.teachers.grabcut import GrabCutTeacher
from ml.teachers.ridge import RidgeTeacher

BOX = "box"


@dataclass(frozen=True)
class BoxChoice:
    """What :class:`AutoTeacher` weighed for one box (kept with ``record=True``).

    ``window``: the (x0, y0, x1, y1) photo region the candidates' masks cover; ``box``: the box
    itself in photo pixels; ``masks``: each candidate that covered the box, as a bool mask of
    ``window``; ``scores``: their tightness x separation; ``choice``: the winner.
    """

    window: Region
    box: Region
    masks: dict[str, np.ndarray]
    scores: dict[str, float]
    choice: str


def sam_available(model_type: str = "vit_b") -> bool:
    """True when the SAM checkpoint of ``model_type`` is cached and verified (no download)."""
    from ml import weights

    return weights.find(f"sam_{model_type}") is not None


def ellipse_fill(shape: tuple[int, int]) -> np.ndarray:
    """The ellipse inscribed in a (h, w) box: a box fill without the corners defects rarely fill."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    ry, rx = max(h / 2, 0.5), max(w / 2, 0.5)
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def tightness(mask: np.ndarray) -> float:
    """Share of a box mask's rows and columns holding at least one mask pixel."""
    if mask.size == 0:
        return 0.0
    return float(mask.any(axis=1).sum() + mask.any(axis=0).sum()) / sum(mask.shape)


def features(crop: np.ndarray) -> np.ndarray:
    """(h, w, 3) float Lab colours of an RGB crop, each channel over its spread (floored at 1).

    Colour only: structure (the ridge response) would favour the ridge candidate, whose mask
    is by construction where that response is highest.
    """
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32)
    std = lab.reshape(-1, 3).std(axis=0)
    return lab / np.maximum(std, 1.0)


def separation(feats: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> float:
    """Fisher ratio of the features of ``inside`` vs ``outside`` pixels (0 if one is empty)."""
    a, b = feats[inside], feats[outside]
    if len(a) == 0 or len(b) == 0:
        return 0.0
    spread = (a.var(axis=0).sum() + b.var(axis=0).sum()) / 2
    return float(np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)) / np.sqrt(spread + 1.0))


class AutoTeacher(Teacher):
    """Chooses, per box, between ridge, GrabCut, SAM (if cached) and a shrunken box fill.

    ``sam``: None uses SAM when its checkpoint is cached, False never, True requires it.
    ``choices`` lists the winner per box of the last image; with ``record`` ``weighed`` holds
    each box's :class:`BoxChoice` too (``bench/auto_choice.py`` scores them).
    """

    name = "auto"

    def __init__(self, *, sam: bool | None = None, model_type: str = "vit_b",
                 device: str = "auto", record: bool = False, **common: Any) -> None:
        super().__init__(**common)
        self.candidates: dict[str, Teacher] = {"ridge": RidgeTeacher(**common),
                                               "grabcut": GrabCutTeacher(**common)}
        self.use_sam = sam_available(model_type) if sam is None else bool(sam)
        if self.use_sam:
            from ml.teachers.sam import SamTeacher  # imports torch: only with a checkpoint at hand

            self.candidates["sam"] = SamTeacher(model_type=model_type, device=device, **common)
        self.choices: list[str] = []
        self.record = record
        self.weighed: list[BoxChoice] = []
        self._empty: dict[str, int] = {}

    def _options(self) -> dict:
        return {"candidates": [*self.candidates, BOX], "sam": self.use_sam}

    def _prepare(self, image: np.ndarray) -> None:
        for t in self.candidates.values():
            t.set_image(image)

    def _extra_empty(self) -> dict[str, int]:
        return dict(self._empty)

    def _box_masks(self, boxes: np.ndarray, padded: list[Region]) -> list[tuple]:
        img = self._image
        assert img is not None
        h, w = img.shape[:2]
        per: dict[str, list[tuple[Region, np.ndarray, np.ndarray | None]]] = {}
        self._empty = {}
        for name, t in self.candidates.items():
            items = t._box_masks(boxes, padded)
            per[name] = [t._finish_item(it, padded[i], boxes[i]) for i, it in enumerate(items)]
            self._empty[name] = sum(
                box_coverage(r, m, box_region(boxes[i], 0, w, h)) < EMPTY_COVER
                for i, (r, m, _) in enumerate(per[name]))
        self.choices, self.weighed = [], []
        out = []
        for i, box in enumerate(boxes):
            cands = {n: per[n][i] for n in per}
            out.append(self._choose(box, padded[i], cands))
        return out

    def _choose(self, box: np.ndarray, padded: Region,
                cands: dict[str, tuple[Region, np.ndarray, np.ndarray | None]]) -> tuple:
        """The winning candidate of one box, placed on its padded region, with confidence."""
        img = self._image
        assert img is not None
        h, w = img.shape[:2]
        bx = box_region(box, 0, w, h)
        bw, bh = bx[2] - bx[0], bx[3] - bx[1]
        ring = max(self.pad, 8, round(0.25 * max(bw, bh)))
        ctx = (max(0, bx[0] - ring), max(0, bx[1] - ring), min(w, bx[2] + ring),
               min(h, bx[3] + ring))
        feats = features(img[ctx[1]:ctx[3], ctx[0]:ctx[2]])
        cshape = (ctx[3] - ctx[1], ctx[2] - ctx[0])
        in_box = (slice(bx[1] - ctx[1], bx[3] - ctx[1]), slice(bx[0] - ctx[0], bx[2] - ctx[0]))
        placed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, (r, m, c) in cands.items():
            mask, conf = _place(r, m, c, ctx, cshape)
            if mask[in_box].mean() >= EMPTY_COVER:
                placed[name] = (mask, conf)
        fill = np.zeros(cshape, bool)
        fill[in_box] = ellipse_fill((bh, bw))
        placed[BOX] = (fill, np.where(fill, LOW, 255).astype(np.uint8))
        scores = {n: tightness(m[in_box]) * separation(feats, m, ~m)
                  for n, (m, _) in placed.items()}
        # ties (nothing to see: a flat box) go to the humble guess, the box fill
        best = max([BOX, *(n for n in scores if n != BOX)], key=lambda n: scores[n])
        self.choices.append(best)
        if self.record:
            self.weighed.append(BoxChoice(ctx, bx, {n: m for n, (m, _) in placed.items()},
                                          scores, best))
        mask, conf = placed[best]
        others = [m for n, (m, _) in placed.items() if n not in (best, BOX)]
        if others and best != BOX:
            agree = np.mean([m == mask for m in others], axis=0)
            conf = (conf * (0.5 + 0.5 * agree)).round().astype(np.uint8)
        py = slice(padded[1] - ctx[1], padded[3] - ctx[1])
        px = slice(padded[0] - ctx[0], padded[2] - ctx[0])
        return padded, mask[py, px], conf[py, px]


def _place(region: Region, mask: np.ndarray, conf: np.ndarray | None, ctx: Region,
           shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A candidate's mask and confidence on the context window (outside it: dropped)."""
    out_m = np.zeros(shape, bool)
    out_c = np.full(shape, 255, np.uint8)
    x0, y0 = max(region[0], ctx[0]), max(region[1], ctx[1])
    x1, y1 = min(region[2], ctx[2]), min(region[3], ctx[3])
    if x1 <= x0 or y1 <= y0 or mask.size == 0:
        return out_m, out_c
    src = (slice(y0 - region[1], y1 - region[1]), slice(x0 - region[0], x1 - region[0]))
    dst = (slice(y0 - ctx[1], y1 - ctx[1]), slice(x0 - ctx[0], x1 - ctx[0]))
    out_m[dst] = mask[src]
    if conf is not None and conf.shape == mask.shape:
        out_c[dst] = conf[src]
    return out_m, out_c
