"""What a new model changed: the change map, per-class counts, the kept previous masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.common.classes import DEFAULT_CLASSES, IGNORE
from ml.evaluation import model_diff as D
from ml.project.store import Project
from ml.student.checkpoint import model_id, save_checkpoint
from ml.student.config import ModelCard, StudentConfig
from ml.student.models import build_model

TINY = StudentConfig(input_size=28, backbone_weights="none", taps=(0, 1), decoder_channels=32)


def test_change_map_and_per_class_counts():
    previous = np.array([[0, 1, 1, 2, 0, 2, IGNORE]], np.uint8)
    current = np.array([[1, 1, 0, 1, 0, 2, 1]], np.uint8)
    d = D.model_diff(previous, current)
    # gained dirt, same, lost dirt, damage became dirt, same, same, ignored
    assert d.changes.tolist() == [[D.GAINED, 0, D.LOST, D.CHANGED, 0, 0, 0]]
    assert d.gained == {1: 2} and d.lost == {1: 1, 2: 1}
    assert (d.photos, d.photos_changed) == (1, 1)
    assert d.summary(["background", "dirt", "damage"]) == ("dirt: 2 px gained, 1 lost; "
                                                            "damage: 0 px gained, 1 lost")
    same = D.model_diff(previous, previous)
    assert not same.changes.any() and same.photos_changed == 0
    assert same.summary(["background", "dirt", "damage"]) == "no change"


def test_sizes_that_differ_are_refused_in_words():
    with pytest.raises(ValueError, match="differ in size"):
        D.model_diff(np.zeros((4, 5), np.uint8), np.zeros((5, 4), np.uint8))


def test_total_adds_photos_without_keeping_maps():
    a = D.model_diff(np.zeros((2, 2), np.uint8), np.ones((2, 2), np.uint8))
    b = D.model_diff(np.full((2, 2), 2, np.uint8), np.full((2, 2), 2, np.uint8))
    t = D.total([a, b])
    assert t.changes is None and t.gained == {1: 4} and t.lost == {}
    assert (t.photos, t.photos_changed) == (2, 1)


def _project(tmp_path, n=2) -> Project:
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(
            photos / f"p{i}.png")
    return Project.create(tmp_path / "proj", photos)


def test_keep_previous_copies_the_student_mask_and_survives_reopening(tmp_path):
    proj = _project(tmp_path)
    key = proj.keys()[0]
    assert not proj.keep_previous(key)  # no student mask yet: nothing to keep
    old = np.zeros((24, 32), np.uint8)
    old[2:6, 3:9] = 2
    proj.save_student(key, old, model="old-model")
    assert proj.keep_previous(key)
    proj.save_student(key, np.ones((24, 32), np.uint8), model="new-model")
    back = Project.open(proj.root)
    np.testing.assert_array_equal(back.load_mask(key, "previous"), old)
    assert back.record(key).previous.source == "old-model"
    assert back.record(key).previous.path == "masks/previous/p0.png.png"
    d = D.photo_diff(back, key)
    assert d.gained == {1: 24 * 32} and d.lost == {2: 24} and d.photos_changed == 1
    assert D.photo_diff(back, back.keys()[1]) is None  # no masks there
    assert D.project_diff(back).photos == 1
    back.remove_images([key])
    assert not (back.root / "masks/previous/p0.png.png").exists()


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        card = ModelCard(student=TINY, classes=[c.to_json() for c in DEFAULT_CLASSES])
        out.append(save_checkpoint(tmp_path_factory.mktemp("m") / f"m{seed}",
                                   build_model(TINY).eval(), card))
    return out


def test_predict_keeps_the_other_models_masks_as_previous(tmp_path, two_models):
    from ml.prediction.batch_predict import predict_project

    first, second = two_models
    proj = _project(tmp_path)
    key = proj.keys()[0]
    r1 = predict_project(proj, first, device="cpu", box_constraint=False)
    assert r1.changes is None and proj.record(key).previous is None  # nothing before it
    before = proj.load_mask(key, "student").copy()
    r2 = predict_project(proj, second, device="cpu", box_constraint=False)
    np.testing.assert_array_equal(proj.load_mask(key, "previous"), before)
    assert proj.record(key).previous.source == model_id(first)
    assert r2.changes is not None and r2.changes.photos == 2
    assert r2.changes == D.project_diff(proj)
    # predicting again with the same model keeps the older model's masks as previous
    predict_project(proj, second, device="cpu", box_constraint=False)
    assert proj.record(key).previous.source == model_id(first)
    np.testing.assert_array_equal(proj.load_mask(key, "previous"), before)
    # keep_previous=False leaves it alone even for another model
    predict_project(proj, first, device="cpu", box_constraint=False, keep_previous=False)
    assert proj.record(key).previous.source == model_id(first)
