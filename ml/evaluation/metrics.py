"""Segmentation scores, all derived from one confusion matrix.

``confusion(pred, gt, C)`` counts pixels (rows: ground truth, columns: prediction); matrices of
several images add up. :func:`scores` turns a matrix into per-class and summary figures.

A class absent from both the ground truth and the prediction has no defined IoU or F1: its
per-class values are NaN and it is left out of every mean (``miou``, ``anomaly_miou``,
``anomaly_f1``). A mean over no defined class is NaN. Precision is NaN for a class never
predicted and recall NaN for a class never present.

:func:`score_masks` and :func:`score_project` score masks against a folder of ground-truth
label PNGs; each photo's file is found by :func:`ml.common.images.label_file`, the one rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.common.classes import IGNORE
from ml.common.images import label_file, list_images, load_label
from ml.evaluation.regions import RegionCounts, region_counts

if TYPE_CHECKING:
    from ml.project.store import Project

MaskFn = Callable[[str], "np.ndarray | None"]


def _as_numpy(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensor, without importing torch here
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def confusion(pred: Any, gt: Any, num_classes: int, ignore: int = IGNORE) -> np.ndarray:
    """(C, C) int64 pixel counts, rows = ground truth, columns = prediction."""
    p = _as_numpy(pred).astype(np.int64, copy=False).ravel()
    g = _as_numpy(gt).astype(np.int64, copy=False).ravel()
    if p.shape != g.shape:
        raise ValueError(f"prediction and ground truth differ in size: {p.size} vs {g.size}")
    keep = g != ignore
    p, g = p[keep], g[keep]
    bad = (g < 0) | (g >= num_classes) | (p < 0) | (p >= num_classes)
    if bad.any():
        raise ValueError(f"class ids outside 0..{num_classes - 1} (or {ignore} in the ground "
                         "truth) found")
    return np.bincount(g * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes).astype(np.int64)


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else math.nan


def _nanmean(values: list[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


def _counts(tp: float, fp: float, fn: float) -> dict[str, float]:
    return {"iou": _ratio(tp, tp + fp + fn), "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn), "f1": _ratio(2 * tp, 2 * tp + fp + fn)}


def scores(cm: np.ndarray, class_names: list[str] | None = None) -> dict[str, Any]:
    """Per-class IoU/precision/recall/F1 and the summary figures of a confusion matrix.

    Keys: ``per_class`` ({name: {iou, precision, recall, f1, support}}), ``miou``,
    ``anomaly_miou`` and ``anomaly_f1`` (means over classes > 0), ``binary_iou``,
    ``binary_f1``, ``binary_precision``, ``binary_recall`` (every defect class merged
    against background), ``pixel_accuracy`` and ``pixels``.
    """
    cm = np.asarray(cm, dtype=np.int64)
    c = cm.shape[0]
    if cm.ndim != 2 or cm.shape[1] != c:
        raise ValueError(f"confusion matrix must be square, got {cm.shape}")
    names = list(class_names) if class_names is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise ValueError(f"{len(names)} class names for a {c}-class matrix")
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    per_class = {}
    for i, name in enumerate(names):
        per_class[name] = _counts(tp[i], fp[i], fn[i]) | {"support": int(cm[i].sum())}
    ious = [per_class[n]["iou"] for n in names]
    f1s = [per_class[n]["f1"] for n in names]
    total = int(cm.sum())
    # Binary: any defect class counts as defect, whatever the class confusion among defects.
    b_tp = float(cm[1:, 1:].sum())
    b_fp = float(cm[0, 1:].sum())
    b_fn = float(cm[1:, 0].sum())
    binary = _counts(b_tp, b_fp, b_fn)
    return {"per_class": per_class, "miou": _nanmean(ious), "anomaly_miou": _nanmean(ious[1:]),
            "anomaly_f1": _nanmean(f1s[1:]), "binary_iou": binary["iou"],
            "binary_f1": binary["f1"], "binary_precision": binary["precision"],
            "binary_recall": binary["recall"], "pixel_accuracy": _ratio(tp.sum(), total),
            "pixels": total}


@dataclass(frozen=True)
class GroundTruthScores:
    """Masks scored against ground truth, and which photos took part."""

    scores: dict[str, Any]  # :func:`scores` of the summed confusion matrix, region scores
    confusion: np.ndarray  # (C, C) int64, rows = ground truth
    scored: tuple[str, ...]  # photo keys that were compared
    missing: tuple[str, ...]  # photos with ground truth but without a mask
    failed: dict[str, str]  # photo key -> why it could not be compared
    unmatched: tuple[str, ...]  # ground-truth files (relative paths) that no photo claimed
    # photo key -> (intersection, union) of the binary defect masks: they add up to
    # ``scores["binary_iou"]``, and two scorings of the same photos can be compared photo by
    # photo (:mod:`ml.evaluation.paired`)
    per_photo: dict[str, tuple[int, int]] = field(default_factory=dict)


class GroundTruthScorer:
    """Masks scored against ``gt_dir``'s label PNGs one photo at a time, as they are read.

    Photos without a ground-truth file are left out. A photo without a mask is listed under
    ``missing``, or scored as all background with ``missing_as_background``. A ground truth
    whose size differs from the mask, or with unknown class ids, is listed under ``failed``.
    """

    def __init__(self, gt_dir: str | Path, class_names: list[str],
                 missing_as_background: bool = False) -> None:
        self.gt_dir = Path(gt_dir)
        if not self.gt_dir.is_dir():
            raise FileNotFoundError(f"{self.gt_dir}: ground-truth folder not found")
        self.class_names = class_names
        self.missing_as_background = missing_as_background
        self.cm = np.zeros((len(class_names), len(class_names)), np.int64)
        self.claimed: set[Path] = set()
        self.scored: list[str] = []
        self.missing: list[str] = []
        self.failed: dict[str, str] = {}
        self.regions = RegionCounts()  # box-free findings: found and false-alarm regions
        self.per_photo: dict[str, tuple[int, int]] = {}

    def ground_truth(self, key: str) -> Path | None:
        """The ground-truth file of ``key`` (claimed for it), or None: nothing to score."""
        f = label_file(self.gt_dir, key)
        if f is not None:
            self.claimed.add(f)
        return f

    def add(self, key: str, pred: np.ndarray | None, gt_file: Path) -> None:
        """Score ``pred`` (None: no mask) against ``gt_file``."""
        if pred is None and not self.missing_as_background:
            self.missing.append(key)
            return
        try:
            gt = load_label(gt_file)
            pred = np.zeros_like(gt) if pred is None else pred
            if gt.shape != pred.shape:
                raise ValueError(f"ground truth {gt.shape} and mask {pred.shape} differ")
            cm = confusion(pred, gt, len(self.class_names))
            self.cm += cm
            # binary: any defect class against background (a class mix-up still overlaps)
            self.per_photo[key] = (int(cm[1:, 1:].sum()), int(cm.sum() - cm[0, 0]))
            self.regions = self.regions + region_counts(pred, gt)
            self.scored.append(key)
        except ValueError as e:  # ImageError is a ValueError too
            self.failed[key] = str(e)

    def result(self) -> GroundTruthScores:
        unmatched = tuple(p.relative_to(self.gt_dir).as_posix()
                          for p in list_images(self.gt_dir) if p not in self.claimed)
        summary = {**scores(self.cm, self.class_names), **self.regions.as_dict()}
        return GroundTruthScores(summary, self.cm.copy(),
                                 tuple(self.scored), tuple(self.missing), dict(self.failed),
                                 unmatched, dict(self.per_photo))


def score_masks(keys: Iterable[str], gt_dir: str | Path, mask: MaskFn, class_names: list[str],
                missing_as_background: bool = False) -> GroundTruthScores:
    """Score ``mask(key)`` against each photo's ground-truth label PNG under ``gt_dir``
    (the rules of :class:`GroundTruthScorer`)."""
    scorer = GroundTruthScorer(gt_dir, class_names, missing_as_background)
    for key in keys:
        f = scorer.ground_truth(key)
        if f is not None:
            scorer.add(key, mask(key), f)
    return scorer.result()


def score_project(project: Project, gt_dir: str | Path, source: str = "student",
                  keys: Iterable[str] | None = None,
                  missing_as_background: bool = False) -> GroundTruthScores:
    """Score a project's ``source`` masks (teacher | student | reviewed) against ground truth."""
    return score_masks(project.keys() if keys is None else keys, gt_dir,
                       lambda k: project.load_mask(k, source), project.class_names(),
                       missing_as_background)
