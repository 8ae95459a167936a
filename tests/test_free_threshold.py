"""The box-free decision threshold: chosen on validation pixels, stored in the card, applied."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.common.classes import IGNORE
from ml.evaluation.free_threshold import GRID, FreeThreshold, ScoreCurve
from ml.prediction.predict import free_label


def test_the_curve_keeps_the_threshold_that_best_matches_the_labels():
    # defects score 0.85-0.95; the textured background scores up to 0.75: only a threshold
    # of 0.75 or more keeps the background out without losing a defect
    rng = np.random.default_rng(0)
    truth = np.zeros((40, 40), np.uint8)
    truth[10:20, 10:20] = 1
    score = np.where(truth > 0, rng.uniform(0.85, 0.95, truth.shape),
                     rng.uniform(0.0, 0.75, truth.shape))
    curve = ScoreCurve()
    curve.add(score, truth)
    chosen = curve.choice()
    assert chosen is not None and chosen.threshold == 0.75 and chosen.iou == 1.0
    assert chosen.iou_at_half < 1.0  # the argmax-like 0.5 lets background in
    assert [r[0] for r in chosen.curve] == list(GRID) and chosen.pixels == truth.size


def test_ignored_pixels_do_not_count_and_no_defect_chooses_nothing():
    curve = ScoreCurve()
    curve.add(np.full((4, 4), 0.9), np.zeros((4, 4), np.uint8))
    assert curve.choice() is None  # nothing to match: the argmax stays
    curve.add(np.full((2, 2), 0.99), np.full((2, 2), IGNORE, np.uint8))
    assert curve.choice() is None and curve.counts().sum() == 16


def test_ranks_counts_add_up_and_the_choice_round_trips_through_json():
    a, b = ScoreCurve(), ScoreCurve()
    a.add(np.array([0.9, 0.2]), np.array([1, 0]))
    b.add(np.array([0.6, 0.4]), np.array([1, 0]))
    both = ScoreCurve(*(a.counts() + b.counts()))
    assert both.counts().sum() == 4 and both.iou(0.5) == 1.0
    chosen = both.choice()
    assert FreeThreshold.from_json(chosen.to_json()) == chosen
    assert FreeThreshold.from_json({}) is None and FreeThreshold.from_json(None) is None


def test_free_label_keeps_a_defect_only_where_its_score_passes():
    # pixel 0: background 0.3 (score 0.7), pixel 1: background 0.1 (score 0.9),
    # pixel 2: background 0.6; class 2 is the likeliest defect class everywhere
    probs = torch.tensor([[0.3, 0.1, 0.6], [0.3, 0.4, 0.1], [0.4, 0.5, 0.3]])[:, None, :]
    argmax = probs.argmax(0)
    assert free_label(probs, argmax, None).tolist() == [[2, 2, 0]]  # the argmax
    assert free_label(probs, argmax, 0.5).tolist() == [[2, 2, 0]]
    assert free_label(probs, argmax, 0.8).tolist() == [[0, 2, 0]]


@pytest.mark.parametrize("option, expected", [("card", 0.8), (None, None), (0.6, 0.6)])
def test_the_predictor_takes_the_cards_threshold_unless_told(option, expected):
    from ml.prediction.predict import Predictor
    from ml.student.config import ModelCard, StudentConfig
    from ml.student.models import build_model

    student = StudentConfig(input_size=28, backbone_weights="none", taps=(0, 1),
                            decoder_channels=32)
    card = ModelCard(student, free_threshold=FreeThreshold(0.8, 0.7, 0.5, 100).to_json())
    pred = Predictor(build_model(student), card, "cpu", free_threshold=option)
    assert pred.free_threshold == expected and pred.settings()["free_threshold"] == expected
    label = pred.predict(np.zeros((40, 50, 3), np.uint8)).label
    assert label.shape == (40, 50)


def test_an_old_card_has_no_threshold_and_a_new_one_keeps_it(tmp_path):
    import json

    from ml.prediction.predict import card_free_threshold
    from ml.student.config import ModelCard

    ModelCard(free_threshold={"threshold": 0.75, "iou": 0.6}).save(tmp_path / "c.json")
    card = ModelCard.load(tmp_path / "c.json")
    assert card_free_threshold(card) == 0.75
    old = json.loads((tmp_path / "c.json").read_text())
    del old["free_threshold"]  # a card written before the threshold
    (tmp_path / "c.json").write_text(json.dumps(old))
    assert card_free_threshold(ModelCard.load(tmp_path / "c.json")) is None
