"""Losses on hand-made tensors: asymmetric Dice, one-sided self-correction, class weights."""

import math

import pytest
import torch
import torch.nn.functional as F

from ml.student.config import TrainConfig
from ml.training.losses import IGNORE, B2PLoss, asymmetric_dice, class_weights, self_correct


def _logits_for(probs: list[list[float]]) -> torch.Tensor:
    """(1, C, 1, N) logits whose softmax gives the per-pixel probabilities ``probs``."""
    p = torch.tensor(probs, dtype=torch.float32).T  # (C, N)
    return p.log().unsqueeze(0).unsqueeze(2)


def test_asymmetric_dice_hand_computed():
    p = torch.tensor([[[0.8, 0.2], [0.6, 0.0]]])
    t = torch.tensor([[[1, 0], [0, 1]]])
    # TP 0.8, FP 0.2 + 0.6 = 0.8, FN 0.2 + 1.0 = 1.2 -> 1 - 0.8 / (0.8 + 0.4 * 0.8 + 1.2)
    assert float(asymmetric_dice(p, t, beta=0.4, eps=0.0)) == pytest.approx(1 - 0.8 / 2.32)
    # false positives cost less than misses
    fp_only = asymmetric_dice(torch.tensor([[1.0, 1.0]]), torch.tensor([[1, 0]]), 0.4, eps=0)
    fn_only = asymmetric_dice(torch.tensor([[1.0, 0.0]]), torch.tensor([[1, 1]]), 0.4, eps=0)
    assert float(fp_only) < float(fn_only)


def test_asymmetric_dice_sums_over_the_batch_and_respects_valid():
    p = torch.tensor([[[0.9, 0.1]], [[0.3, 0.2]]])  # image 2 has no defect at all
    t = torch.tensor([[[1, 0]], [[0, 0]]])
    tp, fp, fn = 0.9, 0.1 + 0.3 + 0.2, 0.1
    assert float(asymmetric_dice(p, t, 0.4, eps=0.0)) == pytest.approx(
        1 - tp / (tp + 0.4 * fp + fn))
    valid = torch.tensor([[[True, True]], [[False, False]]])
    assert float(asymmetric_dice(p, t, 0.4, valid=valid, eps=0.0)) == pytest.approx(
        1 - 0.9 / (0.9 + 0.4 * 0.1 + 0.1))


def test_self_correction_is_one_sided_and_respects_tau():
    logits = _logits_for([[0.02, 0.03, 0.95],   # teacher bg, student damage 0.95 -> damage
                          [0.10, 0.85, 0.05],   # teacher bg, student dirt 0.85 < tau -> bg
                          [0.99, 0.005, 0.005],  # teacher dirt, student bg -> stays dirt
                          [0.005, 0.99, 0.005],  # teacher damage, student dirt -> stays damage
                          [0.005, 0.99, 0.005],  # ignored pixel stays ignored
                          [0.97, 0.02, 0.01]])   # teacher bg, student bg -> bg
    target = torch.tensor([[[0, 0, 1, 2, IGNORE, 0]]])
    new, corrected = self_correct(logits, target, tau=0.9)
    assert new.tolist() == [[[2, 0, 1, 2, IGNORE, 0]]]
    assert corrected.tolist() == [[[True, False, False, False, False, False]]]
    new_low, _ = self_correct(logits, target, tau=0.8)  # a lower tau also takes the 0.85 pixel
    assert new_low.tolist() == [[[2, 1, 1, 2, IGNORE, 0]]]


def test_calibrated_tau_divides_out_the_class_weight_prior():
    # raw p(damage) 0.95 under weights (0.4, 4, 4) is a calibrated 0.81: not confident at 0.9
    logits = _logits_for([[0.02, 0.03, 0.95], [0.001, 0.001, 0.998]])
    target = torch.tensor([[[0, 0]]])
    w = torch.tensor([0.4, 4.0, 4.0])
    new, _ = self_correct(logits, target, 0.9, prior=w)
    assert new.tolist() == [[[0, 2]]]
    assert self_correct(logits, target, 0.9)[0].tolist() == [[[2, 2]]]


def test_b2p_loss_warmup_and_switch():
    logits = _logits_for([[0.02, 0.03, 0.95], [0.9, 0.05, 0.05]])
    outputs = {"fine": logits, "binary": torch.zeros(1, 2, 1, 2)}
    target = torch.tensor([[[0, 0]]])
    loss = B2PLoss(TrainConfig(warmup_epochs=2, tau_calibrated=False), 3)
    assert loss(outputs, target, epoch=1)[1]["corrected_frac"] == 0.0
    assert loss(outputs, target, epoch=2)[1]["corrected_frac"] == pytest.approx(0.5)
    off = B2PLoss(TrainConfig(self_correct=False), 3)
    assert off(outputs, target, epoch=5)[1]["corrected_frac"] == 0.0


def test_b2p_loss_combines_weighted_ce_on_corrected_target_and_dice():
    torch.manual_seed(0)
    fine = torch.randn(2, 3, 4, 4, requires_grad=True)
    binary = torch.randn(2, 2, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, 0, 0] = IGNORE
    cfg = TrainConfig(tau=0.5)
    total, parts = B2PLoss(cfg, 3)({"fine": fine, "binary": binary}, target, epoch=0)
    w = torch.tensor([0.4, 4.0, 4.0])
    corrected, _ = self_correct(fine, target, 0.5, prior=w)
    ce = F.cross_entropy(fine.detach(), corrected, weight=w, ignore_index=IGNORE)
    valid = target != IGNORE
    dice = asymmetric_dice(torch.softmax(binary, 1)[:, 1], (target > 0) & valid, 0.4, valid)
    assert parts["fine"] == pytest.approx(float(ce), rel=1e-5)
    assert parts["binary"] == pytest.approx(float(dice), rel=1e-5)
    assert float(total.detach()) == pytest.approx(0.5 * float(dice) + 0.5 * float(ce), rel=1e-5)
    total.backward()  # the corrected target is detached: gradients only through the logits
    assert fine.grad is not None and torch.isfinite(fine.grad).all()


def test_ignored_pixels_do_not_change_the_loss():
    torch.manual_seed(1)
    fine, binary = torch.randn(1, 3, 3, 3), torch.randn(1, 2, 3, 3)
    target = torch.randint(0, 3, (1, 3, 3))
    target[0, 2, :] = IGNORE
    loss = B2PLoss(TrainConfig(), 3)
    a = loss({"fine": fine, "binary": binary}, target)[0]
    fine2, binary2 = fine.clone(), binary.clone()
    fine2[..., 2, :] += 5.0
    binary2[..., 2, :] -= 5.0
    b = loss({"fine": fine2, "binary": binary2}, target)[0]
    assert float(a) == pytest.approx(float(b))


def test_class_weights_default_derived_and_checked():
    assert class_weights(TrainConfig(), 3) == (0.4, 4.0, 4.0)
    assert class_weights(TrainConfig(), 5) == (0.4, 4.0, 4.0, 4.0, 4.0)
    assert class_weights(TrainConfig(class_weights=(1.0, 2.0)), 2) == (1.0, 2.0)
    with pytest.raises(ValueError, match="3 classes"):
        class_weights(TrainConfig(class_weights=(1.0, 2.0)), 3)


def test_weighted_ce_value_by_hand():
    # one bg pixel (p_bg = 0.5) and one dirt pixel (p_dirt = 0.25); no correction, no binary
    logits = _logits_for([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]])
    target = torch.tensor([[[0, 1]]])
    total, parts = B2PLoss(TrainConfig(self_correct=False), 3)({"fine": logits}, target)
    expected = (0.4 * -math.log(0.5) + 4.0 * -math.log(0.25)) / (0.4 + 4.0)
    assert float(total) == pytest.approx(expected, rel=1e-5)  # no binary head: CE alone
    assert parts["binary"] == 0.0


def test_plain_ce_kind_is_unweighted_and_uncorrected():
    logits = _logits_for([[0.02, 0.03, 0.95], [0.5, 0.25, 0.25]])
    target = torch.tensor([[[0, 1]]])
    total, parts = B2PLoss(TrainConfig(), 3, kind="ce")({"fine": logits}, target)
    assert float(total) == pytest.approx((-math.log(0.02) - math.log(0.25)) / 2, rel=1e-5)
    assert parts["corrected_frac"] == 0.0
    with pytest.raises(ValueError, match="unknown loss"):
        B2PLoss(TrainConfig(), 3, kind="focal")
