"""A student with several decoders: each learns from its own photos (tiny, random init)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ml.student.config import StudentConfig, TrainConfig
from ml.student.models import build_model
from ml.student.models.b2p import MEMBERS
from ml.training.losses import B2PLoss
from ml.training.members import member_subsets
from ml.training.step import training_loss

TINY = StudentConfig(input_size=28, backbone_weights="none", taps=(0, 1), decoder_channels=32)


def test_each_member_leaves_out_its_own_photos_with_all_their_views():
    items = [f"p{i}" for i in range(10) for _ in range(2)]  # two views (flips) per photo
    keep = member_subsets(items, 3, 0.2, seed=0)
    assert keep.shape == (3, 20)
    left_out = [{k for k, kept in zip(items, row, strict=True) if not kept} for row in keep]
    assert [len(s) for s in left_out] == [2, 2, 2]  # a fifth of the 10 photos each
    assert not (left_out[0] & left_out[1] or left_out[0] & left_out[2]
                or left_out[1] & left_out[2])  # disjoint: every photo teaches two members
    assert np.array_equal(keep, member_subsets(items, 3, 0.2, seed=0))  # a resumed run agrees
    assert not np.array_equal(keep, member_subsets(items, 3, 0.2, seed=1))
    assert member_subsets(items, 1, 0.2, seed=0).all()  # one member: every photo
    assert member_subsets(["a", "a"], 3, 0.2, seed=0).all()  # one photo: nothing to leave out


def test_a_view_a_member_leaves_out_teaches_it_nothing():
    torch.manual_seed(0)
    model = build_model(replace(TINY, members=2)).train()
    x = torch.rand(2, 3, 28, 28, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 3, (2, 28, 28), generator=torch.Generator().manual_seed(2))
    loss_fn = B2PLoss(TrainConfig(), 3)
    out = model(x)
    keep = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # member 0 leaves out the second view
    total, _ = training_loss(out, y, 0, loss_fn, member_keep=keep)
    first_view = {k: v[:1] for k, v in out[MEMBERS][0].items()}
    member0 = training_loss(first_view, y[:1], 0, loss_fn)[0]  # as if the batch were one view
    member1 = training_loss(out[MEMBERS][1], y, 0, loss_fn)[0]
    torch.testing.assert_close(total, (member0 + member1) / 2)
    dropped = training_loss(out, y, 0, loss_fn, member_keep=torch.tensor([[0.0, 0.0],
                                                                          [1.0, 1.0]]))[0]
    dropped.backward()  # a member with no view in the batch: no loss, no gradient, no NaN
    assert torch.isfinite(dropped)
    assert model.decoder.decoders[0].fine_head.weight.grad.abs().sum() == 0
    assert model.decoder.decoders[1].fine_head.weight.grad.abs().sum() > 0


def test_a_members_run_trains_each_on_its_subset(tmp_path):
    from ml.training.trainer import Trainer
    from tests.test_train import STUDENT, cfg, make_project

    proj = make_project(tmp_path, 10)
    trainer = Trainer(proj, tmp_path / "m", replace(STUDENT, members=3, mode="frozen"),
                      cfg(epochs=1))
    keep = trainer.member_keep
    assert keep is not None and keep.shape[0] == 3 and not keep.all()
    events = list(trainer.fit())
    assert type(events[-1]).__name__ == "Done" and np.isfinite(trainer.history[-1]["loss"])
    assert Trainer(proj, tmp_path / "one", replace(STUDENT, mode="frozen"),
                   cfg(epochs=1)).member_keep is None
