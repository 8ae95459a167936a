"""Confusion matrix and scores against hand-computed matrices."""

import math

import numpy as np
import pytest

from ml.evaluation.metrics import confusion, scores


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
    import torch

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


# ----------------------------------------------------------------- ground-truth matching
def _gt_project(tmp_path):
    from ml.project.store import Project
    from tests.conftest import write_photo

    for name in ("site/a/p1.jpg", "site/b/p2.jpg", "p3.png", "p4.jpg"):
        write_photo(tmp_path / "photos" / name, 8, 6)
    return Project.create(tmp_path / "proj", tmp_path / "photos")


def test_label_file_prefers_the_keys_subfolders_then_the_bare_stem(tmp_path):
    from ml.common.images import label_file, save_label

    lab = np.zeros((6, 8), np.uint8)
    save_label(tmp_path / "gt" / "site" / "a" / "p1.png", lab)
    save_label(tmp_path / "gt" / "p1.png", lab)
    save_label(tmp_path / "gt" / "p2.png", lab)
    assert label_file(tmp_path / "gt", "site/a/p1.jpg") == tmp_path / "gt/site/a/p1.png"
    assert label_file(tmp_path / "gt", "site/b/p2.jpg") == tmp_path / "gt/p2.png"
    assert label_file(tmp_path / "gt", "other/p9.jpg") is None


def test_score_project_matches_by_the_one_rule_and_lists_what_it_left_out(tmp_path):
    from ml.common.images import save_label
    from ml.evaluation.metrics import score_project

    proj = _gt_project(tmp_path)
    defect = np.zeros((6, 8), np.uint8)
    defect[1:3, 2:5] = 1
    for key in ("site/a/p1.jpg", "site/b/p2.jpg", "p4.jpg"):
        proj.save_teacher_mask(key, defect, "box", {})
    gt = tmp_path / "gt"
    save_label(gt / "site" / "a" / "p1.png", defect)  # key with subfolders
    save_label(gt / "p2.png", defect)  # bare stem
    save_label(gt / "p3.png", defect)  # a photo without a teacher mask
    save_label(gt / "p4.png", np.zeros((3, 3), np.uint8))  # wrong size
    save_label(gt / "zzz.png", defect)  # no such photo
    r = score_project(proj, gt, "teacher")
    assert r.scored == ("site/a/p1.jpg", "site/b/p2.jpg")
    assert r.missing == ("p3.png",)
    assert list(r.failed) == ["p4.jpg"]
    assert r.unmatched == ("zzz.png",)
    assert r.scores["binary_iou"] == 1.0 and int(r.confusion.sum()) == 2 * defect.size


def test_score_project_can_count_a_missing_mask_as_background(tmp_path):
    from ml.common.images import save_label
    from ml.evaluation.metrics import score_project

    proj = _gt_project(tmp_path)
    defect = np.zeros((6, 8), np.uint8)
    defect[0:2, 0:4] = 1
    save_label(tmp_path / "gt" / "p3.png", defect)
    r = score_project(proj, tmp_path / "gt", "teacher", missing_as_background=True)
    assert r.scored == ("p3.png",) and r.missing == ()
    assert r.scores["binary_recall"] == 0.0 and r.confusion[1, 0] == 8
    with pytest.raises(FileNotFoundError):
        score_project(proj, tmp_path / "nowhere", "teacher")
