"""Confusion matrix and scores against hand-computed matrices."""

import math

import numpy as np
import pytest

from ml.metrics import confusion, scores


def test_confusion_counts_rows_gt_cols_pred_and_skips_ignore():
    gt = np.array([[0, 0, 1], [2, 255, 1]], np.uint8)
    pred = np.array([[0, 1, 1], [1, 2, 0]], np.uint8)
    cm = confusion(pred, gt, 3)
    expected = np.array([[1, 1, 0],   # gt 0: one right, one called 1
                         [1, 1, 0],   # gt 1: one right, one called 0
                         [0, 1, 0]])  # gt 2: called 1; the 255 pixel is not counted
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, expected)


def test_confusion_matrices_add_over_images_and_accept_tensors():
    torch = pytest.importorskip("torch")
    a = confusion(torch.tensor([[0, 1]]), torch.tensor([[0, 1]]), 2)
    b = confusion(np.array([1, 1]), np.array([0, 1]), 2)
    both = confusion(np.array([0, 1, 1, 1]), np.array([0, 1, 0, 1]), 2)
    np.testing.assert_array_equal(a + b, both)


def test_confusion_rejects_bad_input():
    with pytest.raises(ValueError, match="differ in size"):
        confusion(np.zeros(3), np.zeros(4), 2)
    with pytest.raises(ValueError, match="outside"):
        confusion(np.array([3]), np.array([0]), 3)


def test_scores_on_hand_computed_matrix():
    cm = np.array([[6, 1, 1],
                   [2, 3, 0],
                   [0, 1, 2]])
    s = scores(cm, ["background", "dirt", "damage"])
    pc = s["per_class"]
    # background: TP 6, FP 2, FN 2
    assert pc["background"]["iou"] == pytest.approx(0.6)
    assert pc["background"]["precision"] == pytest.approx(0.75)
    assert pc["background"]["support"] == 8
    # dirt: TP 3, FP 2, FN 2; damage: TP 2, FP 1, FN 1
    assert pc["dirt"]["iou"] == pytest.approx(3 / 7)
    assert pc["dirt"]["f1"] == pytest.approx(0.6)
    assert pc["damage"]["iou"] == pytest.approx(0.5)
    assert pc["damage"]["recall"] == pytest.approx(2 / 3)
    assert s["miou"] == pytest.approx((0.6 + 3 / 7 + 0.5) / 3)
    assert s["anomaly_miou"] == pytest.approx((3 / 7 + 0.5) / 2)
    assert s["anomaly_f1"] == pytest.approx((0.6 + 2 / 3) / 2)
    # binary: defect TP 3+0+1+2 = 6, FP 1+1 = 2, FN 2+0 = 2
    assert s["binary_iou"] == pytest.approx(0.6)
    assert s["binary_precision"] == pytest.approx(0.75)
    assert s["binary_recall"] == pytest.approx(0.75)
    assert s["binary_f1"] == pytest.approx(0.75)
    assert s["pixel_accuracy"] == pytest.approx(11 / 16)


def test_class_absent_everywhere_is_nan_and_left_out_of_means():
    cm = np.array([[5, 1, 0],
                   [1, 3, 0],
                   [0, 0, 0]])
    s = scores(cm)
    assert math.isnan(s["per_class"]["2"]["iou"])
    assert math.isnan(s["per_class"]["2"]["f1"])
    assert s["anomaly_miou"] == pytest.approx(3 / 5)  # dirt only
    assert s["miou"] == pytest.approx((5 / 7 + 3 / 5) / 2)


def test_no_defects_anywhere_gives_nan_anomaly_scores():
    s = scores(np.array([[10, 0], [0, 0]]))
    assert math.isnan(s["anomaly_miou"]) and math.isnan(s["binary_iou"])
    assert s["miou"] == pytest.approx(1.0)


def test_missed_class_scores_zero_not_nan():
    s = scores(np.array([[4, 0], [2, 0]]))  # defect present, never predicted
    assert s["per_class"]["1"]["iou"] == 0.0
    assert math.isnan(s["per_class"]["1"]["precision"])
    assert s["per_class"]["1"]["recall"] == 0.0
