"""ml.evaluation.paired: the pooled-IoU difference of two models on the same photos, with a
paired bootstrap interval over the photos."""

from __future__ import annotations

import pytest

from ml.evaluation.paired import paired_difference, pooled_iou


def test_pooled_iou_sums_intersections_and_unions_over_photos():
    assert pooled_iou({"a": (10, 20), "b": (0, 20)}) == pytest.approx(0.25)
    assert pooled_iou({}) == 1.0  # nothing to find and nothing found


def test_a_model_better_on_every_photo_is_a_clear_gain():
    before = {f"p{i}": (40 + i, 100) for i in range(30)}
    after = {f"p{i}": (60 + i, 100) for i in range(30)}
    d = paired_difference(before, after)
    assert d.diff == pytest.approx(0.2)
    assert 0 < d.low <= d.diff <= d.high and d.clear and d.photos == 30
    assert d.text() == "+20.0 (+20.0 to +20.0)"  # the same gain on every photo: no spread
    assert d.sentence("b - a") == ("b - a: +20.0 (+20.0 to +20.0) binary IoU points "
                                   "(95 % bootstrap interval over 30 photos)")


def test_a_gain_that_rests_on_one_photo_is_not_clear():
    before = {f"p{i}": (50, 100) for i in range(20)}
    after = {f"p{i}": (45, 100) for i in range(20)}
    after["p0"] = (1000, 1050)  # one large photo carries the pooled gain
    before["p0"] = (100, 1050)
    d = paired_difference(before, after)
    assert d.diff > 0
    assert d.low < 0 < d.high and not d.clear
    assert d.sentence("after - before").endswith("over 20 photos, which holds 0)")


def test_identical_models_differ_by_nothing_and_only_shared_photos_count():
    scores = {"a": (3, 9), "b": (5, 7)}
    d = paired_difference(scores, {**scores, "c": (1, 1)})
    assert (d.diff, d.low, d.high, d.photos) == (0.0, 0.0, 0.0, 2) and not d.clear
    with pytest.raises(ValueError, match="share no scored photo"):
        paired_difference({"a": (1, 2)}, {"b": (1, 2)})


def test_the_interval_is_the_same_for_the_same_seed():
    before = {f"p{i}": (i % 7, 10) for i in range(15)}
    after = {f"p{i}": ((i * 3) % 8, 10) for i in range(15)}
    assert paired_difference(before, after) == paired_difference(before, after)
