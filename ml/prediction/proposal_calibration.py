"""The proposals' calibration: fitted on the validation photos and the decided proposals.

:func:`calibrate_model` first makes sure the model has its background bank
(:func:`ml.prediction.novelty_build.ensure_bank`: built from the training photos and saved
beside the weights the first time), predicts the validation photos box-free, matches their
proposals' candidates with the teacher masks (within
:data:`~ml.prediction.proposals.MATCH_PX`), adds every proposal people decided, fits
:func:`ml.evaluation.calibration.fit_calibration` and writes it into the model card.
:func:`ensure_calibration` is what prediction uses: the card's, or one fitted now for a
model whose card has none (``b2p predict`` and a campaign alike).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.common.classes import IGNORE
from ml.common.progress import ProgressFn, Reporter, StopFn
from ml.evaluation.calibration import Calibration, fit_calibration, from_card, save_to_card
from ml.prediction.proposals import MATCH_PX, Candidate, photo_candidates
from ml.project.store import Project

if TYPE_CHECKING:
    from ml.prediction.predict import Predictor

SCORE = "defect"  # the raw confidence a calibration fitted here maps (Calibration.score)


def label_candidates(cands: list[Candidate], truth: np.ndarray,
                     match_px: int = MATCH_PX) -> np.ndarray:
    """1 for each candidate within ``match_px`` of a true defect pixel of ``truth``."""
    import cv2

    t = ((truth > 0) & (truth != IGNORE)).astype(np.uint8)
    if match_px > 0:
        k = 2 * match_px + 1
        t = cv2.dilate(t, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    out = np.zeros(len(cands), np.int64)
    for j, c in enumerate(cands):
        x0, y0, x1, y1 = c.proposal.box
        out[j] = int((t[y0:y1, x0:x1].astype(bool) & c.mask).any())
    return out


def calibrate_model(project: Project, model_dir: str | Path, predictor: Predictor | None = None,
                    keys: list[str] | None = None, target: float = 0.8,
                    decided: list[tuple[float, int, int, float, float | None]] | None = None,
                    progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                    save: bool = True) -> Calibration:
    """Fit the proposal calibration on validation photos and store it in the model's card.

    ``keys``: photos with a mask to hold proposals against (default: the project's
    validation photos that have a teacher mask, else every photo with one); each is predicted
    box-free. ``decided``: (raw confidence, class, 1 accepted / 0 rejected, area share,
    novelty or None) of proposals people decided, added as labelled regions.
    """
    from ml.prediction.novelty_build import ensure_bank
    from ml.prediction.predict import Predictor

    if keys is None:
        masked = [k for k in project.keys() if project.record(k).teacher is not None]
        val = set(project.split.get("val") or [])
        keys = [k for k in masked if k in val] or masked
        where = "validation photos" if any(k in val for k in masked) else "training photos"
    else:
        where = "given photos"
    predictor = predictor or Predictor.from_dir(model_dir, "auto")
    bank = ensure_bank(project, model_dir, predictor, should_stop=should_stop)
    raw, truth, classes, areas, novelty = [], [], [], [], []
    rep = Reporter(len(keys), progress, should_stop)
    for k in keys:
        if rep.stopped():
            break
        mask = project.load_mask(k, "teacher")
        if mask is None:
            rep.step(message=k)
            continue
        res = predictor.predict(project.load_image(k))
        cands = photo_candidates(res.label, res.confidence, res.regions, res.defect,
                                 novelty=res.novelty)
        if cands:
            raw.extend(c.proposal.confidence for c in cands)
            novelty.extend(_nan(c.proposal.novelty) for c in cands)
            classes.extend(c.proposal.cls for c in cands)
            areas.extend(c.proposal.area / res.label.size for c in cands)
            truth.extend(label_candidates(cands, mask).tolist())
        rep.step(message=k)
    for conf, cls, ok, area, *nov in decided or []:
        raw.append(conf)
        classes.append(cls)
        truth.append(ok)
        areas.append(area)
        novelty.append(_nan(nov[0] if nov else None))
    note = f"{len(keys)} {where}" + (f" + {len(decided)} decided proposals" if decided else "")
    cal = replace(fit_calibration(np.array(raw), np.array(truth), np.array(classes), target,
                                  note=note, areas=np.array(areas),
                                  novelty=np.array(novelty) if bank is not None else None),
                  score=SCORE)
    if save:
        save_to_card(model_dir, cal)
    return cal


def _nan(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def model_calibration(model_dir: str | Path) -> Calibration:
    """The card's calibration (identity when the model has none yet)."""
    return from_card(model_dir)


def ensure_calibration(project: Project, model_dir: str | Path,
                       predictor: Predictor | None = None, device: str = "auto",
                       **options: Any) -> Calibration:
    """The card's calibration, or one fitted now (and stored) when the card has none or one of
    another raw confidence (:data:`SCORE`) (``predictor``, else one loaded on ``device`` with
    ``options``, predicts the validation photos)."""
    from ml.student.checkpoint import load_card

    stored = load_card(model_dir).calibration  # the card read once, not once per check
    if stored and (cal := Calibration.from_json(stored)).score == SCORE:
        return cal
    if predictor is None:
        from ml.prediction.predict import Predictor

        predictor = Predictor.from_dir(model_dir, device, **options)
    return calibrate_model(project, model_dir, predictor)
