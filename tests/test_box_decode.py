"""The box rules: the tightness prior keeps the student's shape and never leaves a box empty."""

from __future__ import annotations

import numpy as np
import pytest

from ml.prediction.box_decode import check_rule, tight_mask
from ml.prediction.predict import constrain_to_boxes


def _faint_bar(h: int = 20, w: int = 30) -> np.ndarray:
    """A faint horizontal defect (score 0.2) in rows 8-11 on a 0.01 background."""
    s = np.full((h, w), 0.01, np.float32)
    s[8:12, :] = 0.2
    return s


def test_tight_keeps_a_faint_defect_that_the_posterior_rule_drops():
    probs = np.stack([1 - _faint_bar(), _faint_bar()])
    box = np.array([[0, 8, 30, 12]], np.float32)  # tight around the defect
    post, _ = constrain_to_boxes(probs, box, pad=2, fallback=False, rule="posterior")
    tight, _ = constrain_to_boxes(probs, box, pad=2, fallback=False, rule="tight")
    assert not post.any()  # 0.2 < 0.5: the old rule leaves the box empty
    assert (tight[8:12] == 1).all() and tight.sum() == 4 * 30  # not the padding rows


def test_a_loose_box_takes_the_half_maximum_region():
    m = tight_mask(_faint_bar())  # the box is 20 rows, the defect 4: no fraction crosses it
    assert m[8:12].all() and m.sum() == 4 * 30


def test_tight_lowers_its_threshold_until_the_defect_crosses_the_box():
    # a bright core (1.0) in the middle and a weaker tail (0.35) reaching the box's sides:
    # the core alone crosses a third of the columns, core + tail all of them
    score = np.full((2, 30), 0.35, np.float32)
    score[:, 10:20] = 1.0
    padded = np.pad(score, 3, constant_values=0.05)
    inner = (slice(3, 5), slice(3, 33))
    m = tight_mask(padded, inner)
    assert m[inner].all() and m.sum() == 2 * 30  # core + tail, none of the padding
    half = tight_mask(padded)  # counted on the padded box, coverage fails: the core alone
    assert half.sum() == 2 * 10


def test_tight_on_edge_cases():
    assert not tight_mask(np.zeros((5, 5), np.float32)).any()  # nothing at all: stays empty
    assert tight_mask(np.full((1, 1), 0.3, np.float32)).all()  # a one-pixel box
    assert tight_mask(np.zeros((0, 4), np.float32)).shape == (0, 4)


def test_constrain_with_degenerate_boxes_does_not_crash():
    probs = np.stack([np.full((16, 16), 0.9, np.float32), np.full((16, 16), 0.1, np.float32)])
    boxes = np.array([[3, 3, 3, 3], [0, 0, 16, 1], [15, 15, 16, 16]], np.float32)
    label, fell = constrain_to_boxes(probs, boxes, pad=0, fallback=False, rule="tight")
    assert label.shape == (16, 16) and fell == 0
    assert label[0].all()  # the border box along the top row


def test_unknown_rule_is_named():
    with pytest.raises(ValueError, match="tight, posterior"):
        check_rule("otsu")


def test_a_thin_class_keeps_the_centre_line_of_the_students_band():
    from ml.prediction.box_decode import centreline

    band = np.zeros((40, 60), bool)
    band[16:25, 5:55] = True  # a 9 px band: the student's cell-wide mask of a thin line
    line = centreline(band, 3.0)
    assert line[19:22, 12:48].all()  # the band's centre rows, 3 px wide (short of its ends)
    assert not line[:18].any() and not line[23:].any() and not (line & ~band).any()
    assert centreline(band, 0.2).sum(axis=0)[10:50].max() == 1  # at least one pixel wide
    assert not centreline(np.zeros((5, 5), bool), 3.0).any()


def test_boxes_of_a_thin_class_are_drawn_as_lines_and_other_classes_are_not():
    score = np.full((40, 120), 0.01, np.float32)
    score[16:25, :] = 0.6  # a band one output cell wide through both boxes
    probs = np.stack([1 - score, score / 2, score / 2])
    boxes = np.array([[0, 14, 60, 27], [60, 14, 120, 27]], np.float32)
    classes = np.array([1, 2])
    wide, _ = constrain_to_boxes(probs, boxes, classes=classes, pad=0, fallback=False,
                                 rule="tight")
    thin, _ = constrain_to_boxes(probs, boxes, classes=classes, pad=0, fallback=False,
                                 rule="tight", thin={1: 3.0})
    assert (wide[:, :60] == 1).sum() == 9 * 60
    assert 2.5 * 60 <= (thin[:, :60] == 1).sum() <= 3 * 60 and not thin[:19, 10:50].any()
    np.testing.assert_array_equal(thin[:, 60:], wide[:, 60:])  # class 2 is not thin
