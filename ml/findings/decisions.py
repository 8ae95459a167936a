"""A person's decisions about proposals, and the training targets they make.

* accept: the proposal becomes a box of the person's class (``Box.source == "proposal"``) and
  its mask a training target (the mask's pixels that class, the rest of its box background);
* reject: a hard negative: the region's pixels (grown by :data:`NEGATIVE_GROW` px) are
  background for training;
* change class: an accept with another class (an accepted proposal's box changes class);
* redraw box: an accept with the person's box (the mask clipped to it; the rest of a box drawn
  larger than the mask counts nowhere);
* undo: :func:`undo` puts the decisions and boxes back as they were.

Decisions live in ``record.findings["decisions"][pid]`` (through :meth:`Project.update` and
:meth:`Project.set_boxes` only), each with its mask run-length coded within its box, so a
target survives the photo being predicted again (the stored form: :mod:`ml.project.decided`,
which an export also reads). A second decision about one proposal replaces
the first (the later wins) and keeps it under ``replaced``; :func:`decide` returns it so the
caller can say so, and :func:`replaced_decisions` tells the earlier decider.

:func:`training_target` turns a photo's teacher mask and decisions into its training label:
photos a person boxed keep the teacher mask with the decisions painted on. A photo only
reviewed (no box of a person's) starts from what the proposing model said
(:func:`reviewed_background`): background where its stored mask is background, farther than
:data:`UNDECIDED_MARGIN` px from any region it found; its regions nobody decided stay IGNORE;
then the decisions are painted on. That mask is box-free: an accepted proposal's box does not
hold a prediction to it (:meth:`ImageRecord.prediction_boxes`). Why not IGNORE throughout, as
before: a round whose new photos were mostly reviewed ones learnt "defect everywhere"
(``bench/review_loop.py``'s synthetic students scored 0.02 box-free binary IoU and proposed
nothing after a round of decisions); and only around each decided proposal (the view the
Review dock showed) was not enough (0.04). The price: a defect the model missed on a reviewed
photo is taught as background (docs/RESULTS.md, round 16).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.common.classes import IGNORE
from ml.prediction.proposals import Proposal, proposal_mask, stored_proposals
from ml.project.decided import (  # noqa: F401 (the stored form; re-exported for callers)
    ACCEPTED,
    DECISIONS_KEY,
    REJECTED,
    Decision,
    rle_decode,
    rle_encode,
    stored_decisions,
)
from ml.project.records import PROPOSAL_SOURCE, Box, now
from ml.project.store import Project, ProjectError

PROPOSAL_BOX = PROPOSAL_SOURCE  # Box.source of an accepted proposal
NEGATIVE_GROW = 2
# A reviewed photo's background is taken this far (px) from the proposing model's regions: their
# rims are where its mask is least sure, and a region nobody decided may be a real defect.
UNDECIDED_MARGIN = 8


def decisions(project: Project, key: str) -> dict[str, Decision]:
    return stored_decisions(project.record(key))


def decided_keys(project: Project) -> list[str]:
    """Photos with at least one decision, in project order."""
    return [k for k in project.keys() if project.record(k).findings.get(DECISIONS_KEY)]


@dataclass(frozen=True)
class Undo:
    """What :func:`undo` needs to put a photo's decisions and boxes back."""

    key: str
    pid: str
    decision: dict | None  # the entry before (None: there was none)
    boxes: list[Box]


@dataclass(frozen=True)
class DecisionResult:
    decision: Decision
    previous: Decision | None  # the decision this one replaced (the earlier one is told)
    undo: Undo


def _record(project: Project, key: str):
    try:
        return project.record(key)
    except ProjectError:
        raise ProjectError(f"photo '{key}' is no longer in the project (removed since the "
                           f"proposal was made); its proposals are gone") from None


def _proposal(project: Project, key: str, pid: str) -> Proposal:
    props = stored_proposals(project, key)
    if pid in props:
        return props[pid]
    have = ", ".join(props) or "none"
    raise ProjectError(f"{key}: no proposal '{pid}' (predicted again since? proposals: {have})")


def _clip_box(box: tuple[float, ...], w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x1, y1 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
    if x1 <= x0 or y1 <= y0:
        raise ProjectError(f"box {tuple(box)} is empty or outside the photo ({w}x{h})")
    return x0, y0, x1, y1


def decide(project: Project, key: str, pid: str, action: str, cls: int | str | None = None,
           box: tuple[float, float, float, float] | None = None, by: str = "") -> DecisionResult:
    """Accept or reject proposal ``pid`` of photo ``key``; saved at once.

    ``cls`` (id or name): the person's class (default: the proposal's, which must still exist);
    ``box``: the person's box (redraw). Deciding a decided proposal replaces that decision.
    """
    if action not in (ACCEPTED, REJECTED):
        raise ProjectError(f"a decision is '{ACCEPTED}' or '{REJECTED}', got '{action}'")
    rec = _record(project, key)
    prop = _proposal(project, key, pid)
    names = project.class_names()
    if isinstance(cls, str):
        cls = project.class_id(cls)
    if cls is None:
        cls = prop.cls
        if action == ACCEPTED and not 0 < cls < project.num_classes:
            raise ProjectError(f"{key}: proposal {pid} is of class {cls}, which the project no "
                               f"longer has; accept it with a class ({', '.join(names[1:])})")
    if action == ACCEPTED and not 0 < int(cls) < project.num_classes:
        raise ProjectError(f"class {cls} is not a defect class of the project")
    mask = proposal_mask(project, key, prop)
    frame = prop.box
    if box is not None:
        frame = _clip_box(box, rec.width or 10**9, rec.height or 10**9)
        full = np.zeros((max(frame[3], prop.box[3]), max(frame[2], prop.box[2])), bool)
        full[prop.box[1]:prop.box[3], prop.box[0]:prop.box[2]] = mask
        mask = full[frame[1]:frame[3], frame[0]:frame[2]]
    with project.batch():  # one read-change-save under the project's lock
        rec = _record(project, key)
        findings = dict(rec.findings)
        entries = dict(findings.get(DECISIONS_KEY, {}))
        before = entries.get(pid)
        previous = Decision.from_json(pid, before) if before else None
        history = [*(previous.replaced if previous else []),
                   *([{k: v for k, v in before.items() if k not in ("rle", "replaced")}]
                     if before else [])]
        model = str((findings.get("proposals") or {}).get("model", ""))
        new = Decision(pid, action, int(cls), frame, rle_encode(mask), by, now(),
                       prop.confidence, model, history, prop.novelty)
        undo = Undo(key, pid, before, list(rec.boxes))
        boxes = _valid([b for b in rec.boxes if not _is_box_of(b, previous)], project)
        if action == ACCEPTED:
            boxes.append(Box(*frame, int(cls), PROPOSAL_BOX))
        entries[pid] = new.to_json()
        findings[DECISIONS_KEY] = entries
        project.update(key, findings=findings)
        project.set_boxes(key, boxes)
    return DecisionResult(new, previous, undo)


def _valid(boxes: list[Box], project: Project) -> list[Box]:
    """The boxes whose class the project still has (a class removed since leaves its boxes
    behind, which the store refuses: they go when the photo's boxes are next written)."""
    return [b for b in boxes if 0 < b.cls < project.num_classes]


def _is_box_of(b: Box, d: Decision | None) -> bool:
    return (d is not None and d.action == ACCEPTED and b.source == PROPOSAL_BOX
            and tuple(int(v) for v in b.xyxy) == d.box)


def undo(project: Project, token: Undo) -> None:
    """Put back ``token.key``'s decision about ``token.pid`` and its boxes (Ctrl+Z)."""
    with project.batch():
        rec = _record(project, token.key)
        findings = dict(rec.findings)
        entries = dict(findings.get(DECISIONS_KEY, {}))
        if token.decision is None:
            entries.pop(token.pid, None)
        else:
            entries[token.pid] = token.decision
        findings[DECISIONS_KEY] = entries
        project.update(token.key, findings=findings)
        project.set_boxes(token.key, _valid(token.boxes, project))


def replaced_decisions(project: Project, by: str) -> list[tuple[str, Decision, dict]]:
    """(key, the decision now, the earlier one of ``by``) where a later decision replaced one
    of ``by``'s by someone else: what the earlier decider is told."""
    out = []
    for k in decided_keys(project):
        for d in decisions(project, k).values():
            for old in d.replaced:
                if old.get("by") == by and d.by != by:
                    out.append((k, d, old))
    return out


def counts(project: Project) -> dict[str, int]:
    """Accepted and rejected decisions in the project."""
    out = {ACCEPTED: 0, REJECTED: 0}
    for k in decided_keys(project):
        for d in decisions(project, k).values():
            out[d.action] = out.get(d.action, 0) + 1
    return out


def calibration_examples(project: Project
                         ) -> list[tuple[float, int, int, float, float | None]]:
    """(raw confidence, class, 1 accepted / 0 rejected, area share of the photo, novelty or
    None) of every decided proposal."""
    out = []
    for k in decided_keys(project):
        rec = project.record(k)
        size = max(rec.width * rec.height, 1)
        out += [(float(d.confidence), d.cls, int(d.action == ACCEPTED),
                 float(d.mask().sum()) / size, d.novelty)
                for d in decisions(project, k).values() if d.confidence is not None]
    return out


def person_boxed(project: Project, key: str) -> bool:
    """A person boxed ``key`` (:meth:`ImageRecord.person_boxed`): its teacher mask is a target;
    elsewhere only the decisions teach."""
    return project.record(key).person_boxed()


def training_target(project: Project, key: str, label: np.ndarray | None,
                    shape: tuple[int, int], keep_label: bool = False) -> np.ndarray | None:
    """``key``'s training label: ``label`` (its teacher mask) with its decisions painted on.

    Unchanged (the same object) for a photo without decisions. A photo no person boxed starts
    from the proposing model's background (:func:`reviewed_background`) unless ``keep_label``
    (a target a person or the caller made: :mod:`ml.training.decided`).
    """
    found = decisions(project, key)
    if not found:
        return label
    import cv2

    h, w = shape
    if label is not None and label.shape == (h, w) and (keep_label
                                                        or person_boxed(project, key)):
        out = np.array(label, np.uint8, copy=True)
    else:
        out = reviewed_background(project.load_proposing_mask(key), (h, w))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * NEGATIVE_GROW + 1,) * 2)
    for d in found.values():  # rejections first: an accepted defect wins an overlap
        if d.action != REJECTED:
            continue
        out[cv2.dilate(d.mask_in((h, w)).astype(np.uint8), kernel).astype(bool)] = 0
    for d in found.values():
        if d.action != ACCEPTED or not 0 < d.cls < project.num_classes:
            continue
        x0, y0, x1, y1 = d.box
        m = d.mask()[: max(min(y1, h) - y0, 0), : max(min(x1, w) - x0, 0)]
        win = out[y0:y1, x0:x1]
        win[~m] = IGNORE if _redrawn(d) else 0
        win[m] = d.cls
    return out


def reviewed_background(student: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """The base label of a photo only reviewed: 0 where the proposing model's stored mask
    ``student`` is background beyond :data:`UNDECIDED_MARGIN` px of its regions, else IGNORE
    (all IGNORE without a mask of the photo's size)."""
    import cv2

    out = np.full(shape, IGNORE, np.uint8)
    if student is None or student.shape != tuple(shape):
        return out
    k = 2 * UNDECIDED_MARGIN + 1
    near = cv2.dilate((student > 0).astype(np.uint8),
                      cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))).astype(bool)
    out[~near] = 0
    return out


def _redrawn(d: Decision) -> bool:
    """An accepted box larger than its mask's frame: the person drew it (the rest is unknown)."""
    m = d.mask()
    if not m.any():
        return True
    ys, xs = np.nonzero(m)
    return (xs.min() > 0 or ys.min() > 0 or xs.max() + 1 < m.shape[1]
            or ys.max() + 1 < m.shape[0])


def withdraw(project: Project, key: str, pid: str) -> Decision:
    """Drop the decision about ``pid`` (it is pending again) and its box; returns it."""
    found = decisions(project, key).get(pid)
    if found is None:
        raise ProjectError(f"{key}: nobody has decided proposal '{pid}'")
    rec = _record(project, key)
    undo(project, Undo(key, pid, None, [b for b in rec.boxes if not _is_box_of(b, found)]))
    return found


PROPOSED_NOTE = "proposed by the model, not yet reviewed"


def reported_findings(project: Project, key: str, findings: list, include_proposals: bool
                      ) -> list:
    """The findings a report lists for ``key``: on a photo with proposals and no person's box,
    only those inside accepted proposals (and, with ``include_proposals``, the pending ones,
    noted as proposed); a photo without proposals keeps all its findings."""
    from dataclasses import replace

    if not (project.record(key).findings.get("proposals") or {}) or person_boxed(project, key):
        return findings
    done = decisions(project, key)
    props = stored_proposals(project, key)
    accepted = [d.box for d in done.values() if d.action == ACCEPTED]
    pending = [p.box for pid, p in props.items() if pid not in done]

    def inside(bbox: tuple[int, ...], boxes: list) -> bool:
        return any(bbox[0] >= b[0] and bbox[1] >= b[1] and bbox[2] <= b[2] and bbox[3] <= b[3]
                   for b in boxes)

    out = []
    for f in findings:
        if inside(f.region.bbox, accepted):
            out.append(f)
        elif include_proposals and inside(f.region.bbox, pending):
            out.append(replace(f, note=f.note or PROPOSED_NOTE))
    return out
