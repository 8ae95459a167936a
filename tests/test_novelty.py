"""The background bank: building, scoring, saving, prediction's novelty map and its calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ml.common.classes import DEFAULT_CLASSES
from ml.evaluation.calibration import Calibration, fit_calibration
from ml.prediction import novelty_build as NB
from ml.prediction.predict import Predictor
from ml.prediction.proposals import region_candidates
from ml.project.store import Box, Project
from ml.student import novelty as NOV
from ml.student.checkpoint import save_checkpoint
from ml.student.config import ModelCard, StudentConfig
from ml.student.models import build_model
from ml.student.novelty import (
    NOVELTY_NAME,
    NOVELTY_UNIT,
    NoveltyBank,
    build_bank,
    coreset,
    load_bank,
    novelty_bytes,
)

TINY = StudentConfig(input_size=28, backbone_weights="none", taps=(0, 1), decoder_channels=32)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    card = ModelCard(student=TINY, classes=[c.to_json() for c in DEFAULT_CLASSES])
    return save_checkpoint(tmp_path_factory.mktemp("model") / "m", build_model(TINY).eval(),
                           card)


# ---------------------------------------------------------------------------- the bank
def test_the_scale_is_what_background_reaches_against_other_photos():
    rng = np.random.default_rng(0)
    base = _unit(rng.normal(size=(1, 16)))
    photos = [_unit(base + 0.3 * rng.normal(size=(50, 16))) for _ in range(3)]
    # a patch's feature joins two taps: here the same map twice (patch_features)
    bank = build_bank([_unit(np.concatenate([p, p], axis=1)) for p in photos], max_patches=100)
    assert bank is not None and bank.photos == 3 and bank.features.shape == (100, 32)
    assert bank.features.dtype == np.float16 and 0 < bank.scale < 1
    # a patch like the background scores about 1 or less, one unlike it far more
    like = torch.from_numpy(_unit(base + 0.3 * rng.normal(size=(1, 16)))).float()
    unlike = torch.from_numpy(_unit(-base)).float()
    feats = torch.stack([like[0], unlike[0]])[None].permute(0, 2, 1)[..., None]  # (1,16,2,1)
    nov = bank.score([feats, feats])[0, :, 0]
    assert nov[0] < 1.5 and nov[1] > 3 * nov[0]


def test_the_coreset_keeps_a_rare_kind_of_background_a_random_draw_misses(monkeypatch):
    rng = np.random.default_rng(4)
    common, rare = _unit(rng.normal(size=(2, 16)))
    rows = []
    for _ in range(2):  # two photos, each with 5 patches of a rare texture among 500
        rows.append(_unit(np.concatenate([common + 0.05 * rng.normal(size=(500, 16)),
                                          rare + 0.05 * rng.normal(size=(5, 16))])))
    keep = coreset(np.concatenate(rows), 40, dims=8)
    assert len(set(keep.tolist())) == 40 and (np.diff(keep) > 0).all()
    # a random draw of 40 holds 0.4 rare patches on average; the coreset a share of the 40
    assert ((keep % 505) >= 500).sum() >= 4
    bank = build_bank([_unit(np.concatenate([r, r], axis=1)) for r in rows], max_patches=40)
    query = torch.from_numpy(_unit(rare + 0.05 * rng.normal(size=(1, 16)))).float()
    feats = query[:, :, None, None]
    assert bank.score([feats, feats]).item() < 1.5  # the rare texture is background, not new
    monkeypatch.setattr(NOV, "POOL", 300)  # more patches than the pool: a random draw first
    assert build_bank([_unit(np.concatenate([r, r], axis=1)) for r in rows],
                      max_patches=40).features.shape == (40, 32)
    with pytest.raises(ValueError, match="coreset"):
        build_bank(rows, select="best")


def test_no_bank_from_a_single_photo_or_none():
    one = [_unit(np.random.default_rng(1).normal(size=(20, 8)))]
    assert build_bank(one) is None
    assert build_bank(one + [np.zeros((0, 8))]) is None
    assert build_bank([]) is None


def test_the_bank_saves_and_loads_as_written(tmp_path):
    rng = np.random.default_rng(2)
    bank = build_bank([_unit(rng.normal(size=(30, 8))) for _ in range(2)])
    assert load_bank(tmp_path) is None  # a model folder without one
    bank.save(tmp_path)
    back = load_bank(tmp_path)
    assert (tmp_path / NOVELTY_NAME).is_file() and not list(tmp_path.glob("*.tmp*"))
    np.testing.assert_array_equal(back.features, bank.features)
    assert (back.scale, back.photos, back.k) == (bank.scale, bank.photos, bank.k)


def test_novelty_bytes_clip_and_keep_their_unit():
    b = novelty_bytes(torch.tensor([0.0, 1.0, 100.0]))
    assert b.dtype == np.uint8 and list(b) == [0, round(NOVELTY_UNIT), 255]


# ------------------------------------------------------------------------- prediction
@pytest.mark.parametrize("tiled", [False, True])
def test_a_bank_adds_a_novelty_map_and_changes_nothing_else(model_dir, tiled, monkeypatch):
    image = np.random.default_rng(3).integers(0, 256, (36, 50, 3), dtype=np.uint8)
    plain = Predictor.from_dir(model_dir, "cpu", tiled=tiled)
    assert plain.novelty is None
    bg = np.ones(image.shape[:2], bool)
    rows = [NB.background_patches(plain, image, bg),
            NB.background_patches(plain, image[::-1].copy(), bg)]
    assert rows[0].shape[1] == 2 * plain.model.backbone.out_channels and len(rows[0])  # 2 taps
    bank = build_bank(rows)
    with_bank = Predictor.from_dir(model_dir, "cpu", tiled=tiled, novelty=bank)
    a, b = plain.predict(image), with_bank.predict(image)
    np.testing.assert_array_equal(a.label, b.label)
    np.testing.assert_array_equal(a.defect, b.defect)
    assert a.novelty is None and b.novelty.shape == image.shape[:2]
    assert b.novelty.dtype == np.uint8 and b.novelty.any()
    scored = []
    score = NoveltyBank.score
    monkeypatch.setattr(NoveltyBank, "score", lambda self, f: scored.append(1) or score(self, f))
    boxed = with_bank.predict(image, boxes=np.array([[5, 5, 20, 20]], np.float32))
    assert boxed.novelty is None and not scored  # no proposals to weigh: not even computed
    with_bank.predict(image)
    assert scored
    assert with_bank.settings()["novelty_bank"] and not plain.settings()["novelty_bank"]


def test_background_patches_keep_only_cells_wholly_on_background(model_dir):
    pred = Predictor.from_dir(model_dir, "cpu")
    image = np.random.default_rng(4).integers(0, 256, (56, 56, 3), dtype=np.uint8)
    everywhere = NB.background_patches(pred, image, np.ones((56, 56), bool))
    half = np.zeros((56, 56), bool)
    half[:, :28] = True
    left = NB.background_patches(pred, image, half)
    assert len(everywhere) == 4 and len(left) == 2  # 28 px input: a 2 x 2 patch grid
    assert len(NB.background_patches(pred, image, np.zeros((56, 56), bool))) == 0


# ---------------------------------------------------------------------- from a project
@pytest.fixture
def proj(tmp_path) -> Project:
    d = tmp_path / "img"
    d.mkdir()
    rng = np.random.default_rng(5)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)).save(d / f"{i}.png")
    p = Project.create(tmp_path / "p", d)
    for k in ("0.png", "1.png", "2.png"):
        p.set_boxes(k, [Box(10, 10, 20, 20, 1)])
        lab = np.zeros((80, 80), np.uint8)
        lab[12:18, 12:18] = 1
        p.save_teacher_mask(k, lab, "test")
    p.set_split({"train": ["0.png", "1.png"], "val": ["2.png"]})
    return p


def test_the_bank_learns_from_boxed_training_photos_outside_boxes_and_masks(proj):
    assert NB.bank_keys(proj) == ["0.png", "1.png"]  # validation and unboxed photos stay out
    bg = NB.background_of(proj, "0.png")
    assert bg.shape == (80, 80) and bg[0, 0] and bg[35, 35]
    assert not bg[10 - NB.MARGIN, 15] and not bg[15, 15]  # the box, grown, and the mask


def test_ensure_bank_builds_once_and_then_loads(proj, model_dir, tmp_path):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(model_dir, folder)
    pred = Predictor.from_dir(folder, "cpu")
    bank = NB.ensure_bank(proj, folder, pred)
    assert bank is not None and pred.novelty is bank and bank.photos == 2
    assert (folder / NOVELTY_NAME).is_file()
    again = Predictor.from_dir(folder, "cpu")
    assert again.novelty is not None and again.novelty.photos == 2
    assert NB.ensure_bank(proj, folder, again) is again.novelty


def test_each_photo_gives_the_bank_its_share_of_the_pool(proj, model_dir, monkeypatch):
    pred = Predictor.from_dir(model_dir, "cpu")
    monkeypatch.setattr(NB, "POOL", 4)  # two photos: at most 2 patches each
    rows = NB.bank_rows(proj, pred)
    full = NB.background_patches(pred, proj.load_image("0.png"), NB.background_of(proj, "0.png"))
    assert len(full) > 2 and [len(r) for r in rows] == [2, 2]


def test_too_few_boxed_photos_leave_the_model_without_a_bank(proj, model_dir, tmp_path):
    import shutil

    proj.set_split({"train": ["0.png"], "val": ["1.png", "2.png"]})
    folder = tmp_path / "m"
    shutil.copytree(model_dir, folder)
    pred = Predictor.from_dir(folder, "cpu")
    assert NB.ensure_bank(proj, folder, pred) is None and pred.novelty is None
    assert not (folder / NOVELTY_NAME).exists()


# ----------------------------------------------------------------------- calibration
def _regions(n: int = 200, seed: int = 6, sign: float = 1.0):
    rng = np.random.default_rng(seed)
    real = rng.random(n) < 0.4
    raw = np.clip(rng.normal(0.7, 0.08, n), 0.5, 0.99)  # confidence says nothing
    area = np.exp(rng.normal(-7.0, 0.8, n))  # nor does size
    novelty = np.exp(np.where(real, 1.0, 0.0) * sign + rng.normal(0, 0.5, n))
    return raw, real.astype(float), np.ones(n, np.int64), area, novelty


def test_novelty_joins_the_calibration_where_it_tells_defects_from_texture():
    raw, real, classes, area, novelty = _regions()
    cal = fit_calibration(raw, real, classes, areas=area, novelty=novelty)
    plain = fit_calibration(raw, real, classes, areas=area)
    assert cal.novelty_weight > 0 and "novelty" in cal.summary() and plain.novelty_weight == 0
    assert cal.thresholds["1"].recall > (plain.thresholds["1"].recall or 0) + 0.2
    back = Calibration.from_json(cal.to_json())
    np.testing.assert_allclose(back.apply(raw, area, novelty), cal.apply(raw, area, novelty))
    # a region without a novelty (a decision from a model without a bank) counts at the median
    assert cal.apply(0.7, 1e-3, None) == pytest.approx(cal.apply(0.7, 1e-3, cal.novelty_ref))


def test_novelty_that_would_lower_a_region_is_left_out():
    raw, real, classes, area, novelty = _regions(sign=-1.0)
    cal = fit_calibration(raw, real, classes, areas=area, novelty=novelty)
    plain = fit_calibration(raw, real, classes, areas=area)
    assert cal.novelty_weight == 0
    np.testing.assert_allclose(cal.apply(raw, area, novelty), plain.apply(raw, area))


def test_unknown_novelties_count_at_the_median_and_a_card_without_them_loads():
    raw, real, classes, area, novelty = _regions()
    some = novelty.copy()
    some[:50] = np.nan
    cal = fit_calibration(raw, real, classes, areas=area, novelty=some)
    assert cal.novelty_weight > 0
    assert cal.novelty_ref == pytest.approx(np.median(novelty[50:]))
    old = {k: v for k, v in cal.to_json().items() if not k.startswith("novelty")}
    assert Calibration.from_json(old).novelty_weight == 0  # a card written before banks


def test_a_region_takes_its_highest_novelty():
    label = np.zeros((30, 30), np.uint8)
    label[5:10, 5:10] = 1
    label[20:25, 20:25] = 2
    defect = np.where(label > 0, 200, 0).astype(np.uint8)
    nov = np.zeros((30, 30), np.uint8)
    nov[7, 7] = 96
    nov[6, 6] = 40
    got = {c.proposal.cls: c.proposal.novelty
           for c in region_candidates(label, label, defect, min_area=4, novelty=nov)}
    assert got == {1: 96 / NOVELTY_UNIT, 2: 0.0}
    plain = region_candidates(label, label, defect, min_area=4)
    assert all(c.proposal.novelty is None for c in plain)


def test_a_bank_needs_features_of_the_model_width(model_dir):
    bank = NoveltyBank(np.ones((4, 5), np.float16), 0.1, 2)
    pred = Predictor.from_dir(model_dir, "cpu", novelty=bank)
    with pytest.raises(ValueError, match="5-dim"):
        pred.predict(np.zeros((28, 28, 3), np.uint8))
