"""Register an earlier photo of a spot onto this inspection's photo (SIFT + RANSAC homography).

The viewpoint changes from year to year (distance, angle, roll), so the two photos are related
by a homography for the blade's nearly flat surface. :func:`register` finds SIFT features on
reduced grey copies, keeps Lowe's ratio-test matches and fits a homography with RANSAC. It
fails, with the reason, when too few matches or inliers remain, or when the homography is not
a plausible change of view (a flip, a scale change over 4×, a fold): a different blade or a
different spot must never look registered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WORK_SIDE = 1024  # longest side the features are found on
RATIO = 0.75
MIN_INLIERS = 25
MIN_INLIER_SHARE = 0.3
MAX_SCALE = 4.0


@dataclass(frozen=True)
class Registration:
    ok: bool
    homography: np.ndarray | None  # earlier photo px -> current photo px (full resolution)
    matches: int = 0
    inliers: int = 0
    reason: str = ""  # why it failed, or a short summary when it worked

    def summary(self) -> str:
        return self.reason if not self.ok else f"registered ({self.inliers} of {self.matches} " \
                                               f"matches agree)"


def _grey(image: np.ndarray) -> tuple[np.ndarray, float]:
    import cv2

    h, w = image.shape[:2]
    s = min(1.0, WORK_SIDE / max(h, w))
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    if s < 1.0:
        g = cv2.resize(g, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return cv2.createCLAHE(2.0, (8, 8)).apply(g), s


@dataclass(frozen=True)
class Features:
    """SIFT keypoints (reduced-copy px) and descriptors of one photo, and the copy's scale."""

    points: np.ndarray  # (N, 2) float32
    descriptors: np.ndarray | None
    scale: float
    shape: tuple[int, int]  # the full photo's (H, W)


def features(image: np.ndarray) -> Features:
    """What :func:`register` matches, computed once per photo (a photo is in many pairs)."""
    import cv2

    g, s = _grey(image)
    kps, desc = cv2.SIFT_create(nfeatures=4000).detectAndCompute(g, None)
    pts = np.float32([k.pt for k in kps]).reshape(-1, 2)
    return Features(pts, desc, s, image.shape[:2])


def register(earlier: np.ndarray | Features, current: np.ndarray | Features) -> Registration:
    """The homography taking ``earlier`` onto ``current`` (RGB uint8 or their
    :func:`features`), or why there is none."""
    import cv2

    f0 = earlier if isinstance(earlier, Features) else features(earlier)
    f1 = current if isinstance(current, Features) else features(current)
    if f0.descriptors is None or f1.descriptors is None or len(f0.points) < MIN_INLIERS \
            or len(f1.points) < MIN_INLIERS:
        return Registration(False, None, reason="too few features in one of the photos")
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(f0.descriptors, f1.descriptors, k=2)
    good = [m for m, n in (p for p in pairs if len(p) == 2) if m.distance < RATIO * n.distance]
    if len(good) < MIN_INLIERS:
        return Registration(False, None, len(good), reason=f"too few matches ({len(good)})")
    p0 = f0.points[[m.queryIdx for m in good]]
    p1 = f1.points[[m.trainIdx for m in good]]
    h, inl = cv2.findHomography(p0, p1, cv2.RANSAC, 4.0, maxIters=4000, confidence=0.999)
    n_in = int(inl.sum()) if inl is not None else 0
    if h is None or n_in < MIN_INLIERS or n_in < MIN_INLIER_SHARE * len(good):
        return Registration(False, None, len(good), n_in,
                            f"matches do not agree on one view change ({n_in} of {len(good)})")
    full = np.diag([1 / f1.scale, 1 / f1.scale, 1.0]) @ h @ np.diag([f0.scale, f0.scale, 1.0])
    problem = _implausible(full, f0.shape)
    if problem:
        return Registration(False, None, len(good), n_in, problem)
    return Registration(True, full / full[2, 2], len(good), n_in)


def _implausible(h: np.ndarray, shape: tuple[int, int]) -> str:
    a = h[:2, :2] / h[2, 2]
    det = float(np.linalg.det(a))
    if det <= 0:
        return "the fitted view change mirrors the photo"
    if not 1 / MAX_SCALE ** 2 < det < MAX_SCALE ** 2:
        return f"the fitted view change scales the photo by {det ** 0.5:.1f}×"
    hh, ww = shape
    corners = np.float32([[0, 0], [ww, 0], [ww, hh], [0, hh]]).reshape(-1, 1, 2)
    import cv2

    q = cv2.perspectiveTransform(corners, h).reshape(-1, 2)
    if not cv2.isContourConvex(q.astype(np.float32)):
        return "the fitted view change folds the photo"
    return ""


def warp_points(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(N, 2) points through the homography ``h``."""
    import cv2

    return cv2.perspectiveTransform(np.asarray(pts, np.float32).reshape(-1, 1, 2),
                                    h).reshape(-1, 2)
