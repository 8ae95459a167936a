"""The same spot in two inspections: the earlier photo registered onto the new, both masks.

:func:`spot_views` gives two square panels (earlier, current), each a crop around the finding.
Where the pair was registered, the earlier panel is the earlier photo carried into the current
photo's frame, so both show the same window (a swipe between them is meaningful); each panel
fills its own inspection's region and outlines the other's. A new finding shows the earlier
photo of that spot when one registered, a gone one the current. A missing photo is a grey
panel that says "photo missing" and still shows the region its stored mask holds.
:func:`side_by_side` joins the two as the report's JPEG; the GUI's spot view shows them as they
are.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from ml.common import images as _images
from ml.findings.history import Change, Comparison
from ml.findings.placement import PlacedFinding
from ml.findings.registration import Registration, warp_points
from ml.project.store import Project

PANEL = 240  # px, each panel's side in the report
PAD = 0.6  # crop margin around the region, as a share of its larger side
OUTLINE = (255, 40, 200)  # the current inspection's region
EARLIER = (255, 150, 30)  # the earlier inspection's region
FILL_ALPHA = 0.35
MISSING = "photo missing"

Shape = tuple[np.ndarray, tuple[int, int, int], bool]  # outline (px), colour, filled


@dataclass(frozen=True)
class SpotViews:
    """The spot of one change in both inspections, as two RGB panels of one size."""

    earlier: np.ndarray  # (S, S, 3) uint8
    current: np.ndarray
    registered: bool  # both panels show the same window of the current photo's frame
    earlier_note: str = ""  # "photo missing", "no earlier photo of this spot", ...
    current_note: str = ""


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


def _panel(image: np.ndarray | None, window: tuple[int, int, int, int], shapes: list[Shape],
           h: np.ndarray | None = None, note: str = "", side: int = PANEL) -> np.ndarray:
    """A ``side``-square crop of ``image`` (through homography ``h`` when given; grey when
    there is no photo) with ``shapes`` drawn: filled ones translucent, all outlined."""
    import cv2

    x, y, w, hh = window
    s = side / max(w, hh, 1)
    to_panel = np.array([[s, 0, -x * s], [0, s, -y * s], [0, 0, 1]], np.float64)
    if image is None:
        out = np.full((side, side, 3), 150, np.uint8)
    else:
        m = to_panel @ (h if h is not None else np.eye(3))
        out = cv2.warpPerspective(image, m, (side, side), flags=cv2.INTER_AREA,
                                  borderValue=(150, 150, 150))
    for pts, colour, filled in shapes:
        poly = [np.round(warp_points(to_panel, pts)).astype(np.int32)]
        if filled:
            layer = out.copy()
            cv2.fillPoly(layer, poly, colour)
            out = cv2.addWeighted(layer, FILL_ALPHA, out, 1 - FILL_ALPHA, 0)
        cv2.polylines(out, poly, True, colour, 2, cv2.LINE_AA)
    if note:  # at the top: the region, drawn at the centre, stays in view
        _text(out, note, 20)
    return out


def _text(img: np.ndarray, text: str, y: int | None = None) -> None:
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), _ = cv2.getTextSize(text, font, 0.45, 1)
    y = img.shape[0] // 2 if y is None else y
    x = max(2, (img.shape[1] - tw) // 2)
    cv2.rectangle(img, (x - 3, y - th - 4), (x + tw + 3, y + 4), (30, 30, 30), -1)
    cv2.putText(img, text, (x, y), font, 0.45, (255, 255, 255), 1, cv2.LINE_AA)


def _registered(comp: Comparison, old_key: str | None, new_key: str | None) -> list[
        tuple[tuple[str, str], Registration]]:
    return [(k, r) for k, r in comp.registrations.items() if r.ok
            and (old_key is None or k[0] == old_key) and (new_key is None or k[1] == new_key)]


def spot_views(change: Change, comp: Comparison, side: int = PANEL) -> SpotViews:
    """The earlier and the current view of ``change``'s spot, both masks drawn."""
    e, c = change.earlier, change.current
    if c is None:
        assert e is not None
        old = _load(comp.earlier.project, e.key)
        note = "" if old is not None else MISSING
        left = _panel(old, _window(e.outline, e.shape), [(e.outline, EARLIER, True)], note=note,
                      side=side)
        right, right_note = _gone_panel(comp, e, side)
        return SpotViews(left, right, False, note, right_note)
    cur = _load(comp.current.project, c.key)
    win = _window(c.outline, c.shape)
    cur_note = "" if cur is not None else MISSING
    reg = comp.registrations.get((e.key, c.key)) if e is not None else None
    old = _load(comp.earlier.project, e.key) if e is not None else None
    if e is not None and reg is not None and reg.ok and old is not None:  # the same window
        carried = warp_points(reg.homography, e.outline)
        left = _panel(old, win, [(carried, EARLIER, True), (c.outline, OUTLINE, False)],
                      reg.homography, side=side)
        right = _panel(cur, win, [(c.outline, OUTLINE, True), (carried, EARLIER, False)],
                       note=cur_note, side=side)
        return SpotViews(left, right, True, "", cur_note)
    right = _panel(cur, win, [(c.outline, OUTLINE, True)], note=cur_note, side=side)
    if e is not None:  # not registered: each in its own frame; a missing photo keeps its mask
        note = "" if old is not None else MISSING
        left = _panel(old, _window(e.outline, e.shape), [(e.outline, EARLIER, True)],
                      note=note, side=side)
        return SpotViews(left, right, False, note, cur_note)
    left, note, same = _before_panel(comp, c, win, side)
    return SpotViews(left, right, same, note, cur_note)


def side_by_side(change: Change, comp: Comparison) -> bytes:
    """JPEG: the earlier and the current view of ``change``'s spot, labelled with the names."""
    v = spot_views(change, comp)
    return _jpeg(_label(v.earlier, comp.earlier.name), _label(v.current, comp.current.name))


def _before_panel(comp: Comparison, c: PlacedFinding, win: tuple[int, int, int, int],
                  side: int) -> tuple[np.ndarray, str, bool]:
    """A new finding's spot in an earlier photo registered onto its photo, if one shows it."""
    for (k_old, _), reg in _registered(comp, None, c.key):
        back = warp_points(np.linalg.inv(reg.homography), np.array([c.centre]))[0]
        old = _load(comp.earlier.project, k_old)
        if old is not None and 0 <= back[0] < old.shape[1] and 0 <= back[1] < old.shape[0]:
            return _panel(old, win, [(c.outline, OUTLINE, False)], reg.homography,
                          side=side), "", True
    note = "no earlier photo of this spot"
    return _panel(None, win, [(c.outline, OUTLINE, False)], note=note, side=side), note, False


def _gone_panel(comp: Comparison, e: PlacedFinding, side: int) -> tuple[np.ndarray, str]:
    for (_, k_new), reg in _registered(comp, e.key, None):
        cur = _load(comp.current.project, k_new)
        pts = warp_points(reg.homography, e.outline)
        if cur is not None and 0 <= pts[:, 0].mean() < cur.shape[1] \
                and 0 <= pts[:, 1].mean() < cur.shape[0]:
            return _panel(cur, _window(pts, cur.shape[:2]), [(pts, EARLIER, False)],
                          side=side), ""
    note = "no photo of this spot now"
    return _panel(None, (0, 0, 1, 1), [], note=note, side=side), note


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
