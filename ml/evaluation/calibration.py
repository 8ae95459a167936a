"""Calibrated region confidence: a proposal's raw confidence turned into P(it is a real defect).

A proposal's raw confidence (:mod:`ml.prediction.proposals`) is the mean of the student's
max-class probability over its pixels; the student is trained on pixels, not regions, so that
number is not the chance the region is a defect. :func:`fit_calibration` maps it onto that
chance from labelled regions (validation photos' proposals matched to their masks, and the
proposals people decided):

* ``logistic`` when each region's size is known and there are at least
  :data:`LOGISTIC_MIN` regions of both outcomes: ``sigmoid(a logit(c) + s log(area share) +
  b)``, fitted by L2-regularised Newton steps. A region's size says more than its mean
  confidence: false alarms are mostly small blips of texture (round 15 measured, on the
  proposals of two real sets, an AUC of 0.79-0.81 for the log area against 0.64-0.67 for the
  mean confidence). Its weights are fitted on each project's own labelled regions, so how
  much size counts is the project's, not a constant of ours. Where the model has a background
  bank (:mod:`ml.student.novelty`) a third term, ``n log(novelty)`` of the region's highest
  novelty, joins them: on blobs the student scores defects and tile texture alike and
  novelty tells them apart, on cracks size and confidence already do (docs/RESULTS.md round
  29), and the fit says which it is for the project at hand;
* ``isotonic`` (pool-adjacent-violators, monotone, no shape assumed) when sizes are not given
  and there are at least :data:`ISOTONIC_MIN` regions of both outcomes, else
* ``temperature``: ``sigmoid((logit(c) - b) / T)``, T and b by grid search on the log loss
  (the two-parameter form: region confidences sit far above 0.5, so T alone cannot move them
  down).

The expected calibration error (:func:`ece`, equal-width bins) is reported before and after.
:func:`threshold_for_precision` picks, per class, the lowest calibrated confidence whose
proposals at or above it reach the target precision (default 0.8), as the median of that cut
over bootstrap resamples of the labelled regions (one lucky region does not move it). A class
with fewer than :data:`LOGISTIC_MIN` labelled regions of either outcome shares the threshold
picked on all classes' regions together (stored under ``"all"``, which a class with no region
takes too): the calibrated confidence is one map for every class, and a cut chosen on a dozen
regions of one class is a gamble (round 19: on magnetic_tile's 15 validation photos, three
classes of 12-19 regions each, per-class cuts let through proposals 0.66 real on the unboxed
half; the shared cut 0.73). The result is a frozen
:class:`Calibration` that travels as JSON in the model card (``ModelCard.calibration``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ml.evaluation.calibration_maps import (
    fit_isotonic,
    fit_logistic,
    fit_temperature,
    log_novelty,
    logit,
    sigmoid,
)

TARGET_PRECISION = 0.8
ISOTONIC_MIN = 30  # regions of each outcome before the isotonic map is trusted
LOGISTIC_MIN = 8  # regions of each outcome before confidence and size are fitted together
DEFAULT_THRESHOLD = 0.5  # no labelled region at all: this calibrated confidence
RESAMPLES = 200  # bootstrap resamples of the labelled regions a threshold is the median over
ALL = "all"  # Calibration.thresholds' key of the threshold picked on every class's regions


def ece(prob: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: mean |accuracy - confidence| over equal-width bins,
    weighted by how many regions fall in each (0 for no region)."""
    p, y = np.asarray(prob, np.float64), np.asarray(truth, np.float64)
    if p.size == 0:
        return 0.0
    idx = np.minimum((p * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.sum() * abs(y[m].mean() - p[m].mean())
    return float(err / p.size)


@dataclass(frozen=True)
class ClassThreshold:
    """The calibrated confidence a class's proposals must reach, and what it gives."""

    threshold: float
    precision: float | None  # on the labelled regions at or above it; None: none labelled
    recall: float | None
    met: bool  # the target precision was reached
    regions: int = 0  # labelled regions of the class
    shared: bool = False  # too few regions of its own: the threshold of all classes together


@dataclass(frozen=True)
class Calibration:
    """Raw region confidence -> calibrated, and the per-class thresholds."""

    method: str = "identity"  # identity | temperature | isotonic | logistic
    temperature: float = 1.0
    bias: float = 0.0
    area_weight: float = 0.0  # logistic: the weight of log(area share); its confidence
    conf_weight: float = 1.0  # weight and its bias are these two and ``bias``
    novelty_weight: float = 0.0  # logistic: the weight of log(novelty) (0: fitted without)
    novelty_ref: float = 1.0  # the novelty a region without one counts at (the fit's median)
    knots_x: tuple[float, ...] = ()
    knots_y: tuple[float, ...] = ()
    target_precision: float = TARGET_PRECISION
    thresholds: dict[str, ClassThreshold] = field(default_factory=dict)  # str(class id) ->
    ece_before: float | None = None
    ece_after: float | None = None
    regions: int = 0
    positives: int = 0
    note: str = ""  # where the labelled regions came from, or why there were none
    # str(class id) -> [[threshold, precision, recall], ...]: what each cut gives (a slider)
    curves: dict[str, list[list[float]]] = field(default_factory=dict)
    # what the raw confidence was when it was fitted: "defect" (the mean defect score over a
    # region found at the proposal threshold) or "top_class" (the mean top-class probability
    # over a region of the mask: the calibrations fitted before round 19)
    score: str = "top_class"

    def apply(self, raw: np.ndarray | float, area: np.ndarray | float | None = None,
              novelty: np.ndarray | float | None = None) -> np.ndarray:
        """Calibrated confidence of raw region confidence(s), in [0, 1]; ``area``: each
        region's share of its photo (the ``logistic`` map needs it); ``novelty``: each
        region's highest novelty (None, or NaN for one region: ``novelty_ref``)."""
        c = np.asarray(raw, np.float64)
        if self.method == "logistic":
            if area is None:
                raise ValueError("this calibration weighs each region's size: give its area")
            a = np.log(np.clip(np.asarray(area, np.float64), 1e-12, 1.0))
            z = self.conf_weight * logit(c) + self.area_weight * a + self.bias
            if self.novelty_weight:
                n = np.asarray(self.novelty_ref if novelty is None else novelty, np.float64)
                z = z + self.novelty_weight * log_novelty(np.where(np.isnan(n),
                                                                     self.novelty_ref, n))
            return sigmoid(z)
        if self.method == "isotonic" and self.knots_x:
            return np.interp(c, self.knots_x, self.knots_y)
        if self.method == "temperature":
            return sigmoid((logit(c) - self.bias) / self.temperature)
        return np.clip(c, 0.0, 1.0)

    def threshold(self, cls: int) -> float:
        t = self.thresholds.get(str(int(cls))) or self.thresholds.get(ALL)
        return DEFAULT_THRESHOLD if t is None else t.threshold

    @property
    def fitted(self) -> bool:
        return self.method != "identity"

    def summary(self) -> str:
        if not self.fitted:
            return f"not calibrated ({self.note or 'no labelled regions'})"
        ths = ", ".join(("all classes" if k == ALL else f"class {k}") + f": {v.threshold:.2f}"
                        + (" (shared)" if v.shared else "")
                        + ("" if v.met else " (target missed)")
                        for k, v in sorted(self.thresholds.items()))
        how = (("logistic (confidence, size and novelty)" if self.novelty_weight else
                "logistic (confidence and size)") if self.method == "logistic" else self.method)
        return (f"{how} on {self.regions} regions ({self.positives} real); "
                f"ECE {self.ece_before:.3f} -> {self.ece_after:.3f}; thresholds for precision "
                f"{self.target_precision:g}: {ths}")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["knots_x"], d["knots_y"] = list(self.knots_x), list(self.knots_y)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Calibration:
        if not d:
            return cls()
        th = {str(k): ClassThreshold(**v) for k, v in dict(d.get("thresholds", {})).items()}
        keep = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "thresholds"}
        keep["knots_x"] = tuple(keep.get("knots_x", ()))
        keep["knots_y"] = tuple(keep.get("knots_y", ()))
        return cls(**keep, thresholds=th)


def pr_curve(prob: np.ndarray, truth: np.ndarray, points: int = 25) -> list[list[float]]:
    """[threshold, precision, recall] at up to ``points`` cuts, highest threshold first."""
    p, y = np.asarray(prob, np.float64), np.asarray(truth, bool)
    if p.size == 0:
        return []
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    cuts = np.nonzero(np.r_[ps[1:] != ps[:-1], True])[0]
    cuts = cuts[np.unique(np.linspace(0, len(cuts) - 1, min(points, len(cuts))).round()
                          .astype(int))]
    return [[round(float(ps[i]), 4), round(float(tp[i] / (i + 1)), 4),
             round(float(tp[i] / max(int(ys.sum()), 1)), 4)] for i in cuts]


def at_threshold(curve: list[list[float]], t: float) -> tuple[float | None, float | None]:
    """(precision, recall) of a curve at threshold ``t``: the lowest cut at or above it."""
    above = [c for c in curve if c[0] >= t]
    return (above[-1][1], above[-1][2]) if above else (None, 0.0)


def threshold_for_precision(prob: np.ndarray, truth: np.ndarray,
                            target: float = TARGET_PRECISION) -> ClassThreshold:
    """The cut for precision ``target``: the median, over :data:`RESAMPLES` bootstrap
    resamples of the labelled regions, of :func:`lowest_cut` (a fixed seed: the same regions
    give the same cut).

    The lowest cut that just reaches the target on a few dozen labelled regions is the one luck
    favoured most, and it jumps with each region; the median over resamples keeps what the
    regions agree on (bagging). Rounds 19-20 demanded instead the target one standard error
    below each cut's precision (the Wilson interval's lower end), which with 9-16 real regions
    holds only where the precision is 1.0. Round 21 compared the two on four fresh students
    (both halves of magnetic_tile and of crackforest, each scored on the half it never saw
    boxed): the queue's first 100 real / true defects held went from 0.72 / 0.50, 1.00 / 0.26,
    0.77 / 0.85, 0.90 / 0.70 to 0.79 / 0.41, 0.86 / 0.38, 0.78 / 0.88, 0.90 / 0.84. The
    returned precision and recall are the regions' own at the cut; ``met``: that precision
    reaches the target. With no region, :data:`DEFAULT_THRESHOLD`.
    """
    p, y = np.asarray(prob, np.float64), np.asarray(truth, bool)
    if p.size == 0:
        return ClassThreshold(DEFAULT_THRESHOLD, None, None, False, 0)
    rng = np.random.default_rng(0)
    cuts = [lowest_cut(p[j], y[j], target)
            for j in rng.integers(0, p.size, (RESAMPLES, p.size))]
    t = float(np.median(cuts))  # at most the highest confidence: some region passes it
    above = p >= t
    prec = float(y[above].mean())
    return ClassThreshold(t, prec, float(y[above].sum() / max(int(y.sum()), 1)),
                          prec >= target, int(p.size))


def lowest_cut(p: np.ndarray, y: np.ndarray, target: float) -> float:
    """The lowest confidence whose regions at or above it reach precision ``target``; where
    none does, the cut of the best precision (ties: the lowest)."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    prec = np.cumsum(ys) / np.arange(1, p.size + 1)
    last = np.r_[ps[1:] != ps[:-1], True]  # a cut can only sit after the last of equal ones
    ok = np.nonzero(last & (prec >= target))[0]
    if ok.size:
        return float(ps[ok[-1]])
    cand = np.nonzero(last)[0]
    return float(ps[cand[np.argmax(prec[cand])]])


def _at(prob: np.ndarray, truth: np.ndarray, t: float, target: float) -> ClassThreshold:
    """The shared threshold ``t`` on one class's regions: its precision and recall there."""
    above = prob >= t
    prec = float(truth[above].mean()) if above.any() else None
    rec = float(truth[above].sum() / truth.sum()) if truth.sum() else None
    return ClassThreshold(float(t), prec, rec, prec is not None and prec >= target,
                          int(prob.size), shared=True)


def fit_calibration(raw: np.ndarray, truth: np.ndarray, classes: np.ndarray,
                    target: float = TARGET_PRECISION, method: str = "auto",
                    note: str = "", areas: np.ndarray | None = None,
                    novelty: np.ndarray | None = None) -> Calibration:
    """Fit the map and the per-class thresholds on labelled regions.

    ``raw``: raw region confidences; ``truth``: 1 where the region is a real defect;
    ``classes``: each region's class id; ``areas``: each region's share of its photo (None:
    unknown); ``novelty``: each region's highest novelty (None: the model has no background
    bank; NaN for a region without one, which counts at the others' median).
    ``method``: auto | temperature | isotonic | logistic.
    """
    c = np.asarray(raw, np.float64).reshape(-1)
    y = np.asarray(truth, np.float64).reshape(-1)
    k = np.asarray(classes, np.int64).reshape(-1)
    ar = None if areas is None else np.asarray(areas, np.float64).reshape(-1)
    if not (c.size == y.size == k.size) or (ar is not None and ar.size != c.size):
        raise ValueError("raw, truth, classes (and areas) must have one entry per region")
    if not 0 < target <= 1:
        raise ValueError(f"target precision must be in (0, 1], got {target}")
    if c.size == 0:
        return Calibration(target_precision=target, note=note or "no labelled regions")
    pos = int(y.sum())
    if method == "auto":
        few = min(pos, c.size - pos)
        method = ("logistic" if ar is not None and few >= LOGISTIC_MIN else
                  "isotonic" if ar is None and few >= ISOTONIC_MIN else "temperature")
    if method == "logistic":
        if ar is None:
            raise ValueError("the logistic calibration needs each region's area")
        nv, ref = _known_novelty(novelty, c.size)
        a, sw, b, nw = fit_logistic(c, ar, y, nv)
        if nw < 0:  # stranger than background never makes a region less likely a defect:
            a, sw, b, nw = fit_logistic(c, ar, y)  # the bound's optimum is the fit without it
        cal = Calibration("logistic", bias=b, area_weight=sw, conf_weight=a,
                          novelty_weight=nw, novelty_ref=ref)
    elif method == "isotonic":
        kx, ky = fit_isotonic(c, y)
        cal = Calibration("isotonic", knots_x=tuple(kx), knots_y=tuple(ky))
    elif method == "temperature":
        t, b = fit_temperature(c, y)
        cal = Calibration("temperature", temperature=t, bias=b)
    else:
        raise ValueError(f"unknown calibration method '{method}' "
                         "(temperature, isotonic, logistic)")
    p = cal.apply(c, ar, None if novelty is None else np.asarray(novelty, np.float64))
    ths = {ALL: threshold_for_precision(p, y, target)}
    for cls in np.unique(k):
        pc, yc = p[k == cls], y[k == cls]
        if min(int(yc.sum()), int((1 - yc).sum())) >= LOGISTIC_MIN:
            ths[str(int(cls))] = threshold_for_precision(pc, yc, target)
        else:  # too few to cut on its own: the shared cut, with what it gives this class
            ths[str(int(cls))] = _at(pc, yc, ths[ALL].threshold, target)
    curves = {str(int(cls)): pr_curve(p[k == cls], y[k == cls]) for cls in np.unique(k)}
    return replace(cal, target_precision=target, thresholds=ths, ece_before=ece(c, y),
                   ece_after=ece(p, y), regions=int(c.size), positives=pos, note=note,
                   curves=curves)


def _known_novelty(novelty: np.ndarray | None, n: int) -> tuple[np.ndarray | None, float]:
    """(novelty with the unknown at the known median, that median); (None, 1) when no region
    has one."""
    if novelty is None:
        return None, 1.0
    v = np.asarray(novelty, np.float64).reshape(-1)
    if v.size != n:
        raise ValueError("novelty must have one entry per region")
    known = v[~np.isnan(v)]
    if not known.size:
        return None, 1.0
    ref = float(np.median(known))
    return np.where(np.isnan(v), ref, v), ref


def save_to_card(model_dir: str | Path, cal: Calibration) -> None:
    """Store ``cal`` in the model folder's card (atomic, like every card write)."""
    from ml.student.checkpoint import CARD_NAME, load_card

    card = load_card(model_dir)
    card.calibration = cal.to_json()
    card.save(Path(model_dir) / CARD_NAME)


def with_threshold(cal: Calibration, cls: int, t: float) -> Calibration:
    """``cal`` with class ``cls``'s threshold set to ``t`` by a person (the GUI's slider)."""
    prec, rec = at_threshold(cal.curves.get(str(int(cls)), []), t)
    old = cal.thresholds.get(str(int(cls)))
    th = ClassThreshold(float(t), prec, rec, prec is not None and prec >= cal.target_precision,
                        old.regions if old else 0)
    return replace(cal, thresholds={**cal.thresholds, str(int(cls)): th})


def from_card(model_dir: str | Path) -> Calibration:
    """The calibration stored in a model's card (identity where none was stored)."""
    from ml.student.checkpoint import load_card

    return Calibration.from_json(getattr(load_card(model_dir), "calibration", None))
