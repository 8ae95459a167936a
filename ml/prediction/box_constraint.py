"""The box constraint on a student's probabilities, for a whole photo or band by band.

Where a person drew boxes, only pixels inside the boxes (padded by ``pad`` px, :data:`BOX_PAD`
unless told) may be defects. Which of them are is the box rule's call
(:mod:`ml.prediction.box_decode`): ``tight`` (the default of
:class:`~ml.prediction.predict.Predictor`) thresholds the student's defect score relative to its
peak in the box; ``posterior`` takes pixels whose defect probability (1 - p(background)) exceeds
0.5. Its class is the box's class: the person said what the defect is, the student says where.
Where boxes of different classes overlap, the student picks the likelier of their classes; a box
whose class the model does not know lets the student pick any defect class. Fallback (the product's
default, ``fallback=False`` turns it off): a box in which the student finds no defect pixel takes
the teacher's mask inside the box (nothing when there is no teacher mask). Outside the boxes:
background. Scoring the student itself needs the fallback off, or a student that finds nothing
scores as its teacher.

Under the ``posterior`` rule the decision uses *prior-corrected* probabilities: the class-weighted
cross-entropy (0.4, 4, 4) shifts the student's posteriors towards defects by the weight ratio,
which buys recall when it scans a whole photo; inside a person's box the box already supplies
that recall, so the shift is undone (:func:`undo_class_weights`: each class probability divided
by its training weight, then renormalised) before the 0.5 decision. Outside boxes nothing
changes.

The ``posterior`` rule is per pixel; the ``tight`` rule and the fallback need a whole box.
:class:`BoxConstraint` labels one band of rows at a time under ``posterior``; under ``tight``
it keeps each box's scores (a few bytes per boxed pixel) as the bands pass and paints the boxes
at :meth:`~BoxConstraint.finish`; it remembers which boxes found a defect, and applies the
fallback to the finished uint8 label at the end.
"""

from __future__ import annotations

import math

import numpy as np

from ml.prediction.box_decode import centreline, check_rule, tight_mask

# Pixels a box's defect may spill over its edges at prediction. 0: the tightness prior says a
# box holds its defect. The first release's 4 px put a rim of false positives round every
# defect: on every model saved by the magnetic_tile and crackforest quality runs, 0 scored
# 0.4-2.3 binary-IoU points above 4 with the same recall (docs/RESULTS.md, round 10). A box
# drawn too tight is what ``b2p predict --box-pad`` is for.
BOX_PAD = 0


def undo_class_weights(probs: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Remove the prior shift of class-weighted CE from (C, H, W) probabilities."""
    if weights is None:
        return probs
    p = probs / weights.reshape(-1, 1, 1)
    return p / np.maximum(p.sum(axis=0, keepdims=True), 1e-12)


def _box_slices(box: np.ndarray, pad: float, h: int, w: int) -> tuple[slice, slice]:
    x0, y0, x1, y1 = (float(v) for v in box)
    ys = slice(max(0, math.floor(y0 - pad)), min(h, math.ceil(y1 + pad)))
    xs = slice(max(0, math.floor(x0 - pad)), min(w, math.ceil(x1 + pad)))
    return ys, xs


class BoxConstraint:
    """The box-constrained label of a ``height`` x ``width`` photo, built band by band.

    ``classes`` ((N,) class ids of the boxes) sets each box's pixel class; without it the
    student's most likely defect class is taken everywhere. ``thin`` (class id -> width in
    photo pixels): under ``tight``, a box of such a class keeps the centre line of its mask at
    that width (:func:`~ml.prediction.box_decode.centreline`).
    """

    def __init__(self, boxes: np.ndarray, classes: np.ndarray | None, pad: float,
                 height: int, width: int, rule: str = "posterior",
                 thin: dict[int, float] | None = None) -> None:
        self.boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        self.classes = (np.zeros(len(self.boxes), np.int64) if classes is None
                        else np.asarray(classes, np.int64).reshape(-1))
        if len(self.classes) != len(self.boxes):
            raise ValueError(f"{len(self.boxes)} boxes but {len(self.classes)} box classes")
        self.shape = (height, width)
        self._slices = [_box_slices(b, pad, height, width) for b in self.boxes]
        self.found = np.zeros(len(self.boxes), bool)  # a box with a student defect pixel
        self.rule = check_rule(rule)
        self.thin = dict(thin or {})
        self._inner = [_box_slices(b, 0, height, width) for b in self.boxes]
        # tight rule: per box, the (C, h, w) float16 probabilities of its padded area so far
        self._held: list[np.ndarray | None] = [None] * len(self.boxes)

    def band(self, y0: int, probs: np.ndarray) -> np.ndarray:
        """Label rows ``[y0, y0 + rows)`` from their (C, rows, W) probabilities.

        ``posterior``: prior-corrected probabilities, labelled now. ``tight``: the student's
        own probabilities, held per box and labelled by :meth:`finish`; the band comes back
        empty.
        """
        n_cls, rows, w = probs.shape
        out = np.zeros((rows, w), np.uint8)
        if self.rule == "tight":
            for i, (ys, xs) in enumerate(self._slices):
                a, b = max(ys.start, y0), min(ys.stop, y0 + rows)
                if a < b:
                    part = probs[:, a - y0:b - y0, xs].astype(np.float16)
                    held = self._held[i]
                    self._held[i] = part if held is None else np.concatenate([held, part], 1)
            return out
        defect = probs[0] < 0.5
        score = np.full((rows, w), -1.0, np.float32)  # probability of the class in ``out``
        for i, ((ys, xs), c) in enumerate(zip(self._slices, self.classes, strict=True)):
            a, b = max(ys.start, y0) - y0, min(ys.stop, y0 + rows) - y0
            if a >= b:
                continue  # the box is not in this band
            ys = slice(a, b)
            inside = defect[ys, xs]
            if not inside.any():
                continue
            self.found[i] = True
            if 1 <= c < n_cls:  # the box's class, where the model knows it
                cls_map = np.full(inside.shape, c, np.uint8)
                p = probs[c, ys, xs]
            else:
                cls_map = (probs[1:, ys, xs].argmax(axis=0) + 1).astype(np.uint8)
                p = probs[1:, ys, xs].max(axis=0)
            take = inside & (p > score[ys, xs])  # overlapping boxes: the likelier class wins
            out[ys, xs][take] = cls_map[take]
            score[ys, xs][take] = p[take]
        return out

    def box_mask(self, score: np.ndarray, inner: tuple[slice, slice]) -> np.ndarray:
        """One box's defect pixels under the ``tight`` rule (a subclass may decide otherwise)."""
        return tight_mask(score, inner)

    def finish(self, label: np.ndarray) -> None:
        """Paint the ``tight`` rule's boxes into the whole uint8 ``label`` (no-op otherwise)."""
        if self.rule != "tight":
            return
        score = np.full(label.shape, -1.0, np.float16) if len(self.boxes) > 1 else None
        for i, c in enumerate(self.classes):
            probs, self._held[i] = self._held[i], None
            if probs is None or probs.size == 0:
                continue
            (ys, xs), (iy, ix) = self._slices[i], self._inner[i]
            inner = (slice(iy.start - ys.start, iy.stop - ys.start),
                     slice(ix.start - xs.start, ix.stop - xs.start))
            inside = self.box_mask(1.0 - probs[0].astype(np.float32), inner)
            if not inside.any():
                continue
            if int(c) in self.thin:
                inside = centreline(inside, self.thin[int(c)])
            self.found[i] = True
            n_cls = probs.shape[0]
            if 1 <= c < n_cls:
                cls_map = np.full(inside.shape, c, np.uint8)
                p = probs[c]
            else:
                cls_map = (probs[1:].argmax(axis=0) + 1).astype(np.uint8)
                p = probs[1:].max(axis=0)
            region = label[ys, xs]
            if score is None:
                region[inside] = cls_map[inside]
                continue
            take = inside & (p > score[ys, xs])
            region[take] = cls_map[take]
            score[ys, xs][take] = p[take]

    def fallback(self, label: np.ndarray, teacher: np.ndarray | None) -> int:
        """Give boxes the student left empty the teacher's pixels; return how many boxes.

        Run after every band: a fallback only fills pixels no student defect took.
        """
        if teacher is None or teacher.shape != label.shape:
            return 0
        h, w = label.shape
        empty = np.flatnonzero(~self.found)
        for i in empty:
            ys, xs = _box_slices(self.boxes[i], 0, h, w)
            region, t = label[ys, xs], teacher[ys, xs]
            take = (t > 0) & (region == 0)
            region[take] = t[take]
        return len(empty)


def constrain_to_boxes(probs: np.ndarray, boxes: np.ndarray, teacher: np.ndarray | None = None,
                       pad: float = BOX_PAD, classes: np.ndarray | None = None,
                       fallback: bool = True, rule: str = "posterior",
                       thin: dict[int, float] | None = None) -> tuple[np.ndarray, int]:
    """(label, number of boxes that fell back to the teacher) of (C, H, W) probabilities.

    ``fallback=False``: the student alone, the teacher's mask is never used (and 0 boxes fall
    back). ``rule``: :mod:`ml.prediction.box_decode`. See the module docstring for the rules.
    """
    _, h, w = probs.shape
    bc = BoxConstraint(boxes, classes, pad, h, w, rule, thin)
    label = bc.band(0, probs)
    bc.finish(label)
    return label, bc.fallback(label, teacher) if fallback else 0
