"""The ``auto`` teacher: per box, the candidate mask that the box and the photo support best.

Candidates: ridge (thin lines), GrabCut, SAM (only when its checkpoint is already on this
machine; never downloaded), the box's pixels whose DINOv2 features the ring round it lacks
(``features``, only when the student backbone's weights are cached; :mod:`ml.teachers.features`)
and a shrunken box fill (the box's inscribed ellipse, a guess).
A candidate leaving a box under 2 % covered is out.

First the box's kind is decided: a **thin** defect (a crack, a scratch) or a **region** (a
blowhole, a stain). The evidence is the ridge mask's flank contrast (:func:`flank_contrast`):
across a real line both flanks look like the background, so the flanks' grey level sits at the
background's (contrast near 1); a ridge found on a blob's dark rim, or along the inside of a
broad defect, has a flank inside the defect (contrast near 0.5 or below). A thin box takes the
ridge mask. A region box takes the inscribed ellipse unless a region candidate (GrabCut, SAM,
features) that is not a whole-box fallback agrees with it (IoU >= 0.5, the usual match
threshold) and separates better; then the best such candidate. One box's contrast is noisy, so
:meth:`AutoTeacher.survey` (run by ``pseudo_label_project`` over the project's photos) pools
it per class: a class is thin when the median of its boxes' contrasts is at least
:data:`THIN_FLANK`. Without a survey each box decides alone.

Scores (tightness x separation) rank the candidates of one kind:

* tightness: a tight box touches its defect on every row and column (the box tightness
  prior), so the share of the box's rows and columns the mask reaches;
* separation: the mask's colours (Lab) differ from the rest of the box and a ring around it,
  as a Fisher ratio (distance of the means over the pooled spread).

Confidence is the winner's own, lowered where the other real candidates disagree with it.

Tuning (docs/RESULTS.md, round 13): :data:`THIN_FLANK` was set on magnetic_tile's five
classes only, as the midpoint of its region classes' highest median (fray, 0.71) and its
crack class's (0.96); crackforest (0.94) and the synthetic demo did not tune it. :data:`AGREE`
is the conventional IoU match threshold, not tuned (magnetic_tile moves under a point over
0.4-0.7).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ml.teachers import features as _features
from ml.teachers._base import (
    EMPTY_COVER,
    LOW,
    Region,
    Teacher,
    box_coverage,
    box_region,
    check_image,
    check_prompts,
    context_window,
    region_empty,
)
from ml.teachers.grabcut import GrabCutTeacher
from ml.teachers.ridge import RidgeTeacher

BOX = "box"
THIN, REGION = "thin", "region"
THIN_FLANK = 0.83  # a class whose median flank contrast reaches this is thin (see above)
AGREE = 0.5  # a region candidate replaces the ellipse when it overlaps it at this IoU
FULL = 0.98  # a candidate covering this share of its box is a whole-box fallback, no shape


@dataclass(frozen=True)
class BoxChoice:
    """What :class:`AutoTeacher` weighed for one box (kept with ``record=True``).

    ``window``: the (x0, y0, x1, y1) photo region the candidates' masks cover; ``box``: the box
    itself in photo pixels; ``masks``: each candidate that covered the box, as a bool mask of
    ``window``; ``scores``: their tightness x separation; ``choice``: the winner; ``flank``:
    the ridge mask's flank contrast (nan without one); ``kind``: thin or region.
    """

    window: Region
    box: Region
    masks: dict[str, np.ndarray]
    scores: dict[str, float]
    choice: str
    flank: float = float("nan")
    kind: str = REGION


def sam_available(model_type: str = "vit_b") -> bool:
    """True when the SAM checkpoint of ``model_type`` is cached and verified (no download)."""
    from ml import weights

    return weights.find(f"sam_{model_type}") is not None


def ellipse_fill(shape: tuple[int, int]) -> np.ndarray:
    """The ellipse inscribed in a (h, w) box: a box fill without the corners defects rarely fill."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    ry, rx = max(h / 2, 0.5), max(w / 2, 0.5)
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def tightness(mask: np.ndarray) -> float:
    """Share of a box mask's rows and columns holding at least one mask pixel."""
    if mask.size == 0:
        return 0.0
    return float(mask.any(axis=1).sum() + mask.any(axis=0).sum()) / sum(mask.shape)


def colour_features(crop: np.ndarray) -> np.ndarray:
    """(h, w, 3) float Lab colours of an RGB crop, each channel over its spread (floored at 1).

    Colour only: structure (the ridge response) would favour the ridge candidate, whose mask
    is by construction where that response is highest.
    """
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32)
    std = lab.reshape(-1, 3).std(axis=0)
    return lab / np.maximum(std, 1.0)


def separation(feats: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> float:
    """Fisher ratio of the features of ``inside`` vs ``outside`` pixels (0 if one is empty)."""
    a, b = feats[inside], feats[outside]
    if len(a) == 0 or len(b) == 0:
        return 0.0
    spread = (a.var(axis=0).sum() + b.var(axis=0).sum()) / 2
    return float(np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)) / np.sqrt(spread + 1.0))


def flank_contrast(grey: np.ndarray, line: np.ndarray, box: np.ndarray) -> float:
    """How much a candidate line's flanks look like the background rather than the line.

    ``grey``: float grey levels of a window; ``line``: the ridge mask there; ``box``: the box's
    pixels there. (F - L) / (B - L) of the medians of the line (L), its flanks within w px in
    the box (F) and the background (B: the window outside the box beyond w px, or the box's
    own pixels beyond 2 w where that ring is missing), where w is twice the line's half-width,
    at least 2 px: about 1 for a thin line, 0.5 or less for a blob's rim or a line inside a
    broad defect; nan without a line, or where the line looks like the background.
    """
    m = line & box
    if not m.any() or m.all():
        return float("nan")
    d_out = cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, 3)
    d_in = cv2.distanceTransform(m.astype(np.uint8), cv2.DIST_L2, 3)
    w = max(2.0, 2.0 * float(d_in.max()))
    flank = box & (d_out > 0) & (d_out <= w)
    far = ~box & (d_out > w)  # the ring round a tight box: background
    if far.sum() < 5:  # a box filling the photo: its own far pixels
        far = box & (d_out > 2 * w)
    lv = float(np.median(grey[m]))
    fv = float(np.median(grey[flank])) if flank.any() else lv
    bv = float(np.median(grey[far])) if far.any() else fv
    return (fv - lv) / (bv - lv) if abs(bv - lv) > 1.0 else float("nan")


class AutoTeacher(Teacher):
    """Chooses, per box, between ridge, GrabCut, SAM and features (if cached) and a box fill.

    ``sam``: None uses SAM when its checkpoint is cached, False never, True requires it.
    ``features``: likewise for the backbone-feature candidate; a ``FeatureTeacher`` is used as
    given.
    ``choices`` lists the winner per box of the last image; with ``record`` ``weighed`` holds
    each box's :class:`BoxChoice` too (``bench/auto_choice.py`` scores them).
    """

    name = "auto"

    def __init__(self, *, sam: bool | None = None, model_type: str = "vit_b",
                 features: bool | Teacher | None = None, device: str = "auto",
                 record: bool = False, **common: Any) -> None:
        super().__init__(**common)
        self.candidates: dict[str, Teacher] = {"ridge": RidgeTeacher(**common),
                                               "grabcut": GrabCutTeacher(**common)}
        self.use_sam = sam_available(model_type) if sam is None else bool(sam)
        if self.use_sam:
            from ml.teachers.sam import SamTeacher  # imports torch: only with a checkpoint at hand

            self.candidates["sam"] = SamTeacher(model_type=model_type, device=device, **common)
        if isinstance(features, Teacher):
            self.candidates["features"] = features
        elif features or (features is None and _features.backbone_weights() is not None):
            self.candidates["features"] = _features.FeatureTeacher(device=device, **common)
        self.choices: list[str] = []
        self.record = record
        self.weighed: list[BoxChoice] = []
        self.kinds: dict[int, str] = {}  # per class id, from :meth:`survey`; empty: per box
        self._empty: dict[str, int] = {}

    def _options(self) -> dict:
        return {"candidates": [*self.candidates, BOX], "sam": self.use_sam,
                "kinds": {str(c): k for c, k in sorted(self.kinds.items())}}

    def survey(self, photos: Iterable[tuple[np.ndarray, Any, Any]]) -> dict[int, str]:
        """Decide each class's kind from the boxes of ``photos`` ((image, boxes, classes)).

        Pools the ridge mask's flank contrast over every box of a class: a class is thin when
        the median reaches :data:`THIN_FLANK`. Classes without evidence stay per box.
        """
        ridge = self.candidates["ridge"]
        evidence: dict[int, list[float]] = {}
        for image, boxes_xyxy, classes in photos:
            boxes, cls = check_prompts(boxes_xyxy, classes)
            img = check_image(image)
            ridge.set_image(img)
            h, w = img.shape[:2]
            for box, c in zip(boxes, cls, strict=True):
                padded = box_region(box, self.pad, w, h)
                if region_empty(padded) or region_empty(box_region(box, 0, w, h)):
                    continue
                item = ridge._box_masks(box[None], [padded])[0]
                r, m, _ = ridge._finish_item(item, padded, box)
                ctx, in_box = self._context(box, h, w)
                f = flank_contrast(_grey(img, ctx), _place(r, m, None, ctx, _shape(ctx))[0],
                                   _box_mask(ctx, in_box))
                if not math.isnan(f):
                    evidence.setdefault(int(c), []).append(f)
        if self._image is not None:
            ridge.set_image(self._image)  # the photo set before the survey stays current
        self.kinds = {c: THIN if float(np.median(v)) >= THIN_FLANK else REGION
                      for c, v in sorted(evidence.items())}
        return dict(self.kinds)

    def _prepare(self, image: np.ndarray) -> None:
        for t in self.candidates.values():
            t.set_image(image)

    def _extra_empty(self) -> dict[str, int]:
        return dict(self._empty)

    def _box_masks(self, boxes: np.ndarray, padded: list[Region]) -> list[tuple]:
        img = self._image
        assert img is not None
        h, w = img.shape[:2]
        classes = self._classes if len(self._classes) == len(boxes) else [0] * len(boxes)
        per: dict[str, list[tuple[Region, np.ndarray, np.ndarray | None]]] = {}
        self._empty = {}
        for name, t in self.candidates.items():
            # The feature mask only ever serves a region box, and costs a backbone pass a box:
            # boxes of a class the survey called thin are not asked for it.
            idx = [i for i in range(len(boxes)) if name != "features"
                   or self.kinds.get(int(classes[i])) != THIN]
            items = t._box_masks(boxes[idx], [padded[i] for i in idx]) if idx else []
            done = {i: t._finish_item(it, padded[i], boxes[i]) for i, it in zip(idx, items,
                                                                               strict=True)}
            none = np.zeros((0, 0), bool)
            per[name] = [done.get(i, (padded[i], none, None)) for i in range(len(boxes))]
            self._empty[name] = sum(
                box_coverage(r, m, box_region(boxes[i], 0, w, h)) < EMPTY_COVER
                for i, (r, m, _) in done.items())
        self.choices, self.weighed = [], []
        out = []
        for i, box in enumerate(boxes):
            cands = {n: per[n][i] for n in per}
            out.append(self._choose(box, padded[i], cands, self.kinds.get(int(classes[i]))))
        return out

    def _context(self, box: np.ndarray, h: int, w: int) -> tuple[Region, tuple[slice, slice]]:
        """The window the candidates are weighed on (the box and a ring), and the box in it."""
        bx = box_region(box, 0, w, h)
        ctx = context_window(box, self.pad, w, h)
        return ctx, (slice(bx[1] - ctx[1], bx[3] - ctx[1]), slice(bx[0] - ctx[0], bx[2] - ctx[0]))

    def _choose(self, box: np.ndarray, padded: Region,
                cands: dict[str, tuple[Region, np.ndarray, np.ndarray | None]],
                kind: str | None = None) -> tuple:
        """The winning candidate of one box, placed on its padded region, with confidence.

        ``kind``: the box's class kind from a survey; None decides from this box alone.
        """
        img = self._image
        assert img is not None
        ctx, in_box = self._context(box, *img.shape[:2])
        cshape = _shape(ctx)
        bx = box_region(box, 0, img.shape[1], img.shape[0])
        feats = colour_features(img[ctx[1]:ctx[3], ctx[0]:ctx[2]])
        placed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, (r, m, c) in cands.items():
            mask, conf = _place(r, m, c, ctx, cshape)
            if mask[in_box].mean() >= EMPTY_COVER:
                placed[name] = (mask, conf)
        fill = np.zeros(cshape, bool)
        fill[in_box] = ellipse_fill((bx[3] - bx[1], bx[2] - bx[0]))
        placed[BOX] = (fill, np.where(fill, LOW, 255).astype(np.uint8))
        scores = {n: tightness(m[in_box]) * separation(feats, m, ~m)
                  for n, (m, _) in placed.items()}
        flank = (flank_contrast(_grey(img, ctx), placed["ridge"][0], _box_mask(ctx, in_box))
                 if "ridge" in placed else float("nan"))
        if kind is None:  # this box's own evidence
            kind = THIN if flank >= THIN_FLANK else REGION
        best = _pick(kind, placed, scores, in_box)
        self.choices.append(best)
        if self.record:
            self.weighed.append(BoxChoice(ctx, bx, {n: m for n, (m, _) in placed.items()},
                                          scores, best, flank, kind))
        mask, conf = placed[best]
        others = [m for n, (m, _) in placed.items() if n not in (best, BOX)]
        if others and best != BOX:
            agree = np.mean([m == mask for m in others], axis=0)
            conf = (conf * (0.5 + 0.5 * agree)).round().astype(np.uint8)
        py = slice(padded[1] - ctx[1], padded[3] - ctx[1])
        px = slice(padded[0] - ctx[0], padded[2] - ctx[0])
        return padded, mask[py, px], conf[py, px]


def _pick(kind: str, placed: dict[str, tuple[np.ndarray, np.ndarray]],
          scores: dict[str, float], in_box: tuple[slice, slice]) -> str:
    """The winner of one box: ridge for a thin box, else the ellipse or a region agreeing with it.

    Ties and boxes with nothing better go to the humble guess, the ellipse.
    """
    if kind == THIN and "ridge" in placed:
        return "ridge"
    ellipse = placed[BOX][0][in_box]
    regions = [n for n in placed if n not in (BOX, "ridge")
               and placed[n][0][in_box].mean() < FULL
               and _iou(placed[n][0][in_box], ellipse) >= AGREE and scores[n] > scores[BOX]]
    return max(regions, key=lambda n: scores[n]) if regions else BOX


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / max(1, int((a | b).sum()))


def _shape(ctx: Region) -> tuple[int, int]:
    return ctx[3] - ctx[1], ctx[2] - ctx[0]


def _box_mask(ctx: Region, in_box: tuple[slice, slice]) -> np.ndarray:
    m = np.zeros(_shape(ctx), bool)
    m[in_box] = True
    return m


def _grey(img: np.ndarray, ctx: Region) -> np.ndarray:
    return cv2.cvtColor(img[ctx[1]:ctx[3], ctx[0]:ctx[2]], cv2.COLOR_RGB2GRAY).astype(np.float32)


def _place(region: Region, mask: np.ndarray, conf: np.ndarray | None, ctx: Region,
           shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A candidate's mask and confidence on the context window (outside it: dropped)."""
    out_m = np.zeros(shape, bool)
    out_c = np.full(shape, 255, np.uint8)
    x0, y0 = max(region[0], ctx[0]), max(region[1], ctx[1])
    x1, y1 = min(region[2], ctx[2]), min(region[3], ctx[3])
    if x1 <= x0 or y1 <= y0 or mask.size == 0:
        return out_m, out_c
    src = (slice(y0 - region[1], y1 - region[1]), slice(x0 - region[0], x1 - region[0]))
    dst = (slice(y0 - ctx[1], y1 - ctx[1]), slice(x0 - ctx[0], x1 - ctx[0]))
    out_m[dst] = mask[src]
    if conf is not None and conf.shape == mask.shape:
        out_c[dst] = conf[src]
    return out_m, out_c
