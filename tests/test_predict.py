"""Prediction: resize and tiled modes, box constraint, corrections, project/folder/CLI runs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.common.classes import DEFAULT_CLASSES
from ml.evaluation.corrections import corrections
from ml.prediction import batch_predict as BP
from ml.prediction import predict as P
from ml.project.records import boxes_to_arrays
from ml.project.store import Box
from ml.student.checkpoint import model_id, save_checkpoint
from ml.student.config import ModelCard, StudentConfig
from ml.student.models import build_model

TINY = StudentConfig(input_size=28, backbone_weights="none", taps=(0, 1), decoder_channels=32)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model(TINY).eval()
    card = ModelCard(student=TINY, classes=[c.to_json() for c in DEFAULT_CLASSES])
    return save_checkpoint(tmp_path_factory.mktemp("model") / "m", model, card)


@pytest.fixture(scope="module")
def predictor(model_dir) -> P.Predictor:
    return P.Predictor.from_dir(model_dir, "cpu")


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("tiled", [False, True])
def test_predict_gives_maps_of_the_photo_size(predictor, tiled):
    predictor.tiled = tiled
    image = _photo(45, 70)
    res = predictor.predict(image, return_probs=True)
    assert res.label.shape == res.confidence.shape == (45, 70)
    assert res.label.dtype == res.confidence.dtype == np.uint8
    assert res.probs.shape == (3, 45, 70) and res.probs.dtype == np.float16
    np.testing.assert_allclose(res.probs.astype(np.float32).sum(0), 1.0, atol=5e-3)
    np.testing.assert_array_equal(res.label, predictor.probabilities(image).argmax(0))
    # confidence is the top probability on a 0..255 scale (a third at least for 3 classes)
    assert res.confidence.min() >= 84
    np.testing.assert_allclose(res.confidence, res.probs.max(0).astype(np.float32) * 255,
                               atol=1.5)


def test_tiled_equals_whole_image_on_one_tile(predictor):
    image = _photo(28, 28, seed=1)
    predictor.tiled = False
    whole = predictor.probabilities(image)
    predictor.tiled = True
    tiled = predictor.probabilities(image)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    # smaller than a tile: reflect-padded to one tile, then cropped back
    small = _photo(20, 25, seed=2)
    padded = np.pad(small, ((0, 8), (0, 3), (0, 0)), mode="reflect")
    np.testing.assert_allclose(predictor.probabilities(small),
                               predictor.probabilities(padded)[:, :20, :25], atol=1e-5)


def test_tiles_cover_the_image_and_blend_with_positive_weights():
    assert P._starts(100, 28, 21) == [0, 21, 42, 63, 72]
    assert P._starts(20, 28, 21) == [0]
    w = P._ramp_window(28, 7)
    assert w.min() > 0 and w.max() == 1 and torch.equal(w, w.T)
    assert w[0, 0] < w[3, 3] < w[14, 14]


def test_box_constraint_keeps_student_pixels_inside_boxes_only():
    probs = np.zeros((3, 20, 20), np.float32)
    probs[0] = 1.0
    probs[:, 2:6, 2:6] = np.array([0.4, 0.25, 0.35])[:, None, None]  # defect, damage likeliest
    probs[:, 15:18, 15:18] = np.array([0.1, 0.9, 0.0])[:, None, None]  # outside every box
    label, fallbacks = P.constrain_to_boxes(probs, np.array([[3, 3, 5, 5]]), pad=1)
    assert fallbacks == 0
    assert (label[2:6, 2:6] == 2).all()  # p(background) < 0.5: defect, class = best defect
    assert label.sum() == 2 * 16
    unconstrained = probs.argmax(0)
    assert unconstrained[2, 2] == 0 and unconstrained[16, 16] == 1


def test_by_default_a_defect_stays_inside_its_box(predictor):
    # a student sure of a defect well beyond the box: by default the box holds the defect
    probs = np.zeros((3, 20, 20), np.float32)
    probs[0] = 1.0
    probs[:, 2:12, 2:12] = np.array([0.02, 0.98, 0.0])[:, None, None]
    box = np.array([[5, 5, 9, 9]], np.float32)
    for rule in ("tight", "posterior"):
        label, _ = predictor.constrain(probs, box, None, np.array([1]), False, rule=rule)
        assert np.flatnonzero(label.any(1)).tolist() == [5, 6, 7, 8], rule
        assert np.flatnonzero(label.any(0)).tolist() == [5, 6, 7, 8], rule
    padded = P.Predictor(predictor.model, predictor.card, "cpu", box_pad=2)
    label, _ = padded.constrain(probs, box, None, np.array([1]), False, rule="tight")
    assert np.count_nonzero(label) == 8 * 8  # a pad lets it reach 2 px past each side


def test_box_class_sets_the_pixel_class_and_overlaps_take_the_likelier():
    probs = np.zeros((3, 20, 20), np.float32)
    probs[0] = 1.0
    probs[:, 2:8, 2:8] = np.array([0.2, 0.3, 0.5])[:, None, None]  # student: damage (2)
    probs[:, 5:8, 5:8] = np.array([0.2, 0.7, 0.1])[:, None, None]  # student: dirt (1)
    boxes = np.array([[2, 2, 6, 6], [5, 5, 8, 8], [12, 12, 14, 14]], np.float32)
    label, _ = P.constrain_to_boxes(probs, boxes, pad=0, classes=np.array([1, 2, 9]))
    assert (label[2:5, 2:5] == 1).all()  # only box 1 (dirt): dirt, though damage is likelier
    assert (label[6:8, 6:8] == 2).all()  # only box 2 (damage)
    assert (label[5, 5] == 1)  # both boxes: dirt (0.7) beats damage (0.1)
    assert label[13, 13] == 0  # a class the model lacks: the student's choice, here background
    probs[:, 12:14, 12:14] = np.array([0.1, 0.2, 0.7])[:, None, None]
    label, _ = P.constrain_to_boxes(probs, boxes, pad=0, classes=np.array([1, 2, 9]))
    assert (label[12:14, 12:14] == 2).all()


def test_box_without_student_defect_falls_back_to_the_teacher():
    probs = np.zeros((3, 20, 20), np.float32)
    probs[0] = 1.0
    probs[:, 2:5, 2:5] = np.array([0.0, 1.0, 0.0])[:, None, None]
    teacher = np.zeros((20, 20), np.uint8)
    teacher[3, 3] = 1  # in box A, where the student found something
    teacher[12:14, 12:14] = 2  # in box B, where it found nothing
    teacher[18, 1] = 1  # outside both boxes
    boxes = np.array([[2, 2, 5, 5], [10, 10, 16, 16]], np.float32)
    label, fallbacks = P.constrain_to_boxes(probs, boxes, teacher, pad=0)
    assert fallbacks == 1
    assert (label[12:14, 12:14] == 2).all() and (label[2:5, 2:5] == 1).all()
    assert label[18, 1] == 0 and np.count_nonzero(label) == 9 + 4
    label, fallbacks = P.constrain_to_boxes(probs, boxes, None, pad=0)
    assert fallbacks == 0 and np.count_nonzero(label) == 9
    # the student alone: box B stays empty though the teacher has a mask there
    label, fallbacks = P.constrain_to_boxes(probs, boxes, teacher, pad=0, fallback=False)
    assert fallbacks == 0 and np.count_nonzero(label) == 9 and not label[10:16, 10:16].any()


def test_predict_project_stores_masks_and_records_failures(project, model_dir):
    key_a = project.find_key("a")
    project.set_boxes(key_a, [Box(10, 10, 30, 30, 1)])
    teacher = np.zeros((48, 64), np.uint8)
    teacher[12:20, 12:20] = 1
    project.save_teacher_mask(key_a, teacher, "box")
    broken = project.image_path(project.find_key("c"))
    broken.write_bytes(b"not an image")
    events = []
    summary = BP.predict_project(project, model_dir, device="cpu", progress=events.append)
    assert summary.model == model_id(model_dir)
    assert len(summary.done) == 2 and list(summary.failed) == [project.find_key("c")]
    assert [e.done for e in events] == [1, 2, 3]
    label = project.load_mask(key_a, "student")
    assert label.shape == (48, 64)
    outside = np.ones_like(label, bool)
    outside[6:35, 6:35] = False  # box padded by 4 px
    assert not label[outside].any()
    corr = project.load_student_extra(key_a, "corrections")
    np.testing.assert_array_equal(corr, corrections(label, teacher))
    assert project.load_student_extra(key_a, "confidence").shape == (48, 64)
    rec = project.record(key_a).student
    assert rec.source == summary.model and rec.settings["box_constraint"] is True
    assert project.load_student_extra(project.find_key("b"), "corrections") is None


def test_predict_project_stops_when_asked(project, model_dir):
    summary = BP.predict_project(project, model_dir, device="cpu", should_stop=lambda: True)
    assert summary.stopped and len(summary.done) == 0


def test_predict_project_rejects_a_model_with_other_classes(project, tmp_path):
    cfg = replace(TINY, num_classes=5)
    d = save_checkpoint(tmp_path / "five", build_model(cfg), ModelCard(student=cfg))
    with pytest.raises(ValueError, match="5 classes"):
        BP.predict_project(project, d, device="cpu")


def test_predict_folder_writes_label_and_confidence(photo_dir, model_dir, tmp_path):
    out = tmp_path / "out"
    summary = BP.predict_folder(photo_dir, model_dir, out, tiled=True, device="cpu")
    assert len(summary.done) == 3 and not summary.failed
    from ml.common.images import load_label

    assert load_label(out / "a.png").shape == (48, 64)
    assert load_label(out / "T01" / "A" / "LE" / "c_conf.png").shape == (32, 32)


def test_cli_predict_and_eval(project, model_dir, tmp_path, capsys):
    from app.cli import main

    assert main(["predict", str(project.root), "--model", str(model_dir), "--device", "cpu",
                 "--no-box-constraint"]) == 0
    assert "predicted 3/3" in capsys.readouterr().out
    reopened = type(project).open(project.root)
    key = reopened.find_key("b")
    pred = reopened.load_mask(key, "student")
    assert reopened.record(key).student.settings["box_constraint"] is False

    from ml.common.images import save_label

    gt_dir = tmp_path / "gt"
    save_label(gt_dir / "b.png", pred)  # ground truth equal to the prediction
    save_label(gt_dir / "zzz.png", pred)  # no such photo
    out = tmp_path / "scores.json"
    assert main(["eval", str(project.root), "--gt", str(gt_dir), "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["images"] == 1 and printed["unmatched"] == ["zzz.png"]
    assert printed["pixel_accuracy"] == 1.0
    assert sum(map(sum, printed["confusion"])) == pred.size
    assert main(["predict", str(tmp_path / "gt")]) == 1  # not a project and no --out
    assert main(["predict", str(project.root), "--model", str(model_dir), "--box-pad", "-1"]) == 1
    assert "--box-pad must be 0 or more" in capsys.readouterr().err


def test_cli_predict_no_fallback_stores_the_student_alone(project, model_dir, capsys):
    from app.cli import main

    key = project.find_key("a")
    boxes = [Box(2, 2, 20, 20, 1), Box(30, 10, 60, 40, 2)]
    project.set_boxes(key, boxes)
    teacher = np.zeros((48, 64), np.uint8)
    teacher[4:18, 4:18], teacher[12:38, 32:58] = 1, 2
    project.save_teacher_mask(key, teacher, "box")
    assert main(["predict", str(project.root), "--model", str(model_dir), "--device", "cpu",
                 "--no-fallback", "--box-pad", "3"]) == 0
    assert "predicted 3/3" in capsys.readouterr().out
    reopened = type(project).open(project.root)
    settings = reopened.record(key).student.settings
    assert settings["fallback"] is False and settings["box_pad"] == 3
    predictor = P.Predictor.from_dir(model_dir, "cpu", box_pad=3)
    xyxy, cls = boxes_to_arrays(boxes)
    image = reopened.load_image(key)
    alone = predictor.predict(image, xyxy, teacher, box_classes=cls, fallback=False)
    np.testing.assert_array_equal(reopened.load_mask(key, "student"), alone.label)
    product = predictor.predict(image, xyxy, teacher, box_classes=cls)
    # where the student left a box empty, only the product's mask holds the teacher's pixels
    assert alone.fallbacks == 0
    assert np.count_nonzero(product.label) >= np.count_nonzero(alone.label)
    assert product.fallbacks == 0 or np.count_nonzero(product.label) > np.count_nonzero(
        alone.label)


def test_undo_class_weights_removes_the_weighted_ce_prior():
    from ml.prediction.predict import undo_class_weights

    probs = np.array([0.2, 0.8, 0.0], np.float32).reshape(3, 1, 1)
    out = undo_class_weights(probs, np.array([0.4, 4.0, 4.0], np.float32))
    # 0.2/0.4 = 0.5 vs 0.8/4 = 0.2: background wins once the 10x weight is taken out
    assert out[:, 0, 0] == pytest.approx([0.5 / 0.7, 0.2 / 0.7, 0.0])
    assert undo_class_weights(probs, None) is probs


def test_a_crop_trained_model_is_tiled_at_its_training_scale(model_dir):
    from ml.student.config import TrainConfig
    from ml.student.crops import cache_long_side

    model, card = P.load_model(model_dir, "cpu")
    card = replace(card, train=TrainConfig(crop=28))
    pred = P.Predictor(model, card, "cpu")
    seen = []
    forward = pred._forward
    pred._forward = lambda batch: (seen.append(batch.shape), forward(batch))[1]
    probs = pred.probabilities(_photo(60, 100))  # larger than a tile: native 28 px tiles
    assert probs.shape == (3, 60, 100) and seen and all(s[1:3] == (28, 28) for s in seen)
    assert pred.crop_scale((60, 100)) == 1.0 and pred.settings()["mode"] == "tiled"
    big = 4 * cache_long_side(28, 28)  # a photo the training cache would have shrunk 4x
    assert pred.crop_scale((big // 2, big)) == pytest.approx(0.25)


def test_cli_eval_scores_boxed_or_unboxed_photos_with_region_counts(project, tmp_path, capsys):
    from app.cli import main
    from ml.common.images import save_label

    a, b = project.find_key("a"), project.find_key("b")
    project.set_boxes(a, [Box(2, 2, 20, 20, 1)])
    on_a = np.zeros((48, 64), np.uint8)
    on_a[4:18, 4:18] = 1
    on_b = np.zeros((40, 80), np.uint8)
    on_b[5:15, 5:15], on_b[25:35, 60:70] = 2, 2  # the second region is a false alarm
    project.save_teacher_mask(a, on_a, "box")
    project.save_teacher_mask(b, on_b, "box")
    gt_dir = tmp_path / "gt"
    truth_b = np.zeros_like(on_b)
    truth_b[5:15, 5:15] = 2
    save_label(gt_dir / "a.png", on_a)
    save_label(gt_dir / "b.png", truth_b)
    base = ["eval", str(project.root), "--gt", str(gt_dir), "--source", "teacher"]

    assert main([*base, "--photos", "unboxed"]) == 0
    free = json.loads(capsys.readouterr().out)
    assert free["photos"] == "unboxed" and free["images"] == 1
    assert free["true_regions"] == 1 and free["predicted_regions"] == 2
    assert free["region_recall"] == 1.0 and free["region_precision"] == 0.5
    assert free["per_photo"] == {b: [100, 200]}  # for bench/compare_eval.py: one true, one false
    assert main([*base, "--photos", "boxed"]) == 0
    boxed = json.loads(capsys.readouterr().out)
    assert boxed["images"] == 1 and boxed["binary_iou"] == 1.0 and boxed["region_precision"] == 1.0
    project.set_boxes(b, [Box(5, 5, 15, 15, 2, "proposal")])  # accepted: nobody boxed b
    assert main([*base, "--photos", "unboxed"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 1
    project.set_boxes(b, [Box(5, 5, 15, 15, 2)])
    assert main([*base, "--photos", "unboxed"]) == 1
    assert "no ground-truth mask matched an unboxed photo" in capsys.readouterr().err
