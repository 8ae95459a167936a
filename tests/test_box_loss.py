"""Box-consistency loss, box rasters per view, box-centred crops and their bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ml.project.store import Box, Project
from ml.student.config import StudentConfig, TrainConfig
from ml.training import data as D
from ml.training.box_loss import BoxLoss, box_extents, pairwise_loss, projection_loss
from ml.training.box_raster import CUT_X, CUT_Y, OUTSIDE, SHIFT, box_raster, box_window
from ml.training.events import Step

STUDENT = StudentConfig(input_size=56, backbone_weights="none", decoder_channels=32, taps=(0, 1))


def _logits(defect: np.ndarray, strength: float = 20.0) -> dict[str, torch.Tensor]:
    """Binary-head outputs that say ``defect`` (B, H, W) bool with the given confidence."""
    z = torch.where(torch.as_tensor(defect), strength, -strength).float()
    binary = torch.stack([torch.zeros_like(z), z], dim=1)
    return {"binary": binary, "fine": torch.zeros(z.shape[0], 3, *z.shape[1:])}


def _raster(boxes: list[list[float]], size: int = 32, all_boxed: bool = False) -> torch.Tensor:
    r = box_raster(np.array(boxes, np.float32).reshape(-1, 4), all_boxed, (size, size),
                   (0, 0, size, size), size)
    return torch.from_numpy(r).long()[None]


# ---------------------------------------------------------------- the terms
def test_projection_is_near_zero_for_a_defect_touching_every_row_and_column():
    rasters = _raster([[10, 10, 20, 20]])
    diag = np.zeros((1, 32, 32), bool)
    diag[0, np.arange(10, 20), np.arange(10, 20)] = True  # a thin diagonal crack
    full = projection_loss(torch.sigmoid(_logits(diag)["binary"][:, 1]), rasters)
    empty = projection_loss(torch.sigmoid(_logits(np.zeros_like(diag))["binary"][:, 1]),
                            rasters)
    assert float(full) < 0.01
    assert float(empty) > 0.9


def test_projection_ignores_the_axis_a_crop_cuts():
    # the view shows columns 0..31 of a box that goes on to x = 40: only its columns count
    r = box_raster(np.array([[20, 4, 40, 12]], np.float32), False, (32, 64), (0, 0, 32, 32), 32)
    ext, flags = box_extents(torch.from_numpy(r).long())
    assert ext.tolist() == [[4, 20, 11, 31]] and flags.tolist() == [CUT_X]
    one_row = np.zeros((1, 32, 32), bool)
    one_row[0, 8, 20:] = True  # every column of the box holds a defect, most rows do not
    p = torch.sigmoid(_logits(one_row)["binary"][:, 1])
    assert float(projection_loss(p, torch.from_numpy(r).long()[None])) < 0.01


def test_pairwise_is_lower_for_a_colour_consistent_prediction():
    img = torch.zeros(1, 3, 32, 32)
    img[:, 0, :, :16] = 0.8  # red left half, blue right half
    img[:, 2, :, 16:] = 0.8
    rasters = _raster([[4, 4, 28, 28]])
    valid = torch.ones(1, 32, 32, dtype=torch.bool)
    follows = np.zeros((1, 32, 32), bool)
    follows[:, :, :16] = True
    noisy = np.random.default_rng(0).random((1, 32, 32)) > 0.5
    good = pairwise_loss(_logits(follows, 4.0)["binary"][:, 1] * 1.0, img, rasters, valid)
    bad = pairwise_loss(_logits(noisy, 4.0)["binary"][:, 1] * 1.0, img, rasters, valid)
    assert float(good) < 0.1 < float(bad)


def test_outside_term_only_on_photos_whose_defects_are_all_boxed():
    cfg = TrainConfig(box_loss=1.0, box_pairwise=0.0)
    everywhere = _logits(np.ones((1, 32, 32), bool), 3.0)
    img, valid = torch.rand(1, 3, 32, 32), torch.ones(1, 32, 32, dtype=torch.bool)
    _, known = BoxLoss(cfg)(everywhere, _raster([[8, 8, 16, 16]], all_boxed=True), img, valid)
    _, unknown = BoxLoss(cfg)(everywhere, _raster([[8, 8, 16, 16]]), img, valid)
    assert known["box_outside"] > 3.0 and unknown["box_outside"] == 0.0


@pytest.mark.parametrize("boxes", [
    [],  # a photo with no boxes
    [[5, 5, 5.01, 5.01]],  # a box of (almost) zero pixels
    [[10, 10, 11, 11]],  # one pixel
    [[0, 0, 32, 3], [29, 0, 32, 32]],  # along the image border
    np.random.default_rng(0).uniform(0, 30, (300, 2)).repeat(2, axis=1)
    + np.array([0, 0, 2, 2]),  # 300 boxes
])
def test_box_loss_is_finite_with_gradients_on_bad_boxes(boxes):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)[:, [0, 1, 2, 3]]
    rasters = _raster(boxes.tolist(), all_boxed=True)
    z = torch.randn(1, 2, 32, 32, requires_grad=True)
    loss, parts = BoxLoss(TrainConfig(box_loss=1.0))({"binary": z}, rasters,
                                                     torch.rand(1, 3, 32, 32),
                                                     torch.ones(1, 32, 32, dtype=torch.bool))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    assert all(np.isfinite(v) for v in parts.values())


# ---------------------------------------------------------------- rasters, views, crops
def _sample(h: int = 60, w: int = 80) -> D.Sample:
    boxes = np.array([[10, 12, 30, 20], [50, 30, 55, 58], [0, 0, 6, 6]], np.float32)
    lab = np.zeros((h, w), np.uint8)
    for x0, y0, x1, y1 in boxes.astype(int):
        lab[y0:y1, x0:x1] = 1
    img = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    return D.Sample(img, lab, boxes, True)


@pytest.mark.parametrize("view", [D.View("k"), D.View("k", 8, 5, 40), D.View("k", 30, 44, 40),
                                  D.View("k", 8, 5, 40, True), D.View("k", 0, 0, 0, True)])
def test_box_raster_transforms_with_crops_and_flips(view):
    sample = _sample()
    size = 40 if view.size else 80  # native crops; the whole image stretched to 80 x 80
    _, lab = D.render(sample, view, size)
    r = D.render_boxes(sample, view, size)
    assert r.shape == lab.shape
    if view.size:  # no resize: the raster's boxes are exactly the label's boxes
        np.testing.assert_array_equal(r >= 1 << SHIFT, (lab > 0) & (lab != 255))
    else:  # resized: nearest-neighbour label and floor/ceil raster agree up to the edges
        assert ((r >= 1 << SHIFT) == (lab > 0)).mean() > 0.97
    assert ((r == OUTSIDE) <= (lab == 0)).all()  # known background only outside boxes
    assert (r[lab == 255] == 0).all()  # nothing known outside the image


def test_box_flags_say_which_axis_a_crop_cuts():
    sample = _sample()
    r = D.render_boxes(sample, D.View("k", 15, 20, 40), 40)  # y 15..55, x 20..60
    flags = {int(v) >> SHIFT: int(v) & 3 for v in np.unique(r[r >= 1 << SHIFT])}
    # box 0 (x 10..30, y 12..20) is cut on both axes; box 1 (x 50..55, y 30..58) at the bottom
    assert flags == {1: CUT_X | CUT_Y, 2: CUT_Y}


def test_crops_centred_on_boxes_contain_the_box():
    rng = np.random.default_rng(0)
    for box in ([10, 12, 30, 20], [0, 0, 6, 6], [70, 50, 80, 60], [33.5, 7.2, 34.1, 7.9]):
        for _ in range(50):
            y, x = box_window(np.array(box), (60, 80), 32, rng)
            assert 0 <= y <= 60 - 32 and 0 <= x <= 80 - 32
            assert x <= box[0] and box[2] <= x + 32 and y <= box[1] and box[3] <= y + 32


def test_random_views_are_mostly_box_centred_with_their_rasters():
    samples = {"k": _sample(120, 160)}
    ds = D.RandomViews(samples, ["k"], 32, crop=32, augment=True, length=200,
                       rng=np.random.default_rng(1), with_boxes=True)
    whole = 0
    for i in range(200):
        x, y, r = ds[i]
        assert r.shape == y.shape == (32, 32) and r.dtype == torch.long
        ids = {int(v) >> SHIFT for v in r.unique() if v >= 1 << SHIFT}
        flags = [int(v) & 3 for v in r.unique() if v >= 1 << SHIFT]
        whole += int(bool(ids) and 0 in flags)
        assert ((r >= 1 << SHIFT) == (y > 0)).all()  # flips moved the raster with the label
    assert whole >= 0.75 * 200 * 0.9  # three quarters hold a whole box, give or take


def test_auto_crop_is_native_only_where_photos_are_larger_than_the_input():
    from ml.student.crops import resolve_crop

    assert resolve_crop(-1, 56, [(400, 600)] * 3) == 56
    assert resolve_crop(-1, 56, [(64, 80)] * 3) == 56  # 1.4x: a thin crack would shrink
    assert resolve_crop(-1, 56, [(60, 64)] * 3) == 0  # a crop would be nearly the photo
    assert resolve_crop(0, 56, [(400, 600)]) == 0 and resolve_crop(40, 56, []) == 40


# ---------------------------------------------------------------- training with box loss
def bad_box_project(root: Path) -> Project:
    """Four photos: tiny boxes, 300 boxes, boxes on the border, and no boxes at all."""
    rng = np.random.default_rng(0)
    photos = root / "photos"
    photos.mkdir(parents=True)
    for i in range(4):
        img = rng.integers(90, 140, (64, 72, 3), dtype=np.uint8)
        img[20:34, 30:44] = (200, 40, 40)
        Image.fromarray(img).save(photos / f"p{i}.png")
    proj = Project.create(root / "proj", photos)
    corners = rng.uniform(0, 60, (300, 2))
    boxes = {
        # tiny: 1 px, the least a box may be (records.box_problem)
        "p0.png": [Box(5, 5, 6, 6, 1), Box(10, 10, 11, 11, 2), Box(30, 20, 44, 34, 1)],
        "p1.png": [Box(x, y, x + 3, y + 3, 1 + i % 2) for i, (x, y) in enumerate(corners)],
        "p2.png": [Box(0, 0, 72, 4, 2), Box(68, 0, 72, 64, 1)],
        "p3.png": [],
    }
    with proj.batch():
        for k, bs in boxes.items():
            proj.set_boxes(k, bs)
            lab = np.zeros((64, 72), np.uint8)
            for b in bs:
                lab[int(b.y0):int(np.ceil(b.y1)), int(b.x0):int(np.ceil(b.x1))] = b.cls
            proj.save_teacher_mask(k, lab, "test")
        proj.update("p2.png", all_defects_boxed=True)
    return proj


@pytest.mark.parametrize("mode,crop", [("bitfit", 40), ("frozen", 0)])
def test_training_with_box_loss_on_bad_boxes_never_gives_nan(tmp_path, mode, crop):
    from dataclasses import replace

    from ml.training.trainer import train

    proj = bad_box_project(tmp_path)
    events = []
    cfg = TrainConfig(epochs=1, batch_size=4, device="cpu", patience=50, crop=crop,
                      box_loss=1.0)
    train(proj, tmp_path / "m", replace(STUDENT, mode=mode), cfg, on_event=events.append)
    steps = [e for e in events if isinstance(e, Step)]
    assert steps and all(np.isfinite(e.loss) and np.isfinite(e.loss_box) for e in steps)
    assert any(e.loss_box > 0 for e in steps)
