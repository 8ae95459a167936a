"""Segmentation scores, all derived from one confusion matrix.

``confusion(pred, gt, C)`` counts pixels (rows: ground truth, columns: prediction); matrices of
several images add up. :func:`scores` turns a matrix into per-class and summary figures.

A class absent from both the ground truth and the prediction has no defined IoU or F1: its
per-class values are NaN and it is left out of every mean (``miou``, ``anomaly_miou``,
``anomaly_f1``). A mean over no defined class is NaN. Precision is NaN for a class never
predicted and recall NaN for a class never present.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

IGNORE = 255


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
