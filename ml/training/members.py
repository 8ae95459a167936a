"""Training helpers of a student with several decoders (:class:`ml.student.models.b2p.Members`).

Decoders trained on the same photos from different random starts end up alike, and their
average gains nothing (docs/RESULTS.md, round 9). So each member learns from its own subset of
the training photos, as separate runs with their own validation photos would.
"""

from __future__ import annotations

import numpy as np
import torch


def member_weight(weight: torch.Tensor | None, keep: torch.Tensor | None, member: int,
                  y: torch.Tensor) -> torch.Tensor | None:
    """Member ``member``'s pixel weights: ``weight`` with the views it leaves out at 0."""
    if keep is None:
        return weight
    k = keep[member].to(y.device, torch.float32).view(-1, *[1] * (y.dim() - 1))
    return k.expand(y.shape) if weight is None else weight * k


def member_subsets(item_keys: list[str], members: int, share: float, seed: int) -> np.ndarray:
    """(members, items) 0/1: which training items each decoder of a student learns from.

    Each member leaves out its own ``share`` of the training photos (every view of them),
    as a run of its own would leave out its own validation photos; the left-out sets are
    disjoint where they fit. One member keeps everything.
    """
    keep = np.ones((members, len(item_keys)), np.float32)
    photos = sorted(set(item_keys))
    n_out = round(len(photos) * share) if members > 1 and len(photos) > 1 else 0
    if n_out == 0:
        return keep
    order = [photos[i] for i in np.random.default_rng(seed).permutation(len(photos))]
    for m in range(members):
        out = {order[(m * n_out + j) % len(order)] for j in range(n_out)}
        keep[m] = [k not in out for k in item_keys]
    return keep
