"""The blade's axis in a photo from its long straight edges (when no metadata gives it).

Canny edges of a reduced copy, probabilistic Hough segments, the direction most of their length
agrees with (within 5°) and the length-weighted mean of those. Most length must agree:
a photo without one dominant direction (clutter, a blade seen end-on) gives None. A line has
two directions; the one closer to :data:`ml.metadata.position.DOWN_DEG` is taken as root to
tip (the blade hangs down in an inspection pose).
"""

from __future__ import annotations

import numpy as np

from ml.metadata.position import AXIS_SIGMA_DEG, DOWN_DEG, Axis

WORK_SIDE = 640  # longest side of the copy the edges are found in, pixels
MIN_AGREEMENT = 0.6  # share of the edge length along the dominant direction
NEAR_DEG = 5.0


def axis_from_edges(image: np.ndarray) -> Axis | None:
    """The root-to-tip axis of the blade in ``image`` (RGB uint8), or None when unclear."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        gray = cv2.resize(gray, (round(w * scale), round(h * scale)),
                          interpolation=cv2.INTER_AREA)
    gray = cv2.GaussianBlur(gray, (0, 0), 1.5)
    edges = cv2.Canny(gray, 25, 75)
    side = min(gray.shape)
    segs = cv2.HoughLinesP(edges, 1, np.pi / 360, threshold=max(20, side // 10),
                           minLineLength=side // 5, maxLineGap=side // 20)
    if segs is None or len(segs) == 0:
        return None
    d = segs.reshape(-1, 4).astype(np.float64)
    vx, vy = d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]
    length = np.hypot(vx, vy)
    theta = np.degrees(np.arctan2(vy, vx)) % 180.0
    # the direction most edge length agrees with (within NEAR_DEG), then their weighted mean
    near = np.abs((theta[:, None] - theta[None, :] + 90.0) % 180.0 - 90.0) <= NEAR_DEG
    support = near @ length
    best = int(np.argmax(support))
    if support[best] < MIN_AGREEMENT * length.sum() or support[best] < side / 2:
        return None
    keep = near[best]
    rel = (theta[keep] - theta[best] + 90.0) % 180.0 - 90.0
    mean = theta[best] + float(np.average(rel, weights=length[keep]))
    angle = mean % 180.0  # a line: 0..180
    if abs(_diff(angle + 180.0, DOWN_DEG)) < abs(_diff(angle, DOWN_DEG)):
        angle += 180.0
    return Axis(angle % 360.0, AXIS_SIGMA_DEG["edges"],
                f"blade axis from its edges in the photo ({angle % 360.0:.0f}°)")


def _diff(a: float, b: float) -> float:
    return (a - b + 180.0) % 360.0 - 180.0
