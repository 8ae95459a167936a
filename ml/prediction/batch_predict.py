"""Prediction over many photos: a project's (masks stored in it) or a folder's (PNGs written).

Each photo goes through one :class:`ml.prediction.predict.Predictor`; a photo that fails is named
and the batch goes on, a stop keeps what is finished. The Dask campaign (:mod:`ml.campaign.client`)
runs the same per-photo step, :func:`predict_photo`, on its workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.common import images as _images
from ml.common.batch import BatchResult
from ml.common.classes import ClassInfo, palette
from ml.common.outnames import OutputNames
from ml.common.progress import Cancelled, Progress, ProgressFn, Reporter, StopFn
from ml.evaluation.corrections import corrections
from ml.evaluation.model_diff import ModelDiff, photo_diff, total
from ml.prediction.photo_rows import ArrayRows, RowSource, open_rows
from ml.prediction.png_stream import PngMaskSink
from ml.prediction.predict import Predictor, PredictResult
from ml.project.store import Project, boxes_to_arrays
from ml.student.checkpoint import model_id
from ml.student.config import ModelCard


def _tile_events(progress: ProgressFn | None, done: int, total: int,
                 item: str) -> ProgressFn | None:
    """A photo's tile progress as batch events: ``done`` photos of ``total``, ``tiles`` in
    extra (a photo of one model run sends none)."""
    if progress is None:
        return None

    def report(p: Progress) -> None:
        if p.total > 1:
            progress(Progress(done, total, item, {"tiles": f"{p.done}/{p.total}"}))

    return report


def _check_classes(card: ModelCard, num_classes: int, names: list[str]) -> list[str]:
    """Raise if the class counts differ; return warnings for renamed classes."""
    if card.student.num_classes != num_classes:
        raise ValueError(f"the model predicts {card.student.num_classes} classes, the project "
                         f"has {num_classes}")
    model_names = [c["name"] for c in sorted(card.classes, key=lambda c: c["id"])]
    if model_names and model_names != names:
        return [f"class names differ: model {model_names}, project {names}"]
    return []


def predict_photo(predictor: Predictor, image: np.ndarray | RowSource,
                  teacher: np.ndarray | None, boxes: np.ndarray | None,
                  classes: np.ndarray | None, fallback: bool = True,
                  progress: ProgressFn | None = None, should_stop: StopFn | None = None
                  ) -> tuple[PredictResult, np.ndarray | None]:
    """One project photo's prediction and corrections map (None without a usable teacher).

    Shared by :func:`predict_project` and the Dask workers of :mod:`ml.campaign.client`.
    """
    hw = image.shape[:2] if isinstance(image, np.ndarray) else (image.height, image.width)
    if teacher is not None and teacher.shape != hw:
        teacher = None  # stale mask of another size: neither fallback nor corrections
    result = predictor.predict(image, boxes, teacher, box_classes=classes, fallback=fallback,
                               progress=progress, should_stop=should_stop)
    corr = corrections(result.label, teacher) if teacher is not None else None
    return result, corr


def _photo_rows(project: Project, key: str) -> RowSource:
    """The photo's rows, by region where its file allows; a stale size goes through the store,
    whose ``load_image`` corrects the record."""
    w, h = project.image_size(key)  # re-reads a photo unreadable at scan
    src = open_rows(project.image_path(key))
    if (src.width, src.height) != (w, h):
        src.close()
        src = ArrayRows(project.load_image(key))
    return src


def _predict_key(project: Project, key: str, predictor: Predictor, box_constraint: bool,
                 fallback: bool = True, progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None
                 ) -> tuple[PredictResult, np.ndarray | None]:
    src = _photo_rows(project, key)
    try:
        teacher = project.load_mask(key, "teacher")
        boxes, classes = (boxes_to_arrays(project.record(key).prediction_boxes())
                          if box_constraint else (None, None))
        return predict_photo(predictor, src, teacher, boxes, classes, fallback, progress,
                             should_stop)
    finally:
        src.close()


@dataclass(frozen=True, kw_only=True)
class Predictions(BatchResult):
    """A prediction batch: ``done`` photos got a student mask, ``failed`` name the others."""

    model: str
    fallback_boxes: int = 0  # boxes where the student found nothing and the teacher's mask held
    seconds: float = 0.0
    changes: ModelDiff | None = None  # against the previous model, photos that have its masks


def _why(e: Exception) -> str:
    # an ImageError already names the photo, which the key names too
    return e.reason if isinstance(e, _images.ImageError) else f"{type(e).__name__}: {e}"


def _each_photo(items: list[str], rep: Reporter, work: Callable[[str], None]
                ) -> tuple[list[str], dict[str, str], bool]:
    """``work`` on each item until a stop: (done, failed with why, stopped).

    A photo that fails is named and the batch goes on; a stop mid-photo (``Cancelled``)
    keeps nothing of that photo.
    """
    done: list[str] = []
    failed: dict[str, str] = {}
    for item in items:
        if rep.stopped():
            return done, failed, True
        try:
            work(item)
            done.append(item)
        except Cancelled:
            return done, failed, True
        except Exception as e:  # one bad photo must not end the batch
            failed[item] = _why(e)
        rep.step(message=item)
    return done, failed, False


def predict_project(project: Project, model_dir: str | Path, keys: list[str] | None = None,
                    tiled: bool = False, box_constraint: bool = True, device: str = "auto",
                    progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                    fallback: bool = True, keep_previous: bool = True,
                    proposals: bool = True, proposal_teacher: str | None = "grabcut",
                    **options: Any) -> Predictions:
    """Predict photos of a project and store the student masks.

    A photo that fails is named in ``failed`` and the batch goes on; stopping keeps what is
    finished. ``fallback=False``: boxes the student finds empty stay empty (no teacher mask).
    ``keep_previous``: a student mask made by another model is kept as the ``previous`` mask
    before it is overwritten (:mod:`ml.evaluation.model_diff` compares the two); predicting again
    with the same model keeps the older model's. ``options`` go to :class:`Predictor` (overlap,
    batch_size, box_pad). ``proposals``: each photo's proposals (the defects found outside a
    person's boxes) are stored in its record (:mod:`ml.prediction.proposals`; a model without a
    calibration is calibrated on the validation photos first), ``proposal_teacher`` scoring
    their disagreement with a teacher (None: not).
    """
    predictor = Predictor.from_dir(model_dir, device, tiled=tiled, **options)
    warnings = _check_classes(predictor.card, project.num_classes, project.class_names())
    mid = model_id(model_dir)
    keys = project.keys() if keys is None else list(keys)
    settings = {**predictor.settings(), "box_constraint": box_constraint,
                "fallback": fallback, "model_dir": str(model_dir)}
    fallbacks: list[int] = []
    diffs: list[ModelDiff] = []
    rep = Reporter(len(keys), progress, should_stop)
    cal, teacher = (_proposal_setup(project, model_dir, predictor, proposal_teacher) if proposals
                    else (None, None))

    from ml.prediction.proposals import drawn, project_proposals, proposed_map, store_proposals

    def one(key: str) -> None:
        tiles = _tile_events(progress, rep.done, rep.total, key)
        result, corr = _predict_key(project, key, predictor, box_constraint, fallback, tiles,
                                    should_stop)
        found = proposed = None
        if proposals:  # first: the proposals found under the mask's threshold, beside it
            proposed = proposed_map(result)
            found = project_proposals(project, key, result, mid, cal, predictor, teacher,
                                      proposed=proposed)
        with project.batch():  # one photo's masks land together; compute stays outside
            if keep_previous:
                project.keep_previous(key, new_model=mid)
            project.save_student(key, result.label, model=mid, confidence=result.confidence,
                                 corrections=corr, settings=settings,
                                 proposed=drawn(proposed))
        if found is not None:
            store_proposals(project, key, found)
        if project.record(key).previous is not None:  # counts only, not the maps
            diffs.append(total([d for d in [photo_diff(project, key)] if d]))
        fallbacks.append(result.fallbacks)

    t0 = time.monotonic()
    done, failed, stopped = _each_photo(keys, rep, one)
    return Predictions(action="predicted", total=len(keys), done=tuple(done), failed=failed,
                       stopped=stopped, warnings=tuple(warnings), model=mid,
                       fallback_boxes=sum(fallbacks), seconds=round(time.monotonic() - t0, 2),
                       changes=total(diffs) if diffs else None)


def _proposal_setup(project: Project, model_dir: str | Path, predictor: Predictor,
                    teacher: str | None) -> tuple[Any, Any]:
    """The model's proposal calibration (fitted now on the validation photos when its card has
    none) and the teacher that scores the proposals' disagreement."""
    from ml.prediction.proposal_calibration import ensure_calibration

    cal = ensure_calibration(project, model_dir, predictor)
    if teacher is None:
        return cal, None
    from ml.teachers import make_teacher

    return cal, make_teacher(teacher)


def predict_folder(images_dir: str | Path, model_dir: str | Path, out_dir: str | Path,
                   tiled: bool = False, device: str = "auto", progress: ProgressFn | None = None,
                   should_stop: StopFn | None = None, **options: Any) -> Predictions:
    """Predict every photo under ``images_dir`` into ``out_dir`` (label + ``_conf`` PNGs)."""
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    files = _images.list_images(images_dir)
    predictor = Predictor.from_dir(model_dir, device, tiled=tiled, **options)
    classes = [ClassInfo.from_json(c) for c in predictor.card.classes]
    pal = palette(classes) if classes else None
    rep = Reporter(len(files), progress, should_stop)
    names = OutputNames((".png", "_conf.png"))  # a.png and a.jpg must not share a.png

    def one(rel: str) -> None:
        stem = out_dir / names(rel)
        tiles = _tile_events(progress, rep.done, rep.total, rel)
        # the masks are written band by band as they are predicted; a stop or a failure
        # mid-photo leaves no file behind (nor changes an older one)
        with open_rows(images_dir / rel) as src, PngMaskSink(
                f"{stem}.png", f"{stem}_conf.png", src.width, src.height, pal) as sink:
            predictor.stream(src, sink, progress=tiles, should_stop=should_stop)

    t0 = time.monotonic()
    done, failed, stopped = _each_photo(
        [path.relative_to(images_dir).as_posix() for path in files], rep, one)
    return Predictions(action="predicted", total=len(files), done=tuple(done), failed=failed,
                       stopped=stopped, model=model_id(model_dir),
                       seconds=round(time.monotonic() - t0, 2))
