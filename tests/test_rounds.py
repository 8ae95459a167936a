"""Training in rounds: one-sided fusion of the student's masks with the teacher's."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ml.training.events import TrainResult
from ml.training.rounds import REMOVE_TAU, fuse_targets, round_dir, round_targets


def _probs(p_bg: np.ndarray) -> np.ndarray:
    """(3, H, W) probabilities with background ``p_bg`` and the rest on class 1."""
    return np.stack([p_bg, 1 - p_bg, np.zeros_like(p_bg)]).astype(np.float32)


def test_fusion_adds_confident_pixels_in_boxes_and_keeps_the_teachers():
    teacher = np.zeros((20, 30), np.uint8)
    teacher[5:10, 5:10] = 2  # box 0: teacher defect
    p_bg = np.full((20, 30), 0.5, np.float32)
    p_bg[5:8, 10:14] = 0.01  # confident defect inside box 0, teacher background: added
    p_bg[15:18, 20:28] = 0.01  # confident defect outside every box: not added
    p_bg[5:7, 5:10] = 0.995  # very sure background on teacher pixels: dropped
    p_bg[7:10, 5:10] = 0.95  # fairly sure only: kept
    boxes = np.array([[4, 4, 15, 11], [0, 14, 3, 19]], np.float32)
    out = fuse_targets(teacher, _probs(p_bg), boxes, np.array([2, 1]), tau=0.9)
    assert (out[5:8, 10:14] == 2).all()  # the box's class, not the student's argmax
    assert (out[15:18, 20:28] == 0).all() and (out[5:7, 5:10] == 0).all()
    assert (out[7:10, 5:10] == 2).all()
    added, dropped = (out > 0) & (teacher == 0), (out == 0) & (teacher > 0)
    assert (p_bg[added] <= 0.1).all() and (p_bg[dropped] >= REMOVE_TAU).all()


def test_fusion_never_empties_a_box_and_a_confident_teacher_wins():
    teacher = np.zeros((10, 10), np.uint8)
    teacher[2:5, 2:5] = 1
    sure_bg = _probs(np.full((10, 10), 0.999, np.float32))
    box = np.array([[1, 1, 6, 6]], np.float32)
    np.testing.assert_array_equal(fuse_targets(teacher, sure_bg, box, np.array([1])), teacher)
    two = np.array([[1, 1, 6, 6], [6, 6, 9, 9]], np.float32)
    teacher[7, 7] = 1
    conf = np.full((10, 10), 255, np.uint8)  # the teacher is sure of every pixel
    out = fuse_targets(teacher, sure_bg, two, np.array([1, 1]), confidence=conf)
    np.testing.assert_array_equal(out, teacher)
    assert (fuse_targets(teacher, sure_bg, two, np.array([1, 1]))[2:5, 2:5] == 1).all()


def test_rounds_train_a_second_model_whose_targets_move_only_the_allowed_way(tmp_path):
    from ml.prediction.predict import Predictor, undo_class_weights
    from ml.project.store import Project, boxes_to_arrays
    from ml.student.checkpoint import is_model, load_card
    from ml.student.config import TrainConfig
    from ml.training.events import Done, Note
    from ml.training.rounds import train_rounds
    from tests.test_box_loss import STUDENT, bad_box_project

    proj = bad_box_project(tmp_path)
    out = tmp_path / "m"
    events = []
    cfg = TrainConfig(epochs=1, batch_size=4, device="cpu", box_loss=0.5)
    result = train_rounds(proj, out, replace(STUDENT, mode="frozen"), cfg, rounds=2,
                          on_event=events.append)
    assert result.out_dir == round_dir(out, 2) and is_model(out) and is_model(result.out_dir)
    assert load_card(result.out_dir).train.box_loss == 0.5
    assert sum(isinstance(e, Done) for e in events) == 2
    assert any(isinstance(e, Note) and "round 2" in e.message for e in events)
    proj = Project.open(proj.root)
    teacher = {k: proj.load_mask(k) for k in proj.keys()}
    fused = round_targets(proj, out, teacher, tau=0.9, device="cpu")
    pred = Predictor.from_dir(out, "cpu")
    for k, t in teacher.items():
        f = fused[k]
        p_bg = undo_class_weights(pred.probabilities(proj.load_image(k)), pred.class_weights)[0]
        boxes = boxes_to_arrays(proj.record(k).boxes)[0]
        inbox = np.zeros(t.shape, bool)
        for x0, y0, x1, y1 in boxes:
            inbox[int(y0):int(np.ceil(y1)) or 1, int(x0):int(np.ceil(x1)) or 1] = True
        changed = f != t
        assert inbox[changed].all()  # nothing changes outside boxes
        added, dropped = changed & (t == 0), changed & (t > 0) & (f == 0)
        assert (1 - p_bg[added] >= 0.9).all() and (p_bg[dropped] >= REMOVE_TAU).all()
        assert not (changed & (t > 0) & (f > 0)).any()  # the teacher's classes stay


def test_cli_passes_rounds_box_loss_crop_full_res_and_members(tmp_path, monkeypatch):
    import ml.training.rounds
    from app.cli import main
    from tests.test_box_loss import bad_box_project

    proj = bad_box_project(tmp_path)
    seen = {}

    def fake(project, out_dir, student, cfg, rounds=1, **kw):
        seen.update(rounds=rounds, cfg=cfg, student=student)
        return TrainResult(round_dir(out_dir, rounds), epochs_run=1, best_epoch=1,
                           best_metric=None)

    monkeypatch.setattr(ml.training.rounds, "train_rounds", fake)
    rc = main(["train", str(proj.root), "--out", str(tmp_path / "m"), "--rounds", "2",
               "--box-loss", "0.5", "--crop", "auto", "--device", "cpu"])
    assert rc == 0 and seen["rounds"] == 2
    assert seen["cfg"].box_loss == 0.5 and seen["cfg"].crop == -1
    assert not seen["cfg"].teacher_confidence  # off unless asked: it cost IoU on both real sets
    assert not seen["student"].full_res  # off unless asked: it cost IoU on magnetic_tile
    assert seen["student"].members == 1
    assert main(["train", str(proj.root), "--out", str(tmp_path / "m"),
                 "--teacher-confidence", "--full-res", "--members", "3", "--device",
                 "cpu"]) == 0
    assert seen["cfg"].teacher_confidence and seen["student"].full_res
    assert seen["student"].members == 3
    assert main(["train", str(proj.root), "--out", str(tmp_path / "m"), "--members", "0"]) == 1
    assert main(["train", str(proj.root), "--out", str(tmp_path / "m"), "--rounds", "0"]) == 1
