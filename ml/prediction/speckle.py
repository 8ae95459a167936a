"""Speckle removal for box-free masks: regions smaller than the student can draw are noise.

Without boxes, the argmax of the upsampled class probabilities leaves thousands of specks of a
few pixels on textured photos (asphalt, grain): where a defect's probability hovers near the
background's, the bilinear upsampling cuts it into islands. The student's output has a
resolution, one output cell (:data:`CELL_INPUT_PX` input pixels, the detail branch's stride), so
the scale of a real finding is known in each photo's own pixels (:func:`output_cell`):

* fragments closer than one cell are one finding (they are merged for the decision only; no
  pixel is added between them);
* a finding covering less than :data:`MIN_CELLS` cells' area is dropped: the smallest shape
  the student's output can draw with an inside and an edge is a 2 x 2 block of cells.

Neither number was tuned on any photo set; docs/RESULTS.md (round 13) measures the effect on
region precision and recall.
"""

from __future__ import annotations

import math

import numpy as np

CELL_INPUT_PX = 4  # input pixels per output cell of the student (its quarter-resolution grid)
MIN_CELLS = 4.0  # a finding smaller than this many cells' area is speckle


def output_cell(input_px_per_photo_px: float) -> float:
    """Side of one output cell in photo pixels, given the input pixels per photo pixel."""
    return CELL_INPUT_PX / max(float(input_px_per_photo_px), 1e-9)


def remove_speckle(label: np.ndarray, cell: float, min_cells: float = MIN_CELLS) -> np.ndarray:
    """``label`` with its defect findings under ``min_cells`` cells' area set to background.

    ``cell``: one output cell in photo pixels (:func:`output_cell`). Fragments within one cell
    of each other count as one finding. ``min_cells`` 0 keeps everything.
    """
    import cv2  # lazily: loading the predictor must not load OpenCV (tests/test_layout.py)

    if min_cells <= 0 or not label.any():
        return label
    fg = (label > 0).astype(np.uint8)
    r = int(math.ceil(cell / 2))  # each grows by half a cell: gaps up to one cell close
    if r > 0:  # fragments within one cell are one finding
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        joined = cv2.dilate(fg, disc)
    else:
        joined = fg
    n, comp = cv2.connectedComponents(joined, connectivity=8)
    if n <= 1:
        return label
    area = np.bincount(comp[fg > 0].ravel(), minlength=n)  # the finding's own pixels
    small = area < min_cells * cell * cell
    small[0] = False
    if not small.any():
        return label
    out = label.copy()
    out[small[comp] & (fg > 0)] = 0
    return out
