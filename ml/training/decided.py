"""A person's review decisions in training: every training path learns from them.

The decisions themselves and the label they paint are :mod:`ml.findings.decisions`
(``training_target``: an accepted proposal's mask becomes its class, the rest of its box
background; a rejected region, grown a little, becomes background). This module is where
training takes them in, whatever the targets are made of:

* :func:`labelled_keys`: the photos to train on are those with a mask of the source (or an
  entry in the caller's ``labels``) plus every photo where a person decided a proposal (one
  whose file was deleted since is left out, as the review queue leaves it out);
* :func:`decided_label`: a photo's target with its decisions painted on, for round 1 (the
  teacher's, a person's or the student's masks) and for the targets a later round fuses
  (:mod:`ml.training.rounds`), so that a decision always has the last word;
* :func:`round_bases`: what a later round fuses, decided photos included.
"""

from __future__ import annotations

import numpy as np

from ml.findings.decisions import decided_keys, person_boxed, training_target
from ml.project.split import labelled_keys as _masked_keys
from ml.project.store import Project


def labelled_keys(project: Project, source: str = "teacher",
                  labels: dict[str, np.ndarray] | None = None) -> list[str]:
    """:func:`ml.project.split.labelled_keys` plus the photos with decisions, in project order
    (a decided photo whose file is gone from disk since cannot teach and is left out)."""
    keys = _masked_keys(project, source, labels)
    decided = [k for k in decided_keys(project) if project.image_path(k).is_file()]
    if not decided:
        return keys
    have = set(keys) | set(decided)
    return [k for k in project.keys() if k in have]


def decided_label(project: Project, key: str, label: np.ndarray | None,
                  shape: tuple[int, int], source: str = "teacher", given: bool = False
                  ) -> np.ndarray | None:
    """``key``'s target ``label`` with its decisions painted on (``label`` itself without any).

    A given target (``given``: the caller's ``labels``, a later round's fused targets) and a
    person's reviewed mask are kept under the decisions; a teacher or student mask is kept
    only on a photo a person boxed (elsewhere it comes from the proposals' own boxes or is a
    free prediction: the decisions teach, on the proposing model's background away from the
    regions nobody decided; :func:`ml.findings.decisions.training_target`).
    """
    keep = given or source == "reviewed"
    return training_target(project, key, label, shape, keep_label=keep)


def round_bases(project: Project, source: str, labels: dict[str, np.ndarray] | None
                ) -> tuple[dict[str, np.ndarray], set[str]]:
    """(the masks a later round fuses, the keys whose masks it keeps as they are).

    Kept: masks a person made (edited or reviewed) and photos only reviewed (no person's
    box: their targets are the decisions alone). Decided photos get their decisions painted
    on, so a decided photo without a mask trains too.
    """
    masks, keep = {}, set()
    decided = set(decided_keys(project))
    for key in labelled_keys(project, source, labels):
        rec = project.record(key)
        w, h = project.image_size(key)
        base = labels.get(key) if labels is not None else project.load_mask(key, source)
        mask = decided_label(project, key, base, (h, w), source, given=labels is not None)
        if mask is None:
            continue
        masks[key] = mask
        person_made = labels is None and (source != "teacher" or (
            rec.teacher is not None and rec.teacher.edited))
        if person_made or (key in decided and not person_boxed(project, key)):
            keep.add(key)
    return masks, keep
