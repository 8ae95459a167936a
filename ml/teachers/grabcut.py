"""The offline teacher: OpenCV GrabCut seeded by each box, run on a crop around it."""

from __future__ import annotations

import cv2
import numpy as np

from ml.teachers._base import LOW, Region, Teacher, box_region


class GrabCutTeacher(Teacher):
    """GrabCut per box (``GC_INIT_WITH_RECT``) on a crop with ``margin`` around the box.

    Crops whose long side exceeds ``max_side`` are shrunk for speed and the mask is scaled
    back. Boxes with a side under ``min_side`` pixels, and boxes where GrabCut fails or finds
    nothing, fall back to filling the box (counted in ``fallbacks`` for the last image).

    Confidence: inside its rectangle GrabCut only ever says "probably" (GC_PR_FGD or
    GC_PR_BGD), so it is lowest on the edge between the two and rises away from it; a
    fallback box fill is low throughout.
    """

    name = "grabcut"

    def __init__(self, *, iterations: int = 5, margin: float = 0.25, min_margin: int = 8,
                 min_side: int = 8, max_side: int = 384, seed: int = 0, **common) -> None:
        super().__init__(**common)
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        if max_side < 16:
            raise ValueError(f"max_side must be >= 16 pixels, got {max_side}")
        self.iterations = int(iterations)
        self.margin = float(margin)
        self.min_margin = int(min_margin)
        self.min_side = int(min_side)
        self.max_side = int(max_side)
        self.seed = int(seed)
        self.fallbacks = 0

    def _options(self) -> dict:
        return {"iterations": self.iterations, "margin": self.margin,
                "min_margin": self.min_margin, "min_side": self.min_side,
                "max_side": self.max_side, "seed": self.seed}

    def _box_masks(self, boxes: np.ndarray,
                   padded: list[Region]) -> list[tuple]:
        assert self._image is not None
        self.fallbacks = 0
        return [self._one(b) for b in boxes]

    def _one(self, box: np.ndarray) -> tuple:
        img = self._image
        assert img is not None
        h, w = img.shape[:2]
        bx = box_region(box, 0, w, h)
        bw, bh = bx[2] - bx[0], bx[3] - bx[1]
        if min(bw, bh) < self.min_side:
            return self._fallback(bx)
        m = max(self.min_margin, int(round(self.margin * max(bw, bh))))
        crop_r = (max(0, bx[0] - m), max(0, bx[1] - m), min(w, bx[2] + m), min(h, bx[3] + m))
        crop = img[crop_r[1]:crop_r[3], crop_r[0]:crop_r[2]]
        ch, cw = crop.shape[:2]
        scale = min(1.0, self.max_side / max(ch, cw))
        if scale < 1.0:
            small = cv2.resize(crop, (max(1, round(cw * scale)), max(1, round(ch * scale))),
                               interpolation=cv2.INTER_AREA)
        else:
            small = np.ascontiguousarray(crop)
        sh, sw = small.shape[:2]
        rx0 = min(sw - 1, int((bx[0] - crop_r[0]) * scale))
        ry0 = min(sh - 1, int((bx[1] - crop_r[1]) * scale))
        rx1 = max(rx0 + 1, min(sw, int(np.ceil((bx[2] - crop_r[0]) * scale))))
        ry1 = max(ry0 + 1, min(sh, int(np.ceil((bx[3] - crop_r[1]) * scale))))
        if rx0 == 0 and ry0 == 0 and rx1 == sw and ry1 == sh:
            return self._fallback(bx)  # the box is the whole crop: no background to learn
        gc = np.zeros((sh, sw), dtype=np.uint8)
        bgd = np.zeros((1, 65), dtype=np.float64)
        fgd = np.zeros((1, 65), dtype=np.float64)
        cv2.setRNGSeed(self.seed)  # GrabCut's k-means start is random: make runs repeatable
        try:
            cv2.grabCut(small, gc, (rx0, ry0, rx1 - rx0, ry1 - ry0), bgd, fgd,
                        self.iterations, cv2.GC_INIT_WITH_RECT)
        except cv2.error:
            return self._fallback(bx)  # e.g. too few pixels of one side to fit a colour model
        fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
        if not fg.any():
            return self._fallback(bx)
        if scale < 1.0:
            fg = cv2.resize(fg * 255, (cw, ch), interpolation=cv2.INTER_LINEAR) >= 128
        return crop_r, fg.astype(bool)

    def _fallback(self, bx: Region) -> tuple[Region, np.ndarray, np.ndarray]:
        self.fallbacks += 1
        shape = (bx[3] - bx[1], bx[2] - bx[0])
        return bx, np.ones(shape, dtype=bool), np.full(shape, LOW, np.uint8)
