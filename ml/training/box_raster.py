"""Boxes of one training view as a raster: what the box-consistency loss reads.

A view's raster is an ``(S, S)`` int32 map in view pixels, transformed exactly like the label
(crop, resize, flips). Values:

* ``0``: outside every box, nothing known (or outside the image);
* :data:`OUTSIDE` (1): outside every box on a photo whose every defect is boxed (background);
* ``>= 4``: inside a box: ``(index + 1) << 2 | flags``. :data:`CUT_X` says the view does not show
  the box's full width (so its rows' maxima prove nothing), :data:`CUT_Y` its full height.

Boxes are drawn largest first, so a small box inside a large one keeps its pixels; each box
covers at least one view pixel however small it is. Rasters are drawn from the box coordinates
for every view (never resized), so a thin box never vanishes in a downscale.
"""

from __future__ import annotations

import math

import numpy as np

OUTSIDE = 1
CUT_X, CUT_Y = 1, 2
SHIFT = 2  # box ids live above the two flag bits


def encode(index: int, cut_x: bool, cut_y: bool) -> int:
    """The raster value of box ``index`` (0-based) with its cut flags."""
    return ((index + 1) << SHIFT) | (CUT_X if cut_x else 0) | (CUT_Y if cut_y else 0)


def box_raster(boxes: np.ndarray, all_boxed: bool, image_hw: tuple[int, int],
               window: tuple[int, int, int, int], size: int) -> np.ndarray:
    """The ``(size, size)`` raster of ``boxes`` ((N, 4) xyxy in image pixels) for a view.

    ``window`` = (y0, x0, height, width) is the part of the image the view shows (it may reach
    past the image: those view pixels are 0), stretched to ``size`` x ``size``.
    """
    h, w = image_hw
    wy0, wx0, wh, ww = window
    sy, sx = size / max(wh, 1), size / max(ww, 1)
    out = np.zeros((size, size), np.int32)
    iy1 = min(size, math.ceil((h - wy0) * sy))
    ix1 = min(size, math.ceil((w - wx0) * sx))
    if all_boxed and iy1 > 0 and ix1 > 0:
        out[:iy1, :ix1] = OUTSIDE
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for i in np.argsort(-areas, kind="stable"):
        x0, y0 = max(boxes[i, 0], 0.0), max(boxes[i, 1], 0.0)
        x1, y1 = min(boxes[i, 2], float(w)), min(boxes[i, 3], float(h))
        if not (x1 >= x0 and y1 >= y0 and math.isfinite(x0 + x1 + y0 + y1)):
            continue  # outside the image
        vx0, vy0 = math.floor((x0 - wx0) * sx), math.floor((y0 - wy0) * sy)
        vx1 = max(vx0 + 1, math.ceil((x1 - wx0) * sx))
        vy1 = max(vy0 + 1, math.ceil((y1 - wy0) * sy))
        cx0, cy0, cx1, cy1 = max(vx0, 0), max(vy0, 0), min(vx1, size), min(vy1, size)
        if cx1 <= cx0 or cy1 <= cy0:
            continue  # not in this view
        cut_x = x0 < wx0 or x1 > wx0 + ww
        cut_y = y0 < wy0 or y1 > wy0 + wh
        out[cy0:cy1, cx0:cx1] = encode(int(i), cut_x, cut_y)
    return out


def box_window(box: np.ndarray, length_hw: tuple[int, int], crop: int,
               rng: np.random.Generator) -> tuple[int, int]:
    """A random ``crop`` window origin (y, x) that holds the whole box where it fits.

    A box larger than the crop gets a window inside it; windows stay within the image where
    the image is larger than the crop.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    out = []
    for b0, b1, length in ((y0, y1, length_hw[0]), (x0, x1, length_hw[1])):
        lo, hi = math.ceil(b1) - crop, math.floor(b0)
        if lo > hi:  # the box is larger than the crop: a window inside it
            lo, hi = math.floor(b0), max(math.floor(b0), math.ceil(b1) - crop)
        s = int(rng.integers(lo, hi + 1))
        out.append(min(max(s, 0), max(length - crop, 0)))
    return out[0], out[1]
