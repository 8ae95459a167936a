"""The pixel scale a run trains and predicts at: the training cache's size and ``crop=auto``.

No torch here: the budget planner and the predictor ask these rules too.
"""

from __future__ import annotations

import math

import numpy as np

CROP_AUTO = -1  # TrainConfig.crop: native crops where photos are larger than the input
# "Larger": the median photo's long side over the input size. A whole photo squeezed into the
# input shrinks a 2-3 px crack below what a stride-14 backbone resolves: on the synthetic demo
# (photos 1.4-2.1x a 224 input) native crops scored 0.692 against 0.591 for whole photos at the
# same number of steps, and on magnetic_tile (median 1.7x) 0.657 against 0.665, within what
# runs move (docs/RESULTS.md, round 10). Below 1.25x a crop is nearly the whole photo and would
# only multiply the views; it was 2.0 until round 10.
AUTO_CROP_RATIO = 1.25


def cache_long_side(input_size: int, crop: int = 0) -> int:
    """Long side (pixels) images are downscaled to, at most, in the training cache."""
    return 4 * max(input_size, crop)


def photo_scale(size: tuple[int, int], input_size: int, crop: int = 0) -> float:
    """Input pixels per photo pixel of a (h, w) photo trained (and predicted) at ``input_size``
    with ``crop``: a whole photo is resized to the square input, so its long side sets the
    scale; a crop is cut from the photo as cached (:func:`cache_long_side`) and resized from
    ``crop`` to ``input_size`` pixels."""
    long_side = max(max(size), 1)
    if crop <= 0:
        return input_size / long_side
    return min(1.0, cache_long_side(input_size, crop) / long_side) * input_size / crop


def resolve_crop(crop: int, input_size: int, sizes: list[tuple[int, int]]) -> int:
    """The crop a run uses: ``crop`` itself, or for :data:`CROP_AUTO` the input size (native
    crops) when the median photo's long side, as cached, is at least
    :data:`AUTO_CROP_RATIO` x the input, else 0 (whole photos resized, the paper)."""
    if crop != CROP_AUTO:
        return crop
    longs = [min(max(h, w), cache_long_side(input_size, input_size)) for h, w in sizes if h * w]
    if longs and float(np.median(longs)) >= AUTO_CROP_RATIO * input_size:
        return input_size
    return 0


def grid_origins(length: int, crop: int) -> list[int]:
    """Crop starts along one axis covering ``length`` with as few, evenly spread crops."""
    if length <= crop:
        return [0]
    n = math.ceil(length / crop)
    return [round(i * (length - crop) / (n - 1)) for i in range(n)]
