"""Review decisions teach on every training path: round 1 from any mask source, the caller's
labels, and the later rounds of ``b2p train --rounds``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.common.classes import IGNORE
from ml.findings import decisions as DEC
from ml.prediction.proposals import record_proposals
from ml.project.store import Box, Project
from ml.training import data as D
from ml.training.decided import round_bases

H, W = 64, 80
BLOB = (slice(40, 50), slice(50, 70))  # accepted as dirt
CRACK = (slice(10, 20), slice(10, 18))  # rejected: background in training


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    """Three photos: 0.png boxed by a person (teacher mask), 1.png and 2.png only proposed."""
    d = tmp_path / "photos"
    d.mkdir()
    for i in range(3):
        img = np.random.default_rng(i).integers(60, 120, (H, W, 3), np.uint8)
        img[BLOB] = (210, 185, 40)
        Image.fromarray(img).save(d / f"{i}.png")
    p = Project.create(tmp_path / "p", d)
    teacher = np.zeros((H, W), np.uint8)
    teacher[BLOB] = 1
    p.set_boxes("0.png", [Box(48, 38, 72, 52, 1)])
    p.save_teacher_mask("0.png", teacher, "box", {})
    return p


def _decide(proj: Project, key: str = "1.png") -> None:
    """The blob accepted, the crack (two dashes) rejected."""
    lab = np.zeros((H, W), np.uint8)
    lab[BLOB] = 1
    lab[10:20, 10:14] = 2
    lab[10:20, 16:18] = 2
    conf = np.full(lab.shape, 200, np.uint8)
    proj.save_student(key, lab, model="m1", confidence=conf)
    for p in record_proposals(proj, key, lab, conf, "m1"):
        DEC.decide(proj, key, p.id, DEC.ACCEPTED if p.cls == 1 else DEC.REJECTED, by="ann")


def _check(label: np.ndarray) -> None:
    assert (label[BLOB] == 1).all()  # the accepted proposal's mask is its class
    assert (label[CRACK] == 0).all()  # the rejected region is background
    # the rest of a photo only reviewed: the proposing model's background, but not the rims
    # of its regions, where its mask is least sure
    assert label[30, 35] == 0 and label[52, 60] == IGNORE and label[23, 12] == IGNORE


@pytest.mark.parametrize("source", ["teacher", "student", "reviewed"])
def test_every_mask_source_trains_on_the_decisions(proj, source):
    _decide(proj)
    if source == "reviewed":
        proj.set_reviewed("0.png", True)
    keys = D.labelled_keys(proj, source)
    assert "1.png" in keys
    samples = D.load_samples(proj, keys, source)
    _check(samples["1.png"].label)


def test_given_labels_keep_their_pixels_under_the_decisions(proj):
    _decide(proj)
    _decide(proj, "2.png")
    given = {"0.png": proj.load_mask("0.png"), "1.png": np.zeros((H, W), np.uint8)}
    keys = D.labelled_keys(proj, "teacher", given)
    assert keys == ["0.png", "1.png", "2.png"]  # the decided photo outside the labels joins
    samples = D.load_samples(proj, keys, "teacher", given)
    one = samples["1.png"].label
    assert (one[BLOB] == 1).all() and (one[CRACK] == 0).all() and one[30, 35] == 0
    _check(samples["2.png"].label)


def test_round_bases_hold_the_decided_photos_and_keep_the_reviewed_only_ones(proj):
    _decide(proj)
    masks, keep = round_bases(proj, "teacher", None)
    assert sorted(masks) == ["0.png", "1.png"] and keep == {"1.png"}
    _check(masks["1.png"])


def test_the_second_round_learns_from_accepted_and_rejected_proposals(proj, tmp_path,
                                                                        monkeypatch):
    from ml.student.config import StudentConfig, TrainConfig
    from ml.training.rounds import train_rounds

    _decide(proj)
    loaded: list[dict] = []
    real = D.load_samples

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        loaded.append(out)
        return out

    monkeypatch.setattr(D, "load_samples", spy)
    student = StudentConfig(input_size=56, backbone_weights="none", decoder_channels=32,
                            taps=(0, 1), mode="frozen")
    result = train_rounds(proj, tmp_path / "m", student,
                          TrainConfig(epochs=1, batch_size=2, device="cpu", crop=0), rounds=2)
    assert not result.stopped and len(loaded) == 2
    for samples in loaded:  # round 1 and round 2 alike
        assert sorted(samples) == ["0.png", "1.png"]
        _check(samples["1.png"].label)
        assert (samples["0.png"].label[BLOB] == 1).all()
