"""Ridge and auto teachers, teacher confidence (stored, loaded, weighting the loss), empty boxes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from app.cli import main
from ml.project.store import Box, Project
from ml.student.config import TrainConfig
from ml.teachers import EMPTY_COVER, make_teacher
from ml.teachers.auto import AutoTeacher
from ml.teachers.pseudo_label import PseudoLabelResult, pseudo_label_project
from ml.training import data as D
from ml.training.losses import B2PLoss, asymmetric_dice

LINE_BOX = (20, 20, 100, 60)  # a thin diagonal line from (22, 22) to (98, 58)
BLOB_BOX = (130, 30, 170, 70)  # a filled disc of radius 18 at (150, 50)


def scene(dark: bool = True, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A shaded, grainy grey photo (like a road or a blade) with a 2 px line and a disc.

    Returns (image, line truth, disc truth). The line's colour overlaps the grain's: colour
    alone (GrabCut) cannot find it, its shape can.
    """
    rng = np.random.default_rng(seed)
    xx = np.mgrid[0:96, 0:200][1]
    img = 128 + 20 * np.sin(xx / 9.0) + rng.integers(-24, 25, (96, 200))
    line = np.zeros((96, 200), np.uint8)
    cv2.line(line, (22, 22), (98, 58), 1, 2)
    disc = np.zeros((96, 200), np.uint8)
    cv2.circle(disc, (150, 50), 18, 1, -1)
    img[line > 0] += -50 if dark else 50
    img[disc > 0] = 40
    img = np.clip(img, 0, 255).astype(np.uint8)
    return np.dstack([img] * 3), line > 0, disc > 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / max(1, int((a | b).sum()))


@pytest.mark.parametrize("dark", [True, False])
def test_ridge_finds_dark_and_bright_lines(dark):
    img, line, _ = scene(dark)
    t = make_teacher("ridge")
    t.set_image(img)
    label = t.predict([LINE_BOX], [1])
    assert t.polarity == ["dark" if dark else "bright"]
    assert iou(label > 0, line) > 0.4  # a box fill scores ~0.05 here
    assert iou(label > 0, line) > 3 * iou(np.pad(np.ones((40, 80), bool), ((20, 36), (20, 100))),
                                          line)


def test_auto_picks_ridge_for_a_line_and_another_for_a_blob():
    img, line, disc = scene()
    t = make_teacher("auto", sam=False)
    t.set_image(img)
    out = t.predict_with_confidence([LINE_BOX, BLOB_BOX], [1, 1])
    assert t.choices[0] == "ridge"
    assert t.choices[1] in ("grabcut", "box")
    assert iou(out.label > 0, line | disc) > 0.5
    assert min(out.coverage) >= EMPTY_COVER


def test_auto_records_what_it_weighed_per_box_and_picks_the_best_score():
    img, line, _ = scene()
    t = AutoTeacher(sam=False, record=True)
    t.set_image(img)
    label = t.predict([LINE_BOX, BLOB_BOX], [1, 1])
    assert [w.choice for w in t.weighed] == t.choices
    for w in t.weighed:
        x0, y0, x1, y1 = w.window
        assert w.window[0] <= w.box[0] and w.box[2] <= w.window[2]
        assert all(m.shape == (y1 - y0, x1 - x0) and m.dtype == bool for m in w.masks.values())
        assert "box" in w.masks and set(w.scores) == set(w.masks)
        assert w.choice == max(w.scores, key=w.scores.get)
    w = t.weighed[0]  # the line's winner is what the teacher painted in its box
    x0, y0 = w.window[:2]
    bx0, by0, bx1, by1 = w.box
    painted = label[by0:by1, bx0:bx1] > 0
    picked = w.masks[w.choice][by0 - y0:by1 - y0, bx0 - x0:bx1 - x0]
    assert iou(painted, picked) > 0.9
    t.record = False
    t.predict([LINE_BOX], [1])
    assert t.weighed == []


def test_auto_never_leaves_a_box_empty_on_a_flat_photo():
    img = np.full((64, 64, 3), 90, np.uint8)
    t = make_teacher("auto", sam=False)
    t.set_image(img)
    out = t.predict_with_confidence([(10, 10, 40, 30), (0, 0, 64, 64)], [1, 1])
    assert all(c >= EMPTY_COVER for c in out.coverage)
    assert t.choices == ["box", "box"]  # nothing to see: the shrunken box fill, low confidence
    assert out.confidence[20, 25] < 128


def test_confidence_low_on_fallback_and_edges_high_outside_boxes():
    img, _, _ = scene()
    for name in ("box", "grabcut", "ridge"):
        t = make_teacher(name)
        t.set_image(img)
        out = t.predict_with_confidence([BLOB_BOX, (5, 5, 7, 7)], [1, 1])
        assert out.confidence.dtype == np.uint8 and out.confidence.shape == img.shape[:2]
        assert out.confidence[90, 190] == 255  # background outside all boxes keeps weight 1
        assert out.confidence[6, 6] < 128  # a 2 px box: a box-fill guess
        assert out.confidence[BLOB_BOX[1]:BLOB_BOX[3], BLOB_BOX[0]:BLOB_BOX[2]].min() < 255


def test_edge_cases_do_not_crash_and_are_counted():
    img, _, _ = scene()
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 180, (300, 2))
    many = np.hstack([xy, xy + rng.uniform(1, 20, (300, 2))])
    odd = np.array([[10, 10, 10, 10], [10, 10, 11, 11], [190, 0, 200, 96], [0, 80, 200, 96]])
    boxes = np.vstack([odd, many]).astype(np.float32)
    for name in ("ridge", "auto"):
        t = make_teacher(name, **({"sam": False} if name == "auto" else {}))
        t.set_image(img)
        out = t.predict_with_confidence(boxes, np.ones(len(boxes), int))
        assert len(out.coverage) == len(boxes)
        assert out.coverage[0] == 0.0  # zero-pixel box: no pixel, counted as empty
        assert out.empty[name] >= 1
        assert out.coverage[1] > 0  # a one-pixel box is filled
    with pytest.raises(RuntimeError):
        make_teacher("ridge").predict([LINE_BOX], [1])


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a", "b"):
        Image.fromarray(scene(seed=ord(name))[0]).save(photos / f"{name}.png")
    p = Project.create(tmp_path / "proj", photos)
    # the third is the smallest box the store keeps (1 px)
    p.set_boxes("a.png", [Box(*LINE_BOX, 1), Box(*BLOB_BOX, 1), Box(10, 10, 11, 11, 1)])
    return p  # b.png has no boxes


def test_pseudo_label_stores_confidence_and_counts_empty_boxes(proj):
    teacher = AutoTeacher(sam=False)
    res = pseudo_label_project(proj, teacher)
    assert isinstance(res, PseudoLabelResult)
    assert res.done == ("a.png",) and res.boxes == 3
    assert set(teacher.kinds) == {1}  # surveyed first; the kind is stored with the mask
    assert proj.record("a.png").teacher.settings["kinds"] == {"1": teacher.kinds[1]}
    assert set(res.empty_boxes) == {"auto", "ridge", "grabcut"}
    assert "under 2 % covered" in res.summary()
    conf = proj.load_teacher_confidence("a.png")
    assert conf is not None and conf.shape == (96, 200) and conf.min() < 255
    samples = D.load_samples(proj, ["a.png"], long_side=400, confidence=True)
    assert np.array_equal(samples["a.png"].weight, conf)
    x, y, w = D.FixedViews(samples, D.fixed_views(samples, ["a.png"], crop=64), 32)[0]
    assert w.shape == y.shape and float(w.min()) >= 0 and float(w.max()) <= 1
    proj.save_edited_mask("a.png", proj.load_mask("a.png"))  # a person's edit is sure
    assert proj.load_teacher_confidence("a.png") is None


def test_cli_auto_without_boxes_says_so(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(scene()[0]).save(photos / "a.png")
    Project.create(tmp_path / "proj", photos)
    assert main(["pseudo-label", str(tmp_path / "proj"), "--teacher", "auto"]) == 1
    assert "no photo has a box" in capsys.readouterr().err


def test_cli_summary_reports_empty_boxes(proj, capsys):
    assert main(["pseudo-label", str(proj.root), "--teacher", "ridge"]) == 0
    out = capsys.readouterr().out
    assert "3 boxes; under 2 % covered: ridge 0" in out  # the 0.5 px box fills its pixel


def test_loss_weight_lowers_the_share_of_unsure_pixels():
    torch.manual_seed(0)
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:6, 2:6] = 1
    logits = torch.randn(1, 2, 8, 8)
    logits[0, 1, 2:4] += 5.0  # sure of the top half of the defect, wrong nowhere else...
    logits[0, 0, 4:6, 2:6] += 5.0  # ...and wrong on its bottom half
    out = {"fine": logits, "binary": logits}
    loss = B2PLoss(TrainConfig(self_correct=False), 2)
    full, _ = loss(out, target)
    ones, _ = loss(out, target, weight=torch.ones(1, 8, 8))
    assert torch.isclose(full, ones, atol=1e-5)
    unsure = torch.ones(1, 8, 8)
    unsure[0, 4:6, 2:6] = 0.1  # the teacher was unsure where the student disagrees
    low, _ = loss(out, target, weight=unsure)
    assert low < full
    p = torch.softmax(logits, 1)[:, 1]
    assert asymmetric_dice(p, target, weight=unsure) < asymmetric_dice(p, target)


def test_auto_survey_decides_each_class_kind_from_its_boxes():
    photos = [scene(seed=s)[0] for s in range(3)]
    t = AutoTeacher(sam=False, record=True)
    kinds = t.survey((img, [LINE_BOX, BLOB_BOX], [1, 2]) for img in photos)
    assert kinds == {1: "thin", 2: "region"}
    assert t.settings()["kinds"] == {"1": "thin", "2": "region"}
    img, line, disc = scene(seed=5)
    t.set_image(img)
    t.predict([LINE_BOX, BLOB_BOX], [1, 2])
    assert t.choices[0] == "ridge" and t.choices[1] in ("grabcut", "box")
    assert [w.kind for w in t.weighed] == ["thin", "region"]
    assert t.weighed[0].flank > t.weighed[1].flank or np.isnan(t.weighed[1].flank)


def test_flank_contrast_tells_a_line_from_a_blob_rim():
    from ml.teachers.auto import flank_contrast

    grey = np.full((60, 60), 200.0)
    box = np.zeros((60, 60), bool)
    box[10:50, 10:50] = True
    line = np.zeros((60, 60), bool)
    line[29:31, 10:50] = True  # a 2 px dark line across the box, background on both flanks
    grey[line] = 50
    assert flank_contrast(grey, line, box) > 0.9
    blob = np.full((60, 60), 200.0)
    yy, xx = np.mgrid[0:60, 0:60]
    r = np.hypot(yy - 30, xx - 30)
    blob[r < 19] = 80  # a dark disc filling the box ...
    rim = (r >= 16) & (r < 19)  # ... whose rim a ridge mask would catch
    blob[rim] = 50
    assert flank_contrast(blob, rim, box) < 0.6
