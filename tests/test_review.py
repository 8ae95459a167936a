"""Proposals on unboxed photos, their calibration, the review queue, decisions and the loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.common.classes import IGNORE, ClassInfo
from ml.evaluation.calibration import (
    Calibration,
    ClassThreshold,
    ece,
    fit_calibration,
    from_card,
    save_to_card,
    threshold_for_precision,
)
from ml.findings import decisions as DEC
from ml.findings.queue import photos_to_box, review_queue, split_id, teaching_value
from ml.prediction.proposal_calibration import label_candidates
from ml.prediction.proposals import (
    Proposal,
    candidates,
    record_proposals,
    stored_proposals,
)
from ml.project.store import Box, Project, ProjectError


# ----------------------------------------------------------------- calibration
def test_calibration_lowers_the_error_of_overconfident_regions():
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.6, 1.0, 400)
    truth = rng.random(400) < (raw - 0.6) * 2  # a raw 0.8 is right half the time
    classes = np.where(rng.random(400) < 0.5, 1, 2)
    for method in ("isotonic", "temperature"):
        cal = fit_calibration(raw, truth, classes, 0.8, method=method)
        assert cal.ece_after < cal.ece_before
        p = cal.apply(np.sort(raw))
        assert np.all(np.diff(p) >= -1e-9)  # monotone
        back = Calibration.from_json(cal.to_json())
        assert np.allclose(back.apply(raw), cal.apply(raw))
        for cls in (1, 2):
            t = cal.thresholds[str(cls)]
            kept = (cal.apply(raw) >= t.threshold) & (classes == cls)
            assert t.met and truth[kept].mean() >= 0.8


def test_threshold_for_precision_misses_and_empty_are_named():
    t = threshold_for_precision(np.array([0.9, 0.8]), np.array([0, 0]), 0.8)
    assert not t.met and t.precision == 0.0
    empty = threshold_for_precision(np.array([]), np.array([]), 0.8)
    assert empty.precision is None and not empty.met
    assert ece(np.array([1.0, 0.0]), np.array([1, 0])) == 0.0


def test_size_joins_the_calibration_when_it_tells_real_regions_from_blips():
    # the raw confidence hardly differs; real defects are larger than the texture's blips
    rng = np.random.default_rng(1)
    n = 300
    real = rng.random(n) < 0.5
    raw = np.clip(rng.normal(0.62, 0.05, n) + 0.02 * real, 0.5, 0.99)
    area = np.exp(np.where(real, rng.normal(-6.0, 0.7, n), rng.normal(-9.0, 0.7, n)))
    classes = np.ones(n, np.int64)
    cal = fit_calibration(raw, real, classes, 0.8, areas=area)
    assert cal.method == "logistic" and cal.area_weight > 0 and "size" in cal.summary()
    plain = fit_calibration(raw, real, classes, 0.8)  # sizes unknown: confidence alone
    assert plain.method != "logistic"
    assert cal.thresholds["1"].met
    assert cal.thresholds["1"].recall > plain.thresholds["1"].recall + 0.3
    back = Calibration.from_json(cal.to_json())
    assert np.allclose(back.apply(raw, area), cal.apply(raw, area))
    with pytest.raises(ValueError, match="area"):
        cal.apply(0.7)
    # too few regions of one outcome for two weights: the one-feature map, sizes or not
    few = fit_calibration(raw[:12], np.r_[np.ones(3), np.zeros(9)], classes[:12],
                          areas=area[:12])
    assert few.method == "temperature"


def test_no_labelled_region_leaves_the_identity_with_a_note():
    cal = fit_calibration(np.array([]), np.array([]), np.array([]))
    assert not cal.fitted and cal.apply(0.7) == pytest.approx(0.7)
    assert "no labelled regions" in cal.summary()


def test_calibration_travels_in_the_model_card(tmp_path):
    from ml.student.config import ModelCard

    (tmp_path / "m").mkdir()
    ModelCard().save(tmp_path / "m" / "config.json")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"")
    cal = fit_calibration(np.array([0.9, 0.6, 0.8]), np.array([1, 0, 1]), np.array([1, 1, 2]))
    save_to_card(tmp_path / "m", cal)
    assert from_card(tmp_path / "m").thresholds == cal.thresholds


# ----------------------------------------------------------------- proposals
def _label() -> np.ndarray:
    lab = np.zeros((64, 80), np.uint8)
    lab[10:20, 10:14] = 2  # a crack in two dashes: one proposal
    lab[10:20, 16:18] = 2
    lab[40:50, 50:70] = 1  # a blob
    lab[2, 2] = 1  # a speck
    return lab


def test_fragments_merge_and_specks_drop():
    found = candidates(_label(), np.full((64, 80), 200, np.uint8))
    assert sorted((c.proposal.cls, c.proposal.fragments, c.proposal.area) for c in found) == [
        (1, 1, 200), (2, 2, 60)]
    crack = next(c for c in found if c.proposal.cls == 2)
    assert crack.proposal.box == (10, 10, 18, 20) and crack.mask.sum() == 60


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    d = tmp_path / "photos"
    d.mkdir()
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (64, 80, 3), np.uint8)).save(
            d / f"{i}.png")
    return Project.create(tmp_path / "p", d)


def _propose(proj: Project, key: str = "0.png", conf: int = 200,
             cal: Calibration | None = None) -> list[Proposal]:
    lab = _label()
    confidence = np.full(lab.shape, conf, np.uint8)
    proj.save_student(key, lab, model="m1", confidence=confidence)
    return record_proposals(proj, key, lab, confidence, "m1", cal)


def test_proposals_skip_boxed_defects_and_photos_with_every_defect_boxed(proj):
    proj.set_boxes("0.png", [Box(48, 38, 72, 52, 1)])
    assert [p.cls for p in _propose(proj)] == [2]
    proj.update("1.png", all_defects_boxed=True)
    assert _propose(proj, "1.png") == []


def test_the_calibrated_threshold_drops_proposals(proj):
    cal = fit_calibration(np.array([0.9, 0.95, 0.5, 0.55]), np.array([1, 1, 0, 0]),
                          np.array([1, 2, 1, 2]), method="temperature")
    assert _propose(proj, conf=240, cal=cal) and not _propose(proj, conf=128, cal=cal)


def test_label_candidates_matches_within_three_pixels():
    cands = candidates(_label(), None)
    truth = np.zeros((64, 80), np.uint8)
    truth[22, 12] = 2  # 3 px below the crack's end (row 19)
    assert sorted(label_candidates(cands, truth).tolist()) == [0, 1]


# ----------------------------------------------------------------- decisions
def test_accept_boxes_reject_unboxes_later_wins_and_undo(proj):
    crack = next(p for p in _propose(proj) if p.cls == 2)
    a = DEC.decide(proj, "0.png", crack.id, DEC.ACCEPTED, by="ann")
    assert a.previous is None
    assert [(b.xyxy, b.cls, b.source) for b in proj.record("0.png").boxes] == [
        ((10, 10, 18, 20), 2, "proposal")]
    r = DEC.decide(proj, "0.png", crack.id, DEC.REJECTED, by="bob")
    assert r.previous.action == DEC.ACCEPTED and r.previous.by == "ann"  # the earlier is told
    assert proj.record("0.png").boxes == []
    told = DEC.replaced_decisions(proj, "ann")
    assert [(k, d.action, old["action"]) for k, d, old in told] == [
        ("0.png", DEC.REJECTED, DEC.ACCEPTED)]
    DEC.undo(proj, r.undo)
    assert DEC.decisions(proj, "0.png")[crack.id].action == DEC.ACCEPTED
    assert len(proj.record("0.png").boxes) == 1
    DEC.withdraw(proj, "0.png", crack.id)
    assert DEC.decisions(proj, "0.png") == {} and proj.record("0.png").boxes == []


def test_change_class_and_redrawn_box(proj):
    crack = next(p for p in _propose(proj) if p.cls == 2)
    DEC.decide(proj, "0.png", crack.id, DEC.ACCEPTED, cls="dirt", box=(8, 8, 30, 22))
    (box,) = proj.record("0.png").boxes
    assert box.cls == 1 and box.xyxy == (8, 8, 30, 22)
    target = DEC.training_target(proj, "0.png", None, (64, 80))
    assert (target == 1).sum() == 60
    assert target[21, 29] == IGNORE  # the person's box beyond the mask: unknown


def test_training_targets_of_reviewed_and_boxed_photos(proj):
    props = _propose(proj)
    teacher = np.zeros((64, 80), np.uint8)
    assert DEC.training_target(proj, "0.png", teacher, (64, 80)) is teacher  # no decisions
    blob = next(p for p in props if p.cls == 1)
    DEC.decide(proj, "0.png", blob.id, DEC.REJECTED)  # no accepted one: negatives only
    t = DEC.training_target(proj, "0.png", None, (64, 80))
    assert (t[40:50, 50:70] == 0).all() and not (t == 1).any()
    # the rest: the proposing model's background, but not near the crack nobody decided yet
    assert t[30, 40] == 0 and t[60, 5] == 0
    assert (t[10:20, 10:18] == IGNORE).all()
    assert t[15, 10 + 4 + DEC.UNDECIDED_MARGIN // 2] == IGNORE
    for missing in (None, np.zeros((32, 40), np.uint8)):  # no mask, or one of another size
        assert (DEC.reviewed_background(missing, (64, 80)) == IGNORE).all()
    proj.set_boxes("0.png", [Box(0, 0, 5, 5, 2)])  # a person's box: the teacher mask holds
    t = DEC.training_target(proj, "0.png", teacher, (64, 80))
    assert t[5, 40] == 0 and (t[40:50, 50:70] == 0).all()


def test_deleted_photo_and_removed_class_are_named(proj):
    props = _propose(proj)
    crack = next(p for p in props if p.cls == 2)
    proj.set_classes([ClassInfo(0, "background", "#000000"), ClassInfo(1, "dirt", "#ffff00")])
    q = review_queue(proj)
    assert [i.class_missing for i in q.items if i.proposal.cls == 2] == [True]
    with pytest.raises(ProjectError, match="no longer has"):
        DEC.decide(proj, "0.png", crack.id, DEC.ACCEPTED)
    DEC.decide(proj, "0.png", crack.id, DEC.ACCEPTED, cls="dirt")
    proj.remove_images(["0.png"])
    with pytest.raises(ProjectError, match="no longer in the project"):
        DEC.decide(proj, "0.png", crack.id, DEC.REJECTED)


def test_unknown_proposal_lists_the_ones_there_are(proj):
    _propose(proj)
    with pytest.raises(ProjectError, match="proposals: "):
        DEC.decide(proj, "0.png", "2@0,0,1,1", DEC.ACCEPTED)


# ----------------------------------------------------------------- the queue
def test_queue_puts_what_teaches_most_first_and_skips_missing_photos(proj, tmp_path):
    at = ClassThreshold(0.7, 0.8, 0.5, True, 10)
    cal = Calibration("temperature", thresholds={"1": at, "2": at})
    _propose(proj, "0.png", conf=250, cal=cal)  # sure
    near = _propose(proj, "1.png", conf=int(255 * 0.75), cal=cal)
    q = review_queue(proj)
    assert q.items[0].key == "1.png" and q.items[0].priority >= q.items[-1].priority
    assert teaching_value(near[0])[1] == "near the threshold"
    assert split_id(q.items[0].id) == ("1.png", q.items[0].proposal.id)
    DEC.decide(proj, "1.png", near[0].id, DEC.REJECTED)
    assert len(review_queue(proj).items) == len(q.items) - 1
    (tmp_path / "photos" / "1.png").unlink()
    q2 = review_queue(proj)
    assert q2.missing == ["1.png"] and all(i.key != "1.png" for i in q2.items)


def test_teacher_and_member_disagreement_raise_the_priority():
    p = Proposal("x", 1, (0, 0, 4, 4), 16, 0.99, 0.99, threshold=0.5)
    assert teaching_value(p)[0] == 0.0
    assert teaching_value(Proposal(**{**p.__dict__, "teacher_iou": 0.2}))[1] == "teacher disagrees"
    assert teaching_value(Proposal(**{**p.__dict__, "spread": 0.3}))[0] == 1.0


def test_photos_to_box_ranks_unboxed_photos_by_uncertainty(proj):
    _propose(proj, "0.png", conf=250)
    _propose(proj, "1.png", conf=150)
    _propose(proj, "2.png", conf=150)
    proj.set_boxes("2.png", [Box(0, 0, 4, 4, 1)])
    assert [k for k, _ in photos_to_box(proj)] == ["1.png", "0.png"]


# ----------------------------------------------------------------- training and the report
def test_decided_photos_train_with_their_targets(proj):
    from ml.training import data as D

    blob = next(p for p in _propose(proj) if p.cls == 1)
    assert D.labelled_keys(proj) == []
    DEC.decide(proj, "0.png", blob.id, DEC.ACCEPTED)
    assert D.labelled_keys(proj) == ["0.png"]
    s = D.load_samples(proj, ["0.png"])["0.png"]
    assert (s.label == 1).sum() == 200 and (s.label == IGNORE).any()


def test_report_lists_accepted_proposals_unless_asked(proj):
    from ml.findings.report._build import collect

    props = _propose(proj)
    assert collect(proj).entries[0].findings == []
    with_props = collect(proj, include_proposals=True).entries[0].findings
    assert len(with_props) == 3 and all(  # the crack's two dashes and the blob
        f.note == DEC.PROPOSED_NOTE for f in with_props)
    DEC.decide(proj, "0.png", next(p for p in props if p.cls == 1).id, DEC.ACCEPTED)
    assert [f.class_name for f in collect(proj).entries[0].findings] == ["dirt"]


# ----------------------------------------------------------------- CLI
def test_cli_lists_accepts_rejects_and_withdraws(proj, capsys):
    from app.cli import main

    props = _propose(proj)
    root = str(proj.root)
    assert main(["review", root]) == 0
    out = capsys.readouterr().out
    assert "2 proposal(s) to review" in out and f"0.png:{props[0].id}" in out
    assert "NOVEL" in out  # a mask read back has no novelty map: each proposal shows "-"
    pid = f"0.png:{props[0].id}"
    assert main(["review", root, "--accept", pid, "--class", "damage", "--by", "ann"]) == 0
    assert main(["review", root]) == 0
    assert "no rejected proposals yet" in capsys.readouterr().out
    assert main(["review", root, "--reject", pid, "--by", "bob"]) == 0
    out = capsys.readouterr().out
    assert "replaces the earlier decision (accepted as damage by ann" in out
    assert main(["review", root, "--list", "--by", "ann"]) == 0
    assert "was replaced by a later one" in capsys.readouterr().out
    assert main(["review", root, "--withdraw", pid]) == 0
    assert main(["review", root, "--photos-to-box", "2"]) == 0
    assert "0.png" in capsys.readouterr().out
    assert main(["review", root, "--accept", "nocolon"]) == 1
    assert main(["review", root, "--reject", pid, "--class", "dirt"]) == 1


def test_predict_project_calibrates_and_stores_proposals(proj, tmp_path):
    import torch

    from ml.common.classes import DEFAULT_CLASSES
    from ml.prediction.batch_predict import predict_project
    from ml.student.checkpoint import load_card, save_checkpoint
    from ml.student.config import ModelCard, StudentConfig
    from ml.student.models import build_model

    tiny = StudentConfig(input_size=28, backbone_weights="none", taps=(0, 1),
                         decoder_channels=32, members=2)
    torch.manual_seed(0)
    model_dir = save_checkpoint(tmp_path / "m", build_model(tiny).eval(), ModelCard(
        student=tiny, classes=[c.to_json() for c in DEFAULT_CLASSES]))
    proj.set_boxes("2.png", [Box(10, 10, 30, 30, 1)])
    proj.save_teacher_mask("2.png", _label(), "test")
    result = predict_project(proj, model_dir, device="cpu")
    assert not result.failed
    assert load_card(model_dir).calibration["note"].startswith("1 training photos")
    found = [p for k in ("0.png", "1.png") for p in stored_proposals(proj, k).values()]
    assert found and all(p.teacher_iou is not None for p in found)
    for key in ("0.png", "1.png"):
        entry = proj.record(key).findings["proposals"]
        assert entry["model"] == result.model and 0 <= entry["uncertainty"] <= 1
        for p in stored_proposals(proj, key).values():  # members and teacher were asked
            assert p.spread is not None and p.calibrated >= p.threshold


def test_a_student_trains_on_decisions_alone_without_any_negative(proj, tmp_path):
    from ml.student.config import StudentConfig, TrainConfig
    from ml.training.trainer import train

    for key in ("0.png", "1.png"):
        for p in _propose(proj, key):
            DEC.decide(proj, key, p.id, DEC.ACCEPTED)  # accepted only: no hard negative yet
    student = StudentConfig(input_size=56, backbone_weights="none", decoder_channels=32,
                            taps=(0, 1))
    result = train(proj, tmp_path / "model", student,
                   TrainConfig(epochs=1, batch_size=2, device="cpu", crop=0))
    assert result.epochs_run == 1 and (tmp_path / "model" / "config.json").is_file()


def test_a_class_with_few_regions_shares_the_threshold_of_all_classes():
    # class 1: 200 regions, enough for a cut of its own; class 2: five regions, three of them
    # false with high confidence: its own cut would be a gamble on five regions
    rng = np.random.default_rng(2)
    raw = np.r_[rng.uniform(0.5, 1.0, 200), [0.97, 0.96, 0.95, 0.9, 0.6]]
    truth = np.r_[rng.random(200) < (raw[:200] - 0.5) * 2, [0, 0, 0, 1, 1]].astype(int)
    classes = np.r_[np.ones(200, int), np.full(5, 2)]
    cal = fit_calibration(raw, truth, classes, 0.8, method="temperature")
    own, shared, pooled = cal.thresholds["1"], cal.thresholds["2"], cal.thresholds["all"]
    assert not own.shared and shared.shared and shared.regions == 5
    assert shared.threshold == pooled.threshold != own.threshold
    assert cal.threshold(2) == pooled.threshold
    assert cal.threshold(3) == pooled.threshold  # a class with no labelled region at all
    assert "(shared)" in cal.summary() and "all classes" in cal.summary()
    assert Calibration.from_json(cal.to_json()).thresholds == cal.thresholds
    # a cut a person sets on the slider is the class's own
    from ml.evaluation.calibration import with_threshold

    assert not with_threshold(cal, 2, 0.99).thresholds["2"].shared


def test_the_threshold_is_the_median_over_resamples_of_the_lowest_cut_reaching_the_target():
    from ml.evaluation.calibration import lowest_cut

    p = np.linspace(0.95, 0.5, 10)
    truth = np.r_[np.ones(8), np.zeros(2)]
    # all ten are 0.8 real, just the target: the lowest cut takes them all; the resamples
    # mostly leave the last false one out
    assert lowest_cut(p, truth.astype(bool), 0.8) == pytest.approx(p[9])
    t = threshold_for_precision(p, truth, 0.8)
    assert p[9] < t.threshold <= p[7] and t.met and t.recall == 1.0
    assert threshold_for_precision(p, truth, 0.8) == t  # a fixed seed: the same cut
    # 15 real of 40 with false ones among the top (round 20's magnetic_tile calibration):
    # the cut keeps what the regions agree on, not only the top few that are all real
    p = np.linspace(0.99, 0.01, 40)
    truth = np.zeros(40)
    truth[[0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 20]] = 1
    t = threshold_for_precision(p, truth, 0.8)
    assert t.met and (p >= t.threshold).sum() >= 12 and t.recall > 0.8
    # none reaches the target: the best precision's cut, not met
    none = threshold_for_precision(np.array([0.9, 0.8, 0.7]), np.array([0, 1, 0]), 0.8)
    assert not none.met and none.threshold == pytest.approx(0.8)


def test_a_photo_only_reviewed_is_predicted_without_its_accepted_boxes(proj, tmp_path):
    # an accepted proposal's box must not hold the next prediction to it: the model's other
    # findings on the photo would vanish and be taught as background (round 25)
    import torch

    from ml.common.classes import DEFAULT_CLASSES
    from ml.prediction.batch_predict import predict_project
    from ml.student.checkpoint import save_checkpoint
    from ml.student.config import ModelCard, StudentConfig
    from ml.student.models import build_model

    tiny = StudentConfig(input_size=28, backbone_weights="none", taps=(0, 1),
                         decoder_channels=32)
    model = build_model(tiny).eval()
    with torch.no_grad():  # a model that calls every pixel dirt
        model.decoder.fine_head.weight.zero_()
        model.decoder.fine_head.bias.copy_(torch.tensor([-9.0, 9.0, -9.0]))
    model_dir = save_checkpoint(tmp_path / "m", model, ModelCard(
        student=tiny, classes=[c.to_json() for c in DEFAULT_CLASSES]))
    first = _propose(proj)[0]
    DEC.decide(proj, "0.png", first.id, DEC.ACCEPTED)
    rec = proj.record("0.png")
    assert [b.source for b in rec.boxes] == [DEC.PROPOSAL_BOX] and not rec.person_boxed()
    assert rec.prediction_boxes() == []
    predict_project(proj, model_dir, keys=["0.png"], device="cpu", proposals=False)
    x0, y0, x1, y1 = first.box
    outside = proj.load_mask("0.png", "student") > 0
    outside[y0:y1, x0:x1] = False
    assert outside.any()  # searched beyond the accepted box
    # a person's box holds the prediction to the boxes, as before
    proj.set_boxes("0.png", [*rec.boxes, Box(0, 0, 8, 8, 1)])
    assert proj.record("0.png").prediction_boxes() == proj.record("0.png").boxes
    predict_project(proj, model_dir, keys=["0.png"], device="cpu", proposals=False)
    mask = proj.load_mask("0.png", "student") > 0
    mask[y0:y1, x0:x1] = False
    mask[0:8, 0:8] = False
    assert not mask.any()
