"""The naive baseline teacher: every box filled with its class."""

from __future__ import annotations

import numpy as np

from ml.teachers._base import LOW, Region, Teacher, box_region


class BoxTeacher(Teacher):
    """Fills each box (every pixel it touches) with its class; overlaps follow ``priority``.

    Its confidence is low over every box: a box fill is a guess at where the defect is.
    """

    name = "box"

    def __init__(self, *, pad: int = 0, **common) -> None:
        # No padding by default: a box fill grown by pad would just be a bigger box.
        super().__init__(pad=pad, **common)

    def _box_masks(self, boxes: np.ndarray,
                   padded: list[Region]) -> list[tuple[Region, np.ndarray]]:
        assert self._image is not None
        h, w = self._image.shape[:2]
        out = []
        for b in boxes:
            r = box_region(b, 0, w, h)
            shape = (r[3] - r[1], r[2] - r[0])
            out.append((r, np.ones(shape, dtype=bool), np.full(shape, LOW, np.uint8)))
        return out
