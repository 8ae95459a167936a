"""Boxes from a label map's connected components, shared by mask import and synthetic data."""

from __future__ import annotations

import numpy as np

from ml.project.regions import boxes_from_mask


def test_boxes_by_class_split_touching_classes_drop_small_ones_and_clip_the_pad():
    m = np.zeros((20, 30), np.uint8)
    m[0:5, 0:4] = 1
    m[0:5, 4:9] = 2  # touches the class-1 blob
    m[15, 25] = 2  # a one-pixel speck
    together = boxes_from_mask(m, pad=1)
    assert [(b.xyxy, b.cls) for b in together] == [((0, 0, 10, 6), 2), ((24, 14, 27, 17), 2)]
    apart = boxes_from_mask(m, pad=1, by_class=True, min_area=2)
    assert [(b.xyxy, b.cls, b.source) for b in apart] == [((0, 0, 5, 6), 1, "imported"),
                                                           ((3, 0, 10, 6), 2, "imported")]
