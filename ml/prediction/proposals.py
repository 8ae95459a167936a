"""Proposals: the defects the student finds on photos nobody boxed, fit for a person to review.

A proposal is one defect of a box-free prediction: the student's defect pixels grouped so that
fragments of one defect (a crack broken into dashes) are one proposal (pixels within
``merge_px`` of each other join), specks under ``min_area`` dropped, and its class (the
majority of its pixels), box, mask and confidence.

Where they are looked for (:func:`region_candidates`): in the label at the proposal threshold
(:func:`ml.prediction.predict.proposal_threshold`, where the student finds a defect likelier
than background), not only in the mask, whose threshold is chosen for pixel IoU and leaves
out small defects the student is less sure of. A region's raw confidence is the mean defect
score 1 - p(background) over its pixels there; its mask is its pixels in the mask, or, where
the mask has none, its pixels at the proposal threshold (:func:`add_to_label` draws those
into the ``proposed`` map stored beside the mask, so every proposal shows while the mask stays
the one its threshold drew). A model with a background bank also gives each region its
*novelty*: the highest of its pixels' (:mod:`ml.student.novelty`; how unlike the boxed photos'
background it is). The raw confidence, the mask's size and the novelty are
calibrated (:mod:`ml.evaluation.calibration`, stored in the model card) and a proposal under
its class's threshold is dropped. Without those maps (a mask read back from disk),
:func:`candidates` groups the mask itself and takes the mean top-class probability.

:func:`record_proposals` stores a photo's proposals in ``record.findings["proposals"]``
(scalars only: the mask is the pixels of the group in the stored student mask with the
``proposed`` map drawn in, :func:`proposal_mask`),
with the photo's uncertainty for "photos to box next" and, per proposal, what the review queue
ranks by (:mod:`ml.findings.queue`): the spread of the members' defect probability
(``members`` > 1) and the IoU of a teacher run on the proposed box with the proposal's mask
(:mod:`ml.prediction.disagreement`).
A region lying mostly inside a box of the photo is the box's finding, not a proposal.

:func:`find_proposals` finds them without the project (a campaign's workers run it beside
the prediction) and :func:`store_proposals` keeps what it found. The calibration is fitted by
:mod:`ml.prediction.proposal_calibration`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.common.classes import IGNORE
from ml.evaluation.calibration import Calibration
from ml.prediction.disagreement import member_spread, teacher_iou
from ml.project.records import now
from ml.project.regions import region_id
from ml.project.store import Project
from ml.student.novelty import novelty_value

if TYPE_CHECKING:
    from ml.prediction.predict import Predictor

FINDINGS_KEY = "proposals"
MIN_AREA_FRAC = 3e-4  # specks: fewer pixels than this share of the photo (at least MIN_AREA)
MIN_AREA = 12
MERGE_FRAC = 0.01  # fragments within this share of the long side are one defect (>= 2 px)
UNCERTAIN = 0.75  # a pixel whose top class probability is under this is uncertain
MATCH_PX = 3  # a proposal is real where it comes this close to a true defect pixel


@dataclass(frozen=True)
class Proposal:
    """One proposed defect of a photo (box: x0, y0, x1, y1 in pixels, ends exclusive)."""

    id: str
    cls: int
    box: tuple[int, int, int, int]
    area: int
    confidence: float  # raw: mean defect score over its region (see the module's text)
    calibrated: float
    fragments: int = 1
    spread: float | None = None  # members' std of defect probability over the mask
    teacher_iou: float | None = None  # the teacher on the box vs the proposal's mask
    threshold: float = 0.5  # its class's calibrated threshold when it was proposed
    novelty: float | None = None  # its pixels' highest novelty (None: the model has no bank)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("id")
        d["box"] = list(self.box)
        return d

    @classmethod
    def from_json(cls, pid: str, d: dict[str, Any]) -> Proposal:
        return cls(pid, int(d["cls"]), tuple(int(v) for v in d["box"]), int(d["area"]),
                   float(d["confidence"]), float(d["calibrated"]), int(d.get("fragments", 1)),
                   d.get("spread"), d.get("teacher_iou"), float(d.get("threshold", 0.5)),
                   d.get("novelty"))


def min_area_for(shape: tuple[int, int]) -> int:
    return max(MIN_AREA, round(MIN_AREA_FRAC * shape[0] * shape[1]))


def merge_px_for(shape: tuple[int, int]) -> int:
    return max(2, round(MERGE_FRAC * max(shape)))


def _groups(label: np.ndarray, merge_px: int) -> tuple[int, np.ndarray]:
    """(n, group labels): defect pixels grouped when within ``merge_px`` (0 elsewhere)."""
    import cv2

    defect = ((label > 0) & (label != IGNORE)).astype(np.uint8)
    k = 2 * merge_px + 1
    grown = cv2.dilate(defect, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    n, comp = cv2.connectedComponents(grown, connectivity=8)
    comp[defect == 0] = 0
    return n, comp


@dataclass(frozen=True)
class Candidate:
    """A group of defect pixels before the threshold: its proposal and its mask."""

    proposal: Proposal
    mask: np.ndarray  # bool, the size of the box


def candidates(label: np.ndarray, confidence: np.ndarray | None,
               calibration: Calibration | None = None, min_area: int | None = None,
               merge_px: int | None = None) -> list[Candidate]:
    """Every group of the mask's defect pixels of ``min_area`` or more, calibrated, not
    thresholded: :func:`region_candidates` with the mask as its own regions and the mean of
    ``confidence`` (uint8; None: 1) as the raw confidence."""
    score = confidence if confidence is not None else np.full(label.shape[:2], 255, np.uint8)
    return region_candidates(label, label, score, calibration, min_area, merge_px)


def region_candidates(label: np.ndarray, regions: np.ndarray, defect: np.ndarray,
                      calibration: Calibration | None = None, min_area: int | None = None,
                      merge_px: int | None = None, novelty: np.ndarray | None = None
                      ) -> list[Candidate]:
    """Every group of ``regions`` (the label at the proposal threshold) of ``min_area`` or more,
    calibrated, not thresholded: its raw confidence the mean of ``defect`` (uint8 defect score)
    over the group, its mask the group's pixels in ``label`` (the mask), or the group itself
    where the mask has none of them; with ``novelty`` (a uint8 novelty map), the group's
    highest novelty."""
    shape = label.shape[:2]
    min_area = min_area_for(shape) if min_area is None else min_area
    merge_px = merge_px_for(shape) if merge_px is None else merge_px
    cal = calibration or Calibration()
    n, comp = _groups(regions, merge_px)
    if n <= 1:
        return []
    flat = comp.ravel()
    area = np.bincount(flat, minlength=n)
    score = np.bincount(flat, weights=defect.ravel().astype(np.float64), minlength=n)
    drawn = (label > 0) & (label != IGNORE)
    ys_all, xs_all = np.nonzero(comp)  # every group's pixels, sorted by group once
    order = np.argsort(comp[ys_all, xs_all], kind="stable")
    ys_all, xs_all = ys_all[order], xs_all[order]
    ends = np.cumsum(area[1:])  # group i's pixels: ends[i - 2] (0 for i = 1) to ends[i - 1]
    out: list[Candidate] = []
    seen: dict[str, int] = {}
    for i in range(1, n):
        if area[i] < min_area:
            continue
        start = ends[i - 2] if i > 1 else 0
        ys, xs = ys_all[start:ends[i - 1]], xs_all[start:ends[i - 1]]
        nov = None if novelty is None else round(novelty_value(novelty[ys, xs].max()), 4)
        inside = drawn[ys, xs]
        if inside.any():  # the mask draws it: the proposal is what the mask shows
            ys, xs = ys[inside], xs[inside]
            classes = label[ys, xs]
        else:
            classes = regions[ys, xs]
        x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
        mask = np.zeros((y1 - y0, x1 - x0), bool)
        mask[ys - y0, xs - x0] = True
        cls = int(np.bincount(classes).argmax())
        raw = float(score[i] / area[i] / 255.0)
        pid = region_id(cls, (x0, y0, x1, y1), shape)
        seen[pid] = seen.get(pid, 0) + 1
        pid = pid if seen[pid] == 1 else f"{pid}#{seen[pid]}"
        calibrated = float(cal.apply(raw, len(ys) / label.size, nov))
        out.append(Candidate(Proposal(pid, cls, (x0, y0, x1, y1), len(ys), round(raw, 4),
                                      round(calibrated, 4), _fragments(mask), novelty=nov),
                             mask))
    return out


def _fragments(mask: np.ndarray) -> int:
    import cv2

    return int(cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1)


def photo_candidates(label: np.ndarray, confidence: np.ndarray | None,
                     regions: np.ndarray | None = None, defect: np.ndarray | None = None,
                     calibration: Calibration | None = None,
                     novelty: np.ndarray | None = None) -> list[Candidate]:
    """A prediction's candidates: from its proposal maps (``regions``, ``defect`` and, with a
    background bank, ``novelty``: a box-free :class:`~ml.prediction.predict.PredictResult`
    has them) where given, else from its mask and confidence."""
    if regions is not None and defect is not None:
        return region_candidates(label, regions, defect, calibration, novelty=novelty)
    return candidates(label, confidence, calibration)


def proposals_of(label: np.ndarray, confidence: np.ndarray | None,
                 calibration: Calibration | None = None, regions: np.ndarray | None = None,
                 defect: np.ndarray | None = None, novelty: np.ndarray | None = None
                 ) -> list[Candidate]:
    """The candidates (:func:`photo_candidates`) that reach their class's calibrated
    threshold."""
    cal = calibration or Calibration()
    return [c for c in photo_candidates(label, confidence, regions, defect, cal, novelty)
            if c.proposal.calibrated >= cal.threshold(c.proposal.cls)]


def add_to_label(label: np.ndarray, kept: list[Candidate], into: np.ndarray | None = None
                 ) -> int:
    """Draw the kept proposals ``label`` has no pixel of (those found only at the proposal
    threshold), each with its class, into ``into`` (in place; None: into ``label`` itself);
    return how many were drawn."""
    target = label if into is None else into
    added = 0
    for c in kept:
        x0, y0, x1, y1 = c.proposal.box
        win = label[y0:y1, x0:x1]
        if ((win > 0) & (win != IGNORE) & c.mask).any():
            continue
        target[y0:y1, x0:x1][c.mask] = c.proposal.cls
        added += 1
    return added


def proposed_map(result: Any) -> np.ndarray | None:
    """The zero map a box-free prediction ``result``'s proposals found under the mask's
    threshold are drawn into (None for a boxed one, which has no proposal maps)."""
    return None if result.regions is None else np.zeros(result.label.shape[:2], np.uint8)


def drawn(proposed: np.ndarray | None) -> np.ndarray | None:
    """``proposed`` if a proposal was drawn into it, else None (nothing to store)."""
    return proposed if proposed is not None and proposed.any() else None


def _boxed_share(mask: np.ndarray, box: tuple[int, int, int, int],
                 boxes: np.ndarray) -> float:
    """Share of a proposal's pixels inside any of ``boxes`` (xyxy)."""
    if not len(boxes):
        return 0.0
    x0, y0, x1, y1 = box
    inside = np.zeros(mask.shape, bool)
    for bx0, by0, bx1, by1 in boxes:
        a0, b0 = max(int(np.floor(bx0)) - x0, 0), max(int(np.floor(by0)) - y0, 0)
        a1, b1 = min(int(np.ceil(bx1)) - x0, x1 - x0), min(int(np.ceil(by1)) - y0, y1 - y0)
        if a1 > a0 and b1 > b0:
            inside[b0:b1, a0:a1] = True
    return float((mask & inside).sum() / max(mask.sum(), 1))


def photo_uncertainty(confidence: np.ndarray | None) -> float:
    """Share of a photo's pixels whose top class probability is under :data:`UNCERTAIN`."""
    if confidence is None or confidence.size == 0:
        return 0.0
    return round(float(np.mean(confidence < UNCERTAIN * 255)), 5)


def find_proposals(label: np.ndarray, confidence: np.ndarray | None, boxes: np.ndarray,
                   every_boxed: bool, model: str, calibration: Calibration | None = None,
                   predictor: Predictor | None = None, teacher: Any = None,
                   image: np.ndarray | Callable[[], np.ndarray] | None = None,
                   regions: np.ndarray | None = None, defect: np.ndarray | None = None,
                   proposed: np.ndarray | None = None, novelty: np.ndarray | None = None
                   ) -> dict[str, Any]:
    """A photo's proposals as the entry :func:`store_proposals` keeps in its record.

    ``boxes`` (N, 4) xyxy: the photo's boxes (a region mostly inside one is not a proposal);
    ``every_boxed``: a person said every defect is boxed (no proposal). ``predictor`` (with
    members) and ``teacher`` add the queue's disagreement figures; both need the photo
    (``image``, or a function reading it: called only when a proposal needs it).
    ``regions``, ``defect`` and ``novelty``: the prediction's proposal maps (box-free; the
    novelty where the model has a background bank); with them, the kept
    proposals ``label`` has no pixel of are drawn into ``proposed`` (in place: a zero uint8
    map of the mask's size, stored beside it; None: into ``label``, for a caller that keeps
    no such map).
    """
    cal = calibration or Calibration()
    kept: list[Candidate] = []
    near = 0
    if not every_boxed:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        for c in photo_candidates(label, confidence, regions, defect, cal, novelty):
            if _boxed_share(c.mask, c.proposal.box, boxes) >= 0.5:
                continue
            thr = cal.threshold(c.proposal.cls)
            if abs(c.proposal.calibrated - thr) < 0.15:
                near += 1
            if c.proposal.calibrated >= thr:
                kept.append(c)
    if regions is not None:
        add_to_label(label, kept, proposed)
    members = predictor is not None and predictor.card.student.members > 1
    if kept and (teacher is not None or members) and callable(image):
        image = image()
    out = []
    for c in kept:
        p = replace(c.proposal, threshold=round(cal.threshold(c.proposal.cls), 4))
        if members and image is not None:
            p = replace(p, spread=member_spread(predictor, image, c.proposal.box, c.mask))
        if teacher is not None and image is not None:
            p = replace(p, teacher_iou=teacher_iou(teacher, image, c.proposal.box,
                                                    c.proposal.cls, c.mask))
        out.append(p)
    return {"model": model, "at": now(), "calibrated": cal.fitted,
            "uncertainty": photo_uncertainty(confidence), "near_threshold": near,
            "items": {p.id: p.to_json() for p in out}}


def store_proposals(project: Project, key: str, entry: dict[str, Any]) -> list[Proposal]:
    """Keep ``entry`` (:func:`find_proposals`) as ``key``'s proposals; return them."""
    rec = project.record(key)
    project.update(key, findings={**rec.findings, FINDINGS_KEY: entry})
    return [Proposal.from_json(pid, d) for pid, d in entry["items"].items()]


def project_proposals(project: Project, key: str, result: Any, model: str,
                      calibration: Calibration | None = None,
                      predictor: Predictor | None = None, teacher: Any = None,
                      image: np.ndarray | None = None, proposed: np.ndarray | None = None
                      ) -> dict[str, Any]:
    """:func:`find_proposals` for ``key``'s prediction ``result``
    (:class:`~ml.prediction.predict.PredictResult`) with the photo's boxes; the proposals its
    mask lacks are drawn into ``proposed`` (None: into ``result.label``), so save that
    after."""
    rec = project.record(key)
    boxes = np.array([b.xyxy for b in rec.boxes], np.float32).reshape(-1, 4)
    return find_proposals(result.label, result.confidence, boxes, rec.every_defect_boxed(),
                          model, calibration, predictor, teacher,
                          image if image is not None else lambda: project.load_image(key),
                          getattr(result, "regions", None), getattr(result, "defect", None),
                          proposed, getattr(result, "novelty", None))


def record_proposals(project: Project, key: str, label: np.ndarray,
                     confidence: np.ndarray | None, model: str,
                     calibration: Calibration | None = None,
                     predictor: Predictor | None = None, teacher: Any = None,
                     image: np.ndarray | None = None) -> list[Proposal]:
    """Find ``key``'s proposals in a stored mask and its confidence and store them in its
    record; return them (:func:`project_proposals`, then :func:`store_proposals`)."""
    from types import SimpleNamespace

    entry = project_proposals(project, key, SimpleNamespace(label=label, confidence=confidence),
                              model, calibration, predictor, teacher, image)
    return store_proposals(project, key, entry)


def stored_proposals(project: Project, key: str) -> dict[str, Proposal]:
    """pid -> proposal stored for ``key`` (empty when it has none)."""
    entry = project.record(key).findings.get(FINDINGS_KEY) or {}
    return {pid: Proposal.from_json(pid, d) for pid, d in dict(entry.get("items", {})).items()}


def proposal_mask(project: Project, key: str, proposal: Proposal) -> np.ndarray:
    """The proposal's bool mask (the size of its box) from the stored student mask with the
    proposals found under its threshold (``Project.load_proposing_mask``)."""
    label = project.load_proposing_mask(key)
    if label is None:
        raise ValueError(f"{key}: no student mask, so proposal {proposal.id} has no mask")
    return mask_in(label, proposal)


def mask_in(label: np.ndarray, proposal: Proposal) -> np.ndarray:
    """The proposal's bool mask (the size of its box) in a student ``label``: its group of
    defect pixels, grouped on a window round the box (every pixel of a group lies in its box,
    and what joins them lies within twice ``merge_px`` of it), so a large photo costs no more
    than a small one."""
    h, w = label.shape[:2]
    merge = merge_px_for(label.shape)
    x0, y0, x1, y1 = proposal.box
    m = 2 * merge + 2
    wx0, wy0 = max(x0 - m, 0), max(y0 - m, 0)
    _, comp = _groups(label[wy0:min(y1 + m, h), wx0:min(x1 + m, w)], merge)
    bx0, by0, bx1, by1 = x0 - wx0, y0 - wy0, x1 - wx0, y1 - wy0
    inner = comp[by0:by1, bx0:bx1]
    ids = np.unique(inner)
    best, best_n = None, -1
    for i in ids[ids > 0]:  # the group whose box is the proposal's
        ys, xs = np.nonzero(comp == i)
        if (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (bx0, by0, bx1, by1):
            return inner == i
        n = int((inner == i).sum())
        if n > best_n:
            best, best_n = i, n
    if best is None:  # predicted again since: the box's defect pixels stand for it
        return (label[y0:y1, x0:x1] > 0) & (label[y0:y1, x0:x1] != IGNORE)
    return inner == best
