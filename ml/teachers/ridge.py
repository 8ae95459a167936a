"""The thin-defect teacher: a multi-scale Hessian ridge response thresholded per box.

Cracks and scratches are lines a few pixels wide: across a line the image curves strongly,
along it hardly at all. The Hessian's eigenvalues measure both; a dark line has a large
positive one and a small other one, a bright line a large negative one. A blob curves both
ways alike and is damped. Each box decides its own polarity (dark or bright lines) from its
own response, and its own threshold, so nothing is set per dataset: a thin defect is a small
minority of its box, so the box's median response describes its texture and a defect pixel is
an outlier of it (above median + 3 robust sigmas) on the high side of Otsu's split.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ml.teachers._base import EMPTY_COVER, HIGH, LOW, Region, Teacher, box_region

TOP_SHARE = 0.05  # polarity: compare the strongest 5 % of each response inside the box


def ridge_responses(grey: np.ndarray, sigmas: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(dark, bright) line responses of a float grey image, max over scales, >= 0.

    Scale-normalised (sigma^2) Hessian eigenvalues: for dark lines the large positive one less
    the magnitude of the other (which a blob shares), for bright lines the same mirrored.
    """
    dark = np.zeros(grey.shape, np.float32)
    bright = np.zeros(grey.shape, np.float32)
    for s in sigmas:
        g = cv2.GaussianBlur(grey, (0, 0), s, borderType=cv2.BORDER_REFLECT)
        dy, dx = np.gradient(g)
        dxx = np.gradient(dx, axis=1)
        dxy = np.gradient(dx, axis=0)
        dyy = np.gradient(dy, axis=0)
        half_tr = (dxx + dyy) / 2
        root = np.sqrt(((dxx - dyy) / 2) ** 2 + dxy ** 2)
        hi, lo = half_tr + root, half_tr - root
        norm = s * s
        np.maximum(dark, norm * np.maximum(hi - np.abs(lo), 0), out=dark)
        np.maximum(bright, norm * np.maximum(-lo - np.abs(hi), 0), out=bright)
    return dark, bright


def otsu(values: np.ndarray) -> float:
    """Otsu's threshold of non-negative ``values`` (256 bins from 0 to their max)."""
    top = float(values.max()) if values.size else 0.0
    if top <= 0:
        return 0.0
    q = np.clip(values / top * 255, 0, 255).astype(np.uint8).reshape(-1, 1)
    t, _ = cv2.threshold(q, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(t) / 255 * top


def thin_cover(box_w: int, box_h: int) -> float:
    """Least share of a box a thin defect fills: one line along its long side, 2 px wide."""
    area = max(1, box_w * box_h)
    return min(0.5, max(1.5 * EMPTY_COVER, 2.0 * max(box_w, box_h) / area))


class RidgeTeacher(Teacher):
    """Ridge (line) response in each box, polarity and threshold chosen per box.

    The mask is the pixels above the larger of Otsu's threshold and the box's texture bound
    (median + 3 robust sigmas of the response). The threshold is lowered where needed so that
    at least :func:`thin_cover` of the box is covered, and raised so that at most
    ``max_cover`` is. A box with no ridge at all (flat) is filled
    (counted in ``fallbacks``). Confidence grows with the response's distance from the
    threshold.
    """

    name = "ridge"

    def __init__(self, *, sigmas: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0),
                 max_cover: float = 0.5, **common) -> None:
        super().__init__(**common)
        if not sigmas or min(sigmas) <= 0:
            raise ValueError(f"sigmas must be positive pixel scales, got {sigmas}")
        if not 0 < max_cover <= 1:
            raise ValueError(f"max_cover must be in (0, 1], got {max_cover}")
        self.sigmas = tuple(float(s) for s in sigmas)
        self.max_cover = float(max_cover)
        self.fallbacks = 0
        self.polarity: list[str] = []  # per box of the last image: dark | bright | none

    def _options(self) -> dict:
        return {"sigmas": list(self.sigmas), "max_cover": self.max_cover}

    def _box_masks(self, boxes: np.ndarray, padded: list[Region]) -> list[tuple]:
        assert self._image is not None
        self.fallbacks = 0
        self.polarity = []
        return [self.box_response(b, r)[:3] for b, r in zip(boxes, padded, strict=True)]

    def box_response(self, box: np.ndarray, padded: Region
                     ) -> tuple[Region, np.ndarray, np.ndarray, np.ndarray]:
        """(region, mask, confidence, response) of one box over its padded region."""
        img = self._image
        assert img is not None
        h, w = img.shape[:2]
        m = int(math.ceil(3 * max(self.sigmas)))  # filter support around the region
        c = (max(0, padded[0] - m), max(0, padded[1] - m), min(w, padded[2] + m),
             min(h, padded[3] + m))
        grey = cv2.cvtColor(img[c[1]:c[3], c[0]:c[2]], cv2.COLOR_RGB2GRAY)
        dark, bright = ridge_responses(grey.astype(np.float32) / 255.0, self.sigmas)
        ry = slice(padded[1] - c[1], padded[3] - c[1])
        rx = slice(padded[0] - c[0], padded[2] - c[0])
        bx = box_region(box, 0, w, h)
        by = slice(bx[1] - padded[1], bx[3] - padded[1])
        bxs = slice(bx[0] - padded[0], bx[2] - padded[0])
        dark, bright = dark[ry, rx], bright[ry, rx]
        pick_dark = _top_mean(dark[by, bxs]) >= _top_mean(bright[by, bxs])
        resp = dark if pick_dark else bright
        inside = resp[by, bxs]
        shape = resp.shape
        if inside.size < 4 or float(inside.max()) <= 1e-6:
            self.fallbacks += 1
            self.polarity.append("none")
            full = np.zeros(shape, bool)
            full[by, bxs] = True
            return padded, full, np.full(shape, LOW, np.uint8), resp
        self.polarity.append("dark" if pick_dark else "bright")
        thr = self._threshold(inside, bx[2] - bx[0], bx[3] - bx[1])
        mask = resp >= thr
        conf = LOW + (HIGH - LOW) * np.clip(np.abs(resp - thr) / thr, 0, 1)
        return padded, mask, conf.round().astype(np.uint8), resp

    def _threshold(self, inside: np.ndarray, bw: int, bh: int) -> float:
        """Otsu or the texture bound, within the least and most cover allowed."""
        flat = np.sort(inside.reshape(-1))
        n = flat.size
        lo_cover, hi_cover = thin_cover(bw, bh), max(thin_cover(bw, bh), self.max_cover)
        at_least = flat[max(0, n - max(1, int(round(lo_cover * n))))]  # keeps >= lo_cover
        at_most = flat[min(n - 1, n - int(hi_cover * n))]  # keeps <= hi_cover
        med = float(flat[n // 2])
        texture = med + 3 * 1.4826 * float(np.median(np.abs(flat - med)))
        thr = min(max(otsu(flat), texture), float(at_least))
        thr = max(thr, float(at_most))
        return max(thr, 1e-6)


def _top_mean(r: np.ndarray) -> float:
    flat = r.reshape(-1)
    k = max(1, int(TOP_SHARE * flat.size))
    return float(np.partition(flat, flat.size - k)[flat.size - k:].mean()) if flat.size else 0.0
