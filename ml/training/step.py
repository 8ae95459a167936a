"""One training step's rule: a batch's loss and the update it makes.

The trainer (:mod:`ml.training.trainer`) takes this step and
:func:`ml.training.step_cost.measure_step` times it as it is, so a budget plans the steps a run
will take.
"""

from __future__ import annotations

import torch

from ml.common.classes import IGNORE
from ml.student.models.b2p import MEMBERS
from ml.training.box_loss import BoxLoss
from ml.training.losses import B2PLoss
from ml.training.members import member_weight


def training_loss(out: dict[str, torch.Tensor], y: torch.Tensor, epoch: int, loss: B2PLoss,
                  weight: torch.Tensor | None = None, box_loss: BoxLoss | None = None,
                  boxes: torch.Tensor | None = None, x: torch.Tensor | None = None,
                  member_keep: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, dict[str, float]]:
    """(loss, its parts) of one batch: the B2P loss, plus the box terms when they are on.

    A student with several decoders (:class:`ml.student.models.b2p.Members`) gives each its own
    loss; the total and its parts are their mean. ``member_keep`` ((members, B), 0 or 1) says which
    views of the batch each member learns from (:func:`ml.training.members.member_subsets`); the box
    terms, when on, see every view.
    """
    if MEMBERS in out:
        each = [training_loss(o, y, epoch, loss, member_weight(weight, member_keep, i, y), box_loss,
                              boxes, x) for i, o in enumerate(out[MEMBERS])]
        n = len(each)
        parts = {k: sum(p[k] for _, p in each) / n for k in each[0][1]}
        return sum(t for t, _ in each) / n, parts
    total, parts = loss(out, y, epoch, weight=weight)
    if box_loss is not None and boxes is not None:
        box, box_parts = box_loss(out, boxes, x, y != IGNORE)
        total = total + box
        parts.update(box_parts)
    return total, parts


def apply_gradients(loss: torch.Tensor, opt: torch.optim.Optimizer,
                    params: list[torch.nn.Parameter], grad_clip: float) -> None:
    """Backward, gradient clipping (``grad_clip`` > 0) and the optimiser's step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()
