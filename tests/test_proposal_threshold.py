"""Box-free proposals are looked for at the proposal threshold, under the mask's own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.evaluation.calibration import Calibration, fit_calibration, save_to_card
from ml.evaluation.free_threshold import FreeThreshold
from ml.prediction import proposal_calibration as PC
from ml.prediction.predict import Predictor, proposal_threshold
from ml.prediction.proposals import find_proposals, region_candidates
from ml.student.config import ModelCard, StudentConfig
from ml.student.models import build_model

TINY = StudentConfig(input_size=28, backbone_weights="none", taps=(0, 1), decoder_channels=32)


def _maps() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask, label at the proposal threshold, defect score): a blob the mask draws, a
    smaller one the student is less sure of (score 0.63, under a mask threshold of 0.75) and
    a speck."""
    label = np.zeros((64, 80), np.uint8)
    label[10:20, 10:20] = 1
    regions = label.copy()
    regions[8:22, 8:22] = 1  # the sure blob is wider at the lower threshold
    regions[40:48, 50:58] = 2
    regions[2, 70] = 2
    defect = np.zeros(label.shape, np.uint8)
    defect[regions > 0] = 160
    defect[label > 0] = 230
    return label, regions, defect


def test_the_threshold_is_where_defect_beats_background_or_the_masks_if_lower():
    assert proposal_threshold(None) == 0.5
    assert proposal_threshold(0.75) == 0.5 and proposal_threshold(0.35) == 0.35


def test_a_region_under_the_masks_threshold_is_a_candidate_with_its_own_pixels():
    label, regions, defect = _maps()
    found = {c.proposal.cls: c for c in region_candidates(label, regions, defect)}
    assert sorted(found) == [1, 2]  # the speck is too small
    sure, unsure = found[1], found[2]
    # what the mask draws is the proposal: its box and pixels, not the wider region's
    assert sure.proposal.box == (10, 10, 20, 20) and sure.proposal.area == 100
    # the raw confidence is the mean defect score over the region at the proposal threshold
    assert sure.proposal.confidence == pytest.approx((100 * 230 + 96 * 160) / 196 / 255, abs=1e-4)
    assert unsure.proposal.box == (50, 40, 58, 48) and unsure.mask.all()
    assert unsure.proposal.confidence == pytest.approx(160 / 255, abs=1e-4)


def test_kept_proposals_the_mask_lacks_are_drawn_beside_it_and_dropped_ones_are_not():
    label, regions, defect = _maps()
    mask, proposed = label.copy(), np.zeros(label.shape, np.uint8)
    entry = find_proposals(mask, None, np.zeros((0, 4)), False, "m", None, regions=regions,
                           defect=defect, proposed=proposed)
    assert len(entry["items"]) == 2
    np.testing.assert_array_equal(mask, label)  # the mask stays its threshold's
    assert (proposed[40:48, 50:58] == 2).all() and proposed.sum() == 2 * 64
    # without a map beside it, the mask takes them, at their own pixels only
    mask = label.copy()
    find_proposals(mask, None, np.zeros((0, 4)), False, "m", None, regions=regions,
                   defect=defect)
    assert (mask[40:48, 50:58] == 2).all() and (mask[10:20, 10:20] == 1).all()
    assert mask[8, 8] == 0 and mask[2, 70] == 0  # only kept proposals, at their own pixels
    # a calibration that keeps raw 0.75 of class 1 and wants 0.85 of class 2 keeps the sure
    # blob only: the mask stays as it was
    cal = fit_calibration(np.array([0.75, 0.85, 0.6, 0.55]), np.array([1, 1, 0, 0]),
                          np.array([1, 2, 1, 2]), method="temperature")
    mask = label.copy()
    entry = find_proposals(mask, None, np.zeros((0, 4)), False, "m", cal, regions=regions,
                           defect=defect)
    assert [d["cls"] for d in entry["items"].values()] == [1]
    np.testing.assert_array_equal(mask, label)


def test_box_free_prediction_gives_the_proposal_maps_and_boxed_prediction_does_not():
    torch.manual_seed(0)
    card = ModelCard(TINY, free_threshold=FreeThreshold(0.75, 0.7, 0.5, 100).to_json())
    pred = Predictor(build_model(TINY), card, "cpu", min_region_cells=0)
    assert pred.proposal_threshold == 0.5 and pred.settings()["proposal_threshold"] == 0.5
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), np.uint8)
    res = pred.predict(image, return_probs=True)
    assert res.regions.shape == res.defect.shape == (40, 50)
    score = 1.0 - res.probs[0].astype(np.float32)
    np.testing.assert_allclose(res.defect, score * 255, atol=1.5)
    # the mask's pixels lie inside the regions; the regions hold every pixel over 0.5
    assert not ((res.label > 0) & (res.regions == 0)).any()
    assert (res.regions[score > 0.51] > 0).all() and not res.regions[score < 0.49].any()
    boxed = pred.predict(image, np.array([[5, 5, 30, 30]], np.float32))
    assert boxed.regions is None and boxed.defect is None
    assert pred.predict(image, regions=False).regions is None


def test_a_calibration_of_the_old_raw_confidence_is_fitted_again(tmp_path, monkeypatch):
    from ml.student.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model_dir = save_checkpoint(tmp_path / "m", build_model(TINY), ModelCard(TINY))
    old = fit_calibration(np.array([0.9, 0.6]), np.array([1, 0]), np.array([1, 1]))
    assert old.score == "top_class"  # what every card written before round 19 holds
    save_to_card(model_dir, old)
    fitted = []

    def fake(project, model_dir, predictor=None, **kw):
        fitted.append(model_dir)
        return Calibration(score=PC.SCORE)

    monkeypatch.setattr(PC, "calibrate_model", fake)
    PC.ensure_calibration(None, model_dir, predictor=object())
    assert fitted == [model_dir]
    save_to_card(model_dir, Calibration(score=PC.SCORE, note="fitted on today's score"))
    assert PC.ensure_calibration(None, model_dir, predictor=object()).note == (
        "fitted on today's score")
    assert len(fitted) == 1


def _predicted_project(tmp_path):
    """A project of one photo predicted box-free from :func:`_maps`: (project, mask, the
    proposals stored)."""
    from types import SimpleNamespace

    from PIL import Image

    from ml.prediction.proposals import project_proposals, store_proposals
    from ml.project.store import Project

    d = tmp_path / "photos"
    d.mkdir()
    Image.fromarray(np.zeros((64, 80, 3), np.uint8)).save(d / "a.png")
    proj = Project.create(tmp_path / "p", d)
    label, regions, defect = _maps()
    proposed = np.zeros(label.shape, np.uint8)
    result = SimpleNamespace(label=label.copy(), confidence=None, regions=regions, defect=defect)
    found = store_proposals(proj, "a.png", project_proposals(proj, "a.png", result, "m",
                                                              proposed=proposed))
    proj.save_student("a.png", result.label, model="m", proposed=proposed)
    return proj, label, found


def test_proposals_under_the_masks_threshold_are_stored_beside_the_mask(tmp_path):
    from ml.findings import decisions as DEC
    from ml.prediction.proposals import proposal_mask

    proj, label, found = _predicted_project(tmp_path)
    # exported and scored: the mask its threshold drew; shown and reviewed: with the proposal
    np.testing.assert_array_equal(proj.load_mask("a.png", "student"), label)
    shown = proj.load_proposing_mask("a.png")
    assert (shown[40:48, 50:58] == 2).all() and (shown[10:20, 10:20] == 1).all()
    unsure = next(p for p in found if p.cls == 2)
    assert proposal_mask(proj, "a.png", unsure).all()  # its 8 x 8 pixels, from beside the mask
    # findings and reports see it (a report lists it once accepted); an export does not
    from ml.findings.review import photo_regions
    from ml.project.masks import mask_for

    assert (photo_regions(proj, "a.png")[1][40:48, 50:58] == 2).all()
    np.testing.assert_array_equal(mask_for(proj, "a.png", "student").label, label)
    # a photo only reviewed: the undecided proposal is not taught as background
    DEC.decide(proj, "a.png", next(p for p in found if p.cls == 1).id, DEC.ACCEPTED)
    target = DEC.training_target(proj, "a.png", None, label.shape)
    assert target[44, 54] != 0
    # predicted again with nothing under the threshold: no map outlives its mask
    proj.save_student("a.png", label, model="m2")
    assert proj.load_student_extra("a.png", "proposed") is None
    np.testing.assert_array_equal(proj.load_proposing_mask("a.png"), label)


def test_an_export_writes_what_the_person_decided_about_the_proposals(tmp_path):
    from PIL import Image

    from ml.datasets.export import export_masks
    from ml.findings import decisions as DEC

    proj, label, found = _predicted_project(tmp_path)

    def exported() -> np.ndarray:
        out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
        assert export_masks(proj, "png", "student", out).done == ("a.png",)
        return np.array(Image.open(out / "a.png"))

    # undecided: the mask alone, the faint proposal found under its threshold left out
    np.testing.assert_array_equal(exported(), label)
    faint = next(p for p in found if p.cls == 2)
    sure = next(p for p in found if p.cls == 1)
    DEC.decide(proj, "a.png", faint.id, DEC.ACCEPTED, cls=1)  # accepted as another class
    DEC.decide(proj, "a.png", sure.id, DEC.REJECTED)
    got = exported()
    assert (got[40:48, 50:58] == 1).all()  # drawn in, with the person's class
    assert not got[8:22, 8:22].any()  # the rejected blob cleared
    assert not got[2, 70]  # nothing else added
    # findings and reports read the same answers: the person's class, the rejected one gone
    from ml.findings.review import photo_findings

    listed = {r.finding.region.bbox: r.finding.region.cls for r in photo_findings(proj, "a.png")}
    assert listed == {(50, 40, 58, 48): 1}
    # the stored mask is untouched: `b2p eval` scores the model, not the person
    np.testing.assert_array_equal(proj.load_mask("a.png", "student"), label)
    DEC.withdraw(proj, "a.png", faint.id)
    DEC.withdraw(proj, "a.png", sure.id)
    np.testing.assert_array_equal(exported(), label)


def test_region_classes_are_looked_for_lower_and_thin_ones_where_they_were():
    from ml.prediction.predict import REGION_PROPOSAL_THRESHOLD

    assert proposal_threshold(None, region=True) == REGION_PROPOSAL_THRESHOLD < 0.5
    assert proposal_threshold(0.2, region=True) == 0.2  # never above the mask's own
    torch.manual_seed(0)
    card = ModelCard(TINY, region_classes=[2])
    pred = Predictor(build_model(TINY), card, "cpu", min_region_cells=0)
    assert pred.proposal_thresholds.tolist() == pytest.approx([1.0, 0.5, 0.3])
    assert pred.settings()["region_proposal_threshold"] == REGION_PROPOSAL_THRESHOLD
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), np.uint8)
    res = pred.predict(image, return_probs=True)
    probs = res.probs.astype(np.float32)
    score, top = 1.0 - probs[0], probs[1:].argmax(0) + 1
    found = res.regions > 0
    assert (found[(top == 2) & (score > 0.31)]).all() and not found[score < 0.29].any()
    assert not found[(top == 1) & (score < 0.49)].any()  # the thin class: 0.5 as before
    assert (res.regions[found] == top[found]).all()


def test_training_records_the_classes_the_survey_called_regions(tmp_path):
    from PIL import Image

    from ml.project.store import Box, Project
    from ml.training.widths import region_classes

    d = tmp_path / "img"
    d.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(d / f"{i}.png")
    proj = Project.create(tmp_path / "p", d)
    kinds = [{"1": "region", "2": "thin"}, {"1": "region", "2": "region"}, None]
    for i, k in enumerate(kinds):
        key = f"{i}.png"
        proj.set_boxes(key, [Box(2, 2, 10, 10, 1)])
        proj.save_teacher_mask(key, np.zeros((20, 20), np.uint8), "auto",
                               settings={"kinds": k} if k else {})
    # class 2 was thin on one photo: it keeps the thin threshold
    assert region_classes(proj, proj.keys()) == [1]
    card = ModelCard(TINY, region_classes=[1])
    card.save(tmp_path / "config.json")
    assert ModelCard.load(tmp_path / "config.json").region_classes == [1]
