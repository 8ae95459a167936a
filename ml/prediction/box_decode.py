"""Which pixels of a person's box are defect: the decision rule of box-constrained prediction.

Rules (``Predictor(box_rule=...)``, ``b2p predict --box-rule``):

* ``tight`` (default): the box tightness prior (Hsu et al., NeurIPS 2019) used at inference.
  A tight box is touched by its defect on every side, so nearly every row and column that
  crosses it holds a defect pixel. The student's defect score inside the box is thresholded
  at a fraction of its maximum there (0.9, 0.8, ... 0.1); the highest fraction whose mask
  still crosses ``coverage`` (90 %) of the box's rows and of its columns wins. A box no
  fraction crosses is a loose box (the defect fills only part of it): there the half-maximum
  region, the usual width of a blurred profile, is taken. A box is never left empty unless the
  student's score is zero throughout it.
* ``posterior``: a pixel is a defect when its prior-corrected defect probability exceeds 0.5
  (the first release's rule; see :mod:`ml.prediction.predict`). A box the student is unsure of stays
  empty, which is where the teacher fallback steps in.

Thin classes (``tight``): a class the project's teacher found to be thin lines (the ``auto``
teacher's survey, recorded in the model card with the class's typical width) is drawn as the
centre line of the student's box mask at that width (:func:`centreline`).

Why ``tight`` is the default: the student's probabilities inside small or faint boxes are low
in absolute terms (a frozen ViT at stride 14 blurs small defects) but still peak on the defect.
The absolute 0.5 rule left 82 % of magnetic_tile's held-out boxes empty; the relative rule keeps
the student's own shape and lets the box say that something is there (README, round 4).
"""

from __future__ import annotations

import numpy as np

BOX_RULES = ("tight", "posterior")
COVERAGE = 0.9  # share of a tight box's rows and columns its defect crosses; slack for hand boxes
FRACTIONS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)
LOOSE = 0.5  # a box no fraction crosses: half maximum, not the lowest fraction (near box fill)


def check_rule(rule: str) -> str:
    """``rule`` when it is one of :data:`BOX_RULES`, else a ValueError that lists them."""
    if rule not in BOX_RULES:
        raise ValueError(f"unknown box rule {rule!r}; choose one of {', '.join(BOX_RULES)}")
    return rule


def tight_fraction(box: np.ndarray, peak: float, coverage: float = COVERAGE) -> float:
    """The fraction of ``peak`` the tight rule thresholds one box's (h, w) scores at: the
    highest of :data:`FRACTIONS` whose mask crosses ``coverage`` of its rows and columns, else
    :data:`LOOSE`."""
    for f in FRACTIONS:
        hit = box >= f * peak
        if hit.any(axis=0).mean() >= coverage and hit.any(axis=1).mean() >= coverage:
            return f
    return LOOSE


def tight_mask(score: np.ndarray, inner: tuple[slice, slice] | None = None,
               coverage: float = COVERAGE) -> np.ndarray:
    """Defect pixels of one box's (h, w) defect ``score`` under the tightness prior.

    ``inner`` selects the box itself inside ``score`` when ``score`` covers a padded box; the
    coverage is counted on the box, the mask is returned for all of ``score``.
    """
    peak = float(score.max()) if score.size else 0.0
    if peak <= 0.0:
        return np.zeros(score.shape, bool)
    box = score[inner] if inner is not None else score
    if box.size == 0:
        box = score
    return score >= tight_fraction(box, peak, coverage) * peak


def centreline(mask: np.ndarray, width: float) -> np.ndarray:
    """``mask`` thinned to its centre line drawn ``width`` pixels wide (never beyond ``mask``).

    For a class whose defects are thin lines: the student's output grid is 4 input pixels a
    cell, so its mask of a 2-4 px crack is a band about a cell wide around the line. Where the
    line runs is the student's (the band's skeleton), how wide it is the class's typical width
    (:attr:`ModelCard.thin_widths`).
    """
    import cv2
    from skimage.morphology import skeletonize

    if not mask.any():
        return mask.copy()
    line = skeletonize(mask)
    off = cv2.distanceTransform((~line).astype(np.uint8), cv2.DIST_L2, 5)
    return mask & (off <= max(width / 2.0, 0.5))
