"""Proposals: the defects the student finds on photos nobody boxed, fit for a person to review.

A proposal is one defect of a box-free prediction: the student's defect pixels grouped so that
fragments of one defect (a crack broken into dashes) are one proposal (pixels within
``merge_px`` of each other join), specks under ``min_area`` dropped, and its class (the
majority of its pixels), box, mask and confidence. The raw confidence (mean max-class
probability over its pixels) is calibrated (:mod:`ml.evaluation.calibration`, stored in the
model card) and a proposal under its class's threshold is dropped.

:func:`record_proposals` stores a photo's proposals in ``record.findings["proposals"]``
(scalars only: the mask is the stored student mask's pixels of the group, :func:`proposal_mask`),
with the photo's uncertainty for "photos to box next" and, per proposal, what the review queue
ranks by (:mod:`ml.findings.queue`): the spread of the members' defect probability
(``members`` > 1) and the IoU of a teacher run on the proposed box with the proposal's mask.
A region lying mostly inside a box of the photo is the box's finding, not a proposal.

:func:`find_proposals` finds them without the project (a campaign's workers run it beside
the prediction) and :func:`store_proposals` keeps what it found. The calibration is fitted by
:mod:`ml.prediction.proposal_calibration`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.common.classes import IGNORE
from ml.evaluation.calibration import Calibration
from ml.project.records import now
from ml.project.regions import region_id
from ml.project.store import Project

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
    confidence: float  # raw: mean top-class probability over its pixels
    calibrated: float
    fragments: int = 1
    spread: float | None = None  # members' std of defect probability over the mask
    teacher_iou: float | None = None  # the teacher on the box vs the proposal's mask
    threshold: float = 0.5  # its class's calibrated threshold when it was proposed

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("id")
        d["box"] = list(self.box)
        return d

    @classmethod
    def from_json(cls, pid: str, d: dict[str, Any]) -> Proposal:
        return cls(pid, int(d["cls"]), tuple(int(v) for v in d["box"]), int(d["area"]),
                   float(d["confidence"]), float(d["calibrated"]), int(d.get("fragments", 1)),
                   d.get("spread"), d.get("teacher_iou"), float(d.get("threshold", 0.5)))


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
    """Every group of defect pixels of ``min_area`` or more, calibrated, not thresholded."""
    import cv2

    shape = label.shape[:2]
    min_area = min_area_for(shape) if min_area is None else min_area
    merge_px = merge_px_for(shape) if merge_px is None else merge_px
    cal = calibration or Calibration()
    n, comp = _groups(label, merge_px)
    if n <= 1:
        return []
    area = np.bincount(comp.ravel(), minlength=n)
    conf = (np.bincount(comp.ravel(), weights=confidence.ravel().astype(np.float64), minlength=n)
            if confidence is not None else None)
    ys, xs = np.nonzero(comp)
    lab = comp[ys, xs]
    order = np.argsort(lab, kind="stable")
    ys, xs, lab = ys[order], xs[order], lab[order]
    starts = np.r_[0, np.nonzero(np.diff(lab))[0] + 1]
    ids = lab[starts]
    bx0, by0 = np.minimum.reduceat(xs, starts), np.minimum.reduceat(ys, starts)
    bx1, by1 = np.maximum.reduceat(xs, starts) + 1, np.maximum.reduceat(ys, starts) + 1
    out: list[Candidate] = []
    seen: dict[str, int] = {}
    for j, i in enumerate(ids):
        if area[i] < min_area:
            continue
        x0, y0, x1, y1 = int(bx0[j]), int(by0[j]), int(bx1[j]), int(by1[j])
        mask = comp[y0:y1, x0:x1] == i
        classes = label[y0:y1, x0:x1][mask]
        cls = int(np.bincount(classes).argmax())
        frags = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1
        raw = float(conf[i] / area[i] / 255.0) if conf is not None else 1.0
        pid = region_id(cls, (x0, y0, x1, y1), shape)
        seen[pid] = seen.get(pid, 0) + 1
        pid = pid if seen[pid] == 1 else f"{pid}#{seen[pid]}"
        out.append(Candidate(Proposal(pid, cls, (x0, y0, x1, y1), int(area[i]), round(raw, 4),
                                      round(float(cal.apply(raw, area[i] / label.size)), 4),
                                      int(frags)), mask))
    return out


def proposals_of(label: np.ndarray, confidence: np.ndarray | None,
                 calibration: Calibration | None = None, **options: Any) -> list[Candidate]:
    """The candidates that reach their class's calibrated threshold."""
    cal = calibration or Calibration()
    return [c for c in candidates(label, confidence, cal, **options)
            if c.proposal.calibrated >= cal.threshold(c.proposal.cls)]


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


def _teacher_iou(teacher: Any, image: np.ndarray, c: Candidate) -> float | None:
    """IoU of the teacher's mask on the proposed box with the proposal's mask (on a crop)."""
    x0, y0, x1, y1 = c.proposal.box
    h, w = image.shape[:2]
    m = max(8, (x1 - x0 + y1 - y0) // 4)
    cx0, cy0, cx1, cy1 = max(x0 - m, 0), max(y0 - m, 0), min(x1 + m, w), min(y1 + m, h)
    try:
        teacher.set_image(np.ascontiguousarray(image[cy0:cy1, cx0:cx1]))
        lab = teacher.predict(np.array([[x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0]], np.float32),
                              np.array([c.proposal.cls], np.int64))
    except Exception:  # a teacher failing on one box must not stop the batch
        return None
    t = lab[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0] > 0
    union = (t | c.mask).sum()
    return round(float((t & c.mask).sum() / union), 4) if union else None


def _member_spread(predictor: Predictor, image: np.ndarray, c: Candidate) -> float | None:
    """Std across the members of their defect probability over the mask (one crop each)."""
    import cv2
    import torch

    model = predictor.model
    decoders = getattr(getattr(model, "decoder", None), "decoders", None)
    if decoders is None or len(decoders) < 2:
        return None
    x0, y0, x1, y1 = c.proposal.box
    h, w = image.shape[:2]
    side = max(x1 - x0, y1 - y0, predictor.tile // 2)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    cx0, cy0 = min(max(cx - side // 2 - side // 4, 0), max(w - 1, 0)), \
        min(max(cy - side // 2 - side // 4, 0), max(h - 1, 0))
    cx1, cy1 = min(cx0 + side + side // 2, w), min(cy0 + side + side // 2, h)
    crop = cv2.resize(image[cy0:cy1, cx0:cx1], (predictor.tile, predictor.tile),
                      interpolation=cv2.INTER_AREA)
    full = np.zeros((h, w), bool)
    full[y0:y1, x0:x1] = c.mask
    m = cv2.resize(full[cy0:cy1, cx0:cx1].astype(np.uint8), (predictor.tile, predictor.tile),
                   interpolation=cv2.INTER_NEAREST).astype(bool)
    if not m.any():
        return None
    with torch.inference_mode():
        x = torch.from_numpy(crop[None]).to(predictor.device).permute(0, 3, 1, 2).float() / 255
        feats = model.encode(x)
        xn = model.backbone.normalize(x)
        ps = [1.0 - d(feats, xn)["fine"].float().softmax(1)[0, 0].cpu().numpy()
              for d in decoders]
    return round(float(np.std([p[m].mean() for p in ps])), 4)


def photo_uncertainty(confidence: np.ndarray | None) -> float:
    """Share of a photo's pixels whose top class probability is under :data:`UNCERTAIN`."""
    if confidence is None or confidence.size == 0:
        return 0.0
    return round(float(np.mean(confidence < UNCERTAIN * 255)), 5)


def find_proposals(label: np.ndarray, confidence: np.ndarray | None, boxes: np.ndarray,
                   every_boxed: bool, model: str, calibration: Calibration | None = None,
                   predictor: Predictor | None = None, teacher: Any = None,
                   image: np.ndarray | Callable[[], np.ndarray] | None = None
                   ) -> dict[str, Any]:
    """A photo's proposals as the entry :func:`store_proposals` keeps in its record.

    ``boxes`` (N, 4) xyxy: the photo's boxes (a region mostly inside one is not a proposal);
    ``every_boxed``: a person said every defect is boxed (no proposal). ``predictor`` (with
    members) and ``teacher`` add the queue's disagreement figures; both need the photo
    (``image``, or a function reading it: called only when a proposal needs it).
    """
    cal = calibration or Calibration()
    kept: list[Candidate] = []
    near = 0
    if not every_boxed:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        for c in candidates(label, confidence, cal):
            if _boxed_share(c.mask, c.proposal.box, boxes) >= 0.5:
                continue
            thr = cal.threshold(c.proposal.cls)
            if abs(c.proposal.calibrated - thr) < 0.15:
                near += 1
            if c.proposal.calibrated >= thr:
                kept.append(c)
    members = predictor is not None and predictor.card.student.members > 1
    if kept and (teacher is not None or members) and callable(image):
        image = image()
    out = []
    for c in kept:
        p = _replace(c.proposal, threshold=round(cal.threshold(c.proposal.cls), 4))
        if members and image is not None:
            p = _replace(p, spread=_member_spread(predictor, image, c))
        if teacher is not None and image is not None:
            p = _replace(p, teacher_iou=_teacher_iou(teacher, image, c))
        out.append(p)
    return {"model": model, "at": now(), "calibrated": cal.fitted,
            "uncertainty": photo_uncertainty(confidence), "near_threshold": near,
            "items": {p.id: p.to_json() for p in out}}


def store_proposals(project: Project, key: str, entry: dict[str, Any]) -> list[Proposal]:
    """Keep ``entry`` (:func:`find_proposals`) as ``key``'s proposals; return them."""
    rec = project.record(key)
    project.update(key, findings={**rec.findings, FINDINGS_KEY: entry})
    return [Proposal.from_json(pid, d) for pid, d in entry["items"].items()]


def record_proposals(project: Project, key: str, label: np.ndarray,
                     confidence: np.ndarray | None, model: str,
                     calibration: Calibration | None = None,
                     predictor: Predictor | None = None, teacher: Any = None,
                     image: np.ndarray | None = None) -> list[Proposal]:
    """Find ``key``'s proposals in its prediction and store them in its record; return them
    (:func:`find_proposals` on the photo's boxes, then :func:`store_proposals`)."""
    rec = project.record(key)
    boxes = np.array([b.xyxy for b in rec.boxes], np.float32).reshape(-1, 4)
    entry = find_proposals(label, confidence, boxes, rec.every_defect_boxed(), model,
                           calibration, predictor, teacher,
                           image if image is not None else lambda: project.load_image(key))
    return store_proposals(project, key, entry)


def _replace(p: Proposal, **kw: Any) -> Proposal:
    from dataclasses import replace

    return replace(p, **kw)


def stored_proposals(project: Project, key: str) -> dict[str, Proposal]:
    """pid -> proposal stored for ``key`` (empty when it has none)."""
    entry = project.record(key).findings.get(FINDINGS_KEY) or {}
    return {pid: Proposal.from_json(pid, d) for pid, d in dict(entry.get("items", {})).items()}


def proposal_mask(project: Project, key: str, proposal: Proposal) -> np.ndarray:
    """The proposal's bool mask (the size of its box) from the stored student mask."""
    label = project.load_mask(key, "student")
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
