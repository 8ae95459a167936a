"""The same spot in two inspections, side by side: the earlier photo registered onto the new.

:func:`side_by_side` returns a JPEG of two panels (earlier left, current right), each a crop
around the finding with its region outlined. Where the pair was registered, the earlier panel
is the earlier photo carried into the current photo's frame, so both show the same window; a
new finding shows the earlier photo of that spot when one registered, a gone one the current.
A missing photo is a grey panel that says so.
"""

from __future__ import annotations

import io

import numpy as np

from ml.common import images as _images
from ml.findings.history import Change, Comparison
from ml.findings.placement import PlacedFinding
from ml.findings.registration import Registration, warp_points
from ml.project.store import Project

PANEL = 240  # px, each panel's side
PAD = 0.6  # crop margin around the region, as a share of its larger side
OUTLINE = (255, 40, 200)


def _load(project: Project, key: str) -> np.ndarray | None:
    try:
        return project.load_image(key)
    except _images.ImageError:
        return None


def _window(outline: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    x0, y0 = outline.min(0)
    x1, y1 = outline.max(0)
    side = max(x1 - x0, y1 - y0, 48) * (1 + 2 * PAD)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    h, w = shape
    side = min(side, w, h)
    ax = int(np.clip(cx - side / 2, 0, w - side))
    ay = int(np.clip(cy - side / 2, 0, h - side))
    return ax, ay, int(side), int(side)


def _panel(image: np.ndarray | None, window: tuple[int, int, int, int],
           outline: np.ndarray | None, h: np.ndarray | None = None, note: str = "") -> np.ndarray:
    """A PANEL-square crop of ``image`` (through homography ``h`` when given), outline drawn."""
    import cv2

    x, y, w, hh = window
    if image is None:
        out = np.full((PANEL, PANEL, 3), 150, np.uint8)
        _text(out, note or "photo missing")
        return out
    s = PANEL / max(w, hh)
    to_panel = np.array([[s, 0, -x * s], [0, s, -y * s], [0, 0, 1]], np.float64)
    m = to_panel @ (h if h is not None else np.eye(3))
    out = cv2.warpPerspective(image, m, (PANEL, PANEL), flags=cv2.INTER_AREA,
                              borderValue=(150, 150, 150))
    if outline is not None:
        pts = warp_points(to_panel, outline)
        cv2.polylines(out, [np.round(pts).astype(np.int32)], True, OUTLINE, 2, cv2.LINE_AA)
    if note:
        _text(out, note)
    return out


def _text(img: np.ndarray, text: str, y: int | None = None) -> None:
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), _ = cv2.getTextSize(text, font, 0.45, 1)
    y = PANEL // 2 if y is None else y
    x = max(2, (img.shape[1] - tw) // 2)
    cv2.rectangle(img, (x - 3, y - th - 4), (x + tw + 3, y + 4), (30, 30, 30), -1)
    cv2.putText(img, text, (x, y), font, 0.45, (255, 255, 255), 1, cv2.LINE_AA)


def _registered(comp: Comparison, old_key: str | None, new_key: str | None) -> list[
        tuple[tuple[str, str], Registration]]:
    return [(k, r) for k, r in comp.registrations.items() if r.ok
            and (old_key is None or k[0] == old_key) and (new_key is None or k[1] == new_key)]


def side_by_side(change: Change, comp: Comparison) -> bytes:
    """JPEG: the earlier and the current view of ``change``'s spot, labelled with the dates."""
    e, c = change.earlier, change.current
    p_old, p_new = comp.earlier.project, comp.current.project
    if c is not None:
        cur = _load(p_new, c.key)
        win = _window(c.outline, c.shape)
        right = _panel(cur, win, c.outline, note="" if cur is not None else "photo missing")
        left = _earlier_panel(comp, e, c, win)
    else:
        assert e is not None
        old = _load(p_old, e.key)
        left = _panel(old, _window(e.outline, e.shape), e.outline,
                      note="" if old is not None else "photo missing")
        right = _gone_panel(comp, e)
    return _jpeg(_label(left, comp.earlier.name), _label(right, comp.current.name))


def _earlier_panel(comp: Comparison, e: PlacedFinding | None, c: PlacedFinding,
                   win: tuple[int, int, int, int]) -> np.ndarray:
    p_old = comp.earlier.project
    if e is not None:
        reg = comp.registrations.get((e.key, c.key))
        old = _load(p_old, e.key)
        if reg is not None and reg.ok and old is not None:  # the same window, registered
            return _panel(old, win, warp_points(reg.homography, e.outline), reg.homography)
        return _panel(old, _window(e.outline, e.shape), e.outline,
                      note="" if old is not None else "photo missing")
    for (k_old, _), reg in _registered(comp, None, c.key):  # the spot before it appeared
        back = warp_points(np.linalg.inv(reg.homography), np.array([c.centre]))[0]
        old = _load(p_old, k_old)
        if old is not None and 0 <= back[0] < old.shape[1] and 0 <= back[1] < old.shape[0]:
            return _panel(old, win, None, reg.homography)
    return _panel(None, win, None, note="no earlier photo of this spot")


def _gone_panel(comp: Comparison, e: PlacedFinding) -> np.ndarray:
    for (_, k_new), reg in _registered(comp, e.key, None):
        cur = _load(comp.current.project, k_new)
        pts = warp_points(reg.homography, e.outline)
        if cur is not None and 0 <= pts[:, 0].mean() < cur.shape[1] \
                and 0 <= pts[:, 1].mean() < cur.shape[0]:
            return _panel(cur, _window(pts, cur.shape[:2]), pts)
    return _panel(None, (0, 0, 1, 1), None, note="no photo of this spot now")


def _label(panel: np.ndarray, text: str) -> np.ndarray:
    import cv2

    bar = np.full((22, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (30, 40, 50), 1,
                cv2.LINE_AA)
    return np.concatenate([bar, panel], 0)


def _jpeg(left: np.ndarray, right: np.ndarray) -> bytes:
    from PIL import Image

    gap = np.full((left.shape[0], 6, 3), 255, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.concatenate([left, gap, right], 1)).save(buf, format="JPEG", quality=88)
    return buf.getvalue()
