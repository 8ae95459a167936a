"""The naive baseline teacher: every box filled with its class."""

from __future__ import annotations

import numpy as np

from ._base import Region, Teacher, box_region


class BoxTeacher(Teacher):
    """Fills each box (every pixel it touches) with its class; overlaps follow ``priority``."""

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
            out.append((r, np.ones((r[3] - r[1], r[2] - r[0]), dtype=bool)))
        return out
