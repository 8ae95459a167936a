"""The review loop's bad input: no rejected region yet, a photo deleted since, two people
deciding one proposal, a class removed while proposals of it wait."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.common.classes import IGNORE, ClassInfo
from ml.findings import decisions as DEC
from ml.findings.queue import review_queue
from ml.prediction.proposals import Proposal, record_proposals
from ml.project.store import Project, ProjectError
from ml.training import data as D

H, W = 64, 80


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    d = tmp_path / "photos"
    d.mkdir()
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (H, W, 3), np.uint8)).save(
            d / f"{i}.png")
    return Project.create(tmp_path / "p", d)


def _propose(proj: Project, key: str = "0.png") -> dict[int, Proposal]:
    """A dirt blob and a damage crack proposed on ``key``: {class: proposal}."""
    lab = np.zeros((H, W), np.uint8)
    lab[40:50, 50:70] = 1
    lab[10:20, 10:14] = 2
    conf = np.full(lab.shape, 200, np.uint8)
    proj.save_student(key, lab, model="m1", confidence=conf)
    return {p.cls: p for p in record_proposals(proj, key, lab, conf, "m1")}


def test_no_rejected_region_yet_calibrates_and_trains_targets(proj, tmp_path):
    from ml.prediction.proposal_calibration import calibrate_model
    from ml.student.checkpoint import save_checkpoint
    from ml.student.config import ModelCard, StudentConfig
    from ml.student.models import build_model

    props = _propose(proj)
    for p in props.values():
        DEC.decide(proj, "0.png", p.id, DEC.ACCEPTED)  # accepted only: no negative
    examples = DEC.calibration_examples(proj)
    assert len(examples) == 2 and all(ok for _, _, ok, *_ in examples)
    assert all(0 < area < 1 and nov is None for *_, area, nov in examples)  # no bank: None
    tiny = StudentConfig(input_size=28, backbone_weights="none", taps=(0, 1),
                         decoder_channels=32)
    model = save_checkpoint(tmp_path / "m", build_model(tiny).eval(), ModelCard(student=tiny))
    cal = calibrate_model(proj, model, keys=[], decided=examples)
    assert cal.regions == 2 and cal.positives == 2  # fitted on positives alone, no crash
    label = D.load_samples(proj, D.labelled_keys(proj))["0.png"].label
    assert (label[40:50, 50:70] == 1).all() and (label[10:20, 10:14] == 2).all()
    # no rejected region yet: the proposing model's background is the background example
    assert label[30, 40] == 0 and label[18, 12] == 2
    assert (label[20:20 + DEC.UNDECIDED_MARGIN // 2, 12] != 0).all()  # the rim is not said


def test_a_photo_removed_or_gone_since_is_named_and_trains_nothing(proj):
    props, props1 = _propose(proj, "0.png"), _propose(proj, "1.png")
    DEC.decide(proj, "0.png", props[1].id, DEC.ACCEPTED)
    DEC.decide(proj, "1.png", props1[1].id, DEC.REJECTED)
    proj.image_path("1.png").unlink()  # its file deleted on disk
    assert D.labelled_keys(proj) == ["0.png"]  # a photo that cannot be read teaches nothing
    assert review_queue(proj).missing == ["1.png"]
    proj.remove_images(["0.png"])  # removed from the project
    assert D.labelled_keys(proj) == []
    with pytest.raises(ProjectError, match="no longer in the project"):
        DEC.decide(proj, "0.png", props[2].id, DEC.REJECTED)


def test_two_people_on_two_handles_the_later_wins_and_the_earlier_is_told(proj):
    crack = _propose(proj)[2]
    ann, bob = Project.open(proj.root), Project.open(proj.root)  # two windows, one database
    DEC.decide(ann, "0.png", crack.id, DEC.ACCEPTED, by="ann")
    later = DEC.decide(bob, "0.png", crack.id, DEC.REJECTED, by="bob")
    assert later.previous is not None and later.previous.by == "ann"
    now = DEC.decisions(Project.open(proj.root), "0.png")[crack.id]
    assert now.action == DEC.REJECTED and now.by == "bob"
    assert [(k, old["by"]) for k, _, old in DEC.replaced_decisions(ann, "ann")] == [
        ("0.png", "ann")]
    assert proj.record("0.png").boxes == []  # ann's accepted box went with her decision


def test_two_people_at_once_one_replaces_the_other_and_nothing_is_lost(proj):
    crack = _propose(proj)[2]
    handles = {who: Project.open(proj.root) for who in ("ann", "bob")}
    results: dict[str, DEC.DecisionResult] = {}
    start = threading.Barrier(2)

    def decide(who: str, action: str) -> None:
        start.wait()
        results[who] = DEC.decide(handles[who], "0.png", crack.id, action, by=who)

    threads = [threading.Thread(target=decide, args=a) for a in
               (("ann", DEC.ACCEPTED), ("bob", DEC.REJECTED))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = DEC.decisions(Project.open(proj.root), "0.png")[crack.id]
    loser = "ann" if final.by == "bob" else "bob"
    assert [d["by"] for d in final.replaced] == [loser]  # the earlier one, kept and told
    assert results[final.by].previous is not None and results[final.by].previous.by == loser
    assert results[loser].previous is None


def test_a_class_removed_while_its_proposals_wait(proj):
    props = _propose(proj)
    DEC.decide(proj, "0.png", props[2].id, DEC.ACCEPTED)  # damage, accepted before removal
    props1 = _propose(proj, "1.png")
    proj.set_classes([ClassInfo(0, "background", "#000000"), ClassInfo(1, "dirt", "#ffff00")])
    q = review_queue(proj)
    assert [i.class_missing for i in q.items if i.proposal.cls == 2] == [True]
    with pytest.raises(ProjectError, match="no longer has"):
        DEC.decide(proj, "1.png", props1[2].id, DEC.ACCEPTED)
    DEC.decide(proj, "1.png", props1[2].id, DEC.REJECTED)  # rejecting needs no class
    # a photo holding a box of the removed class can still be decided (its box goes)
    DEC.decide(proj, "0.png", props[1].id, DEC.ACCEPTED, cls="dirt")
    assert [b.cls for b in proj.record("0.png").boxes] == [1]
    samples = D.load_samples(proj, D.labelled_keys(proj))  # no "class ids >= 2" error
    zero, one = samples["0.png"].label, samples["1.png"].label
    assert (zero[10:20, 10:14] == IGNORE).all()  # the removed class's target teaches nothing
    assert (zero[40:50, 50:70] == 1).all() and (one[10:20, 10:14] == 0).all()
