"""The backbone-feature teacher: a box's pixels unlike the ring round it, and ``auto`` using it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from ml.teachers import features as F
from ml.teachers.auto import AutoTeacher
from ml.teachers.features import FeatureTeacher

REAL_BACKBONE_WEIGHTS = F.backbone_weights  # the conftest hides the cache from every test
BOX = (40, 30, 90, 80)  # holds a dark disc of radius 18 at (65, 55)


class MeanColour(nn.Module):
    """A stand-in backbone: each 14 px patch's mean colour, at both taps (what the features
    teacher reads is only ``patch_size``, ``parameters()`` and the tapped maps)."""

    patch_size = 14

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        m = nn.functional.avg_pool2d(x, 14)
        return [m - 0.5, m - 0.5]  # centred, so cosine similarity tells dark from bright


def scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A grainy light-grey photo with a dark disc inside :data:`BOX`; (image, disc truth)."""
    rng = np.random.default_rng(seed)
    img = 190 + rng.integers(-12, 13, (120, 140))
    disc = np.zeros((120, 140), np.uint8)
    cv2.circle(disc, (65, 55), 18, 1, -1)
    img[disc > 0] = 40 + rng.integers(-12, 13, int(disc.sum()))
    return np.dstack([np.clip(img, 0, 255).astype(np.uint8)] * 3), disc > 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / max(1, int((a | b).sum()))


def test_the_mask_is_the_part_of_the_box_unlike_its_ring():
    img, disc = scene()
    t = FeatureTeacher(backbone=MeanColour())
    t.set_image(img)
    label = t.predict([BOX], [1])
    x0, y0, x1, y1 = BOX
    assert not label[:y0 - t.pad].any() and not label[:, x1 + t.pad:].any()
    # the box fill would score (pi 18^2) / 50^2 = 0.41
    assert iou(label > 0, disc) > 0.6


def test_a_box_filling_the_photo_has_no_ring_and_gets_no_mask():
    img, _ = scene()
    t = FeatureTeacher(backbone=MeanColour())
    t.set_image(img)
    out = t.predict_with_confidence([(0, 0, 140, 120)], [1])
    assert not out.label.any() and out.coverage == (0.0,)


def test_auto_weighs_the_features_candidate_beside_the_others():
    img, disc = scene()
    t = AutoTeacher(sam=False, features=FeatureTeacher(backbone=MeanColour()), record=True)
    assert t.settings()["candidates"] == ["ridge", "grabcut", "features", "box"]
    t.set_image(img)
    label = t.predict([BOX], [1])
    (w,) = t.weighed
    assert "features" in w.masks and w.scores["features"] > 0
    assert iou(label > 0, disc) > 0.6


def test_without_cached_weights_auto_leaves_it_out_and_asking_for_it_says_how_to_get_them(
        monkeypatch, tmp_path):
    assert "features" not in AutoTeacher(sam=False).candidates
    monkeypatch.setenv("B2P_WEIGHTS_DIR", str(tmp_path / "empty"))
    assert REAL_BACKBONE_WEIGHTS() is None
    with pytest.raises(RuntimeError, match="weights download dinov2_vits14_offline"):
        FeatureTeacher()
    with pytest.raises(RuntimeError, match="no DINOv2 backbone weights"):
        AutoTeacher(sam=False, features=True)


def test_runs_through_the_student_backbone():
    from ml.student.models.backbone import Backbone

    img, _ = scene()
    bb = Backbone(taps=F.TAPS, weights="none", mode="frozen").eval()
    t = FeatureTeacher(backbone=bb, long_side=112)
    score, ring = t.anomaly(img[10:100, 20:110], (20, 20, 70, 70))
    assert score.shape == (90, 90) and score.dtype == np.float32
    assert ring.size >= F.MIN_RING and np.isfinite(score).all()
    # cosine similarities lie in [-1, 1], so anomalies in [0, 2]
    assert 0.0 <= score.min() and score.max() <= 2.0


@pytest.mark.parametrize("bad", [{"long_side": 14}, {"k": 0}, {"quantile": 0.0}])
def test_bad_options_are_refused(bad):
    with pytest.raises(ValueError):
        FeatureTeacher(backbone=MeanColour(), **bad)


def test_auto_does_not_ask_for_it_on_boxes_of_a_class_surveyed_thin():
    img, disc = scene()
    backbone = MeanColour()
    calls = []
    backbone.register_forward_hook(lambda *_: calls.append(1))
    t = AutoTeacher(sam=False, features=FeatureTeacher(backbone=backbone), record=True)
    t.kinds = {1: "thin", 2: "region"}
    t.set_image(img)
    t.predict_with_confidence([BOX, BOX], [1, 2])
    assert len(calls) == 1  # one backbone pass: the region box's
    thin, region = t.weighed
    assert "features" not in thin.masks and "features" in region.masks
