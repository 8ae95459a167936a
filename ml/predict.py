"""Student inference: whole-image or tiled prediction, box-constrained masks, corrections map.

Modes: ``resize`` (the paper: the photo is resized to ``input_size`` squared, class
probabilities are resized back) and ``tiled`` (native resolution: overlapping ``input_size``
tiles blended with a linear-ramp window; photos smaller than a tile are reflect-padded).
A model trained on crops (``card.train.crop`` > 0) is always tiled at its training scale: the
photo is scaled as the training cache scaled it (long side at most
:func:`ml.data.cache_long_side`) and by input size / crop, tiled, and the probabilities are
resized back, so training and prediction see defects at the same pixel size.

Box constraint, where a person drew boxes: only pixels inside the boxes (padded by ``box_pad``
px) may be defects; which of them are is the box rule's call (:mod:`ml.box_decode`: by default
the tightness prior, a threshold relative to the student's peak in the box; ``posterior``: the
prior-corrected defect probability above 0.5). Its class is the box's class: the person said
what the defect is, the student says where. Where boxes of different classes overlap, the
student picks the likelier of their classes; a box whose class the model does not know lets the
student pick any defect class. Fallback (the product's default, ``fallback=False`` turns it
off): a box in which the student finds no defect pixel takes the teacher's mask inside the box
(nothing when there is no teacher mask). Outside the boxes: background. Scoring the student
itself needs the fallback off, or a student that finds nothing scores as its teacher.

Prior correction (``posterior`` rule): the class-weighted cross-entropy (0.4, 4, 4) shifts the
student's posteriors towards defects by the weight ratio, which buys recall when it scans a
whole photo; inside a person's box the box already supplies that recall, so the shift is undone
(each class probability divided by its training weight, then renormalised) before the 0.5
decision. The ``tight`` rule is relative to the box's peak and needs no correction.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import images as _images
from .batch import BatchResult
from .box_decode import check_rule, tight_mask
from .checkpoint import load_model, model_id
from .classes import ClassInfo, palette
from .config import ModelCard
from .corrections import corrections
from .device import resolve_device
from .model_diff import ModelDiff, photo_diff, total
from .outnames import OutputNames
from .progress import ProgressFn, Reporter, StopFn
from .store import Project, boxes_to_arrays


@dataclass
class PredictResult:
    label: np.ndarray  # (H, W) uint8 class ids
    confidence: np.ndarray  # (H, W) uint8: max class probability * 255
    probs: np.ndarray | None = None  # (C, H, W) float16, when asked for
    fallbacks: int = 0  # boxes that took the teacher's mask


def _ramp_window(size: int, overlap: int) -> torch.Tensor:
    """(size, size) blending weights: linear ramps over the overlap, 1 inside, never 0."""
    w = torch.ones(size)
    if overlap > 0:
        ramp = torch.arange(1, overlap + 1, dtype=torch.float32) / (overlap + 1)
        w[:overlap] = ramp
        w[-overlap:] = torch.minimum(w[-overlap:], ramp.flip(0))
    return w[:, None] * w[None, :]


def _starts(n: int, tile: int, step: int) -> list[int]:
    """Tile origins covering ``n`` pixels; the last tile is flush with the end."""
    if n <= tile:
        return [0]
    return sorted(set(range(0, n - tile, step)) | {n - tile})


class Predictor:
    """A trained model ready for numpy-in, numpy-out prediction of single photos."""

    def __init__(self, model: nn.Module, card: ModelCard, device: str | torch.device = "cpu",
                 tiled: bool = False, overlap: float = 0.25, batch_size: int = 4,
                 box_pad: int = 4, box_rule: str = "tight") -> None:
        if not 0 <= overlap < 1:
            raise ValueError(f"tile overlap must be in [0, 1), got {overlap}")
        self.device = resolve_device(str(device))
        self.model = model.to(self.device).eval()
        self.card = card
        self.tile = int(card.student.input_size)
        self.tiled = tiled
        self.crop = max(int(card.train.crop), 0)  # > 0: tile at the training crops' scale
        self.overlap = int(round(self.tile * overlap))
        self.batch_size = max(1, int(batch_size))
        self.box_pad = int(box_pad)
        self.box_rule = check_rule(box_rule)
        self.class_weights = _training_weights(card)

    @classmethod
    def from_dir(cls, model_dir: str | Path, device: str | torch.device = "auto",
                 **options: Any) -> Predictor:
        model, card = load_model(model_dir, "cpu")
        return cls(model, card, device, **options)

    def settings(self) -> dict[str, Any]:
        """What made a prediction, stored beside each mask."""
        tiles = self.tiled or self.crop > 0
        return {"mode": "tiled" if tiles else "resize", "input_size": self.tile,
                "train_crop": self.crop,
                "overlap": self.overlap if tiles else 0, "box_pad": self.box_pad,
                "box_rule": self.box_rule,
                "box_prior_correction": (self.box_rule == "posterior"
                                         and self.class_weights is not None),
                "box_classes": True}

    @torch.inference_mode()
    def _forward(self, batch: np.ndarray) -> torch.Tensor:
        """Class probabilities (B, C, h, w) of a (B, h, w, 3) uint8 batch."""
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        return self.model(x)["fine"].float().softmax(dim=1)

    def _probs_resize(self, image: np.ndarray) -> torch.Tensor:
        import cv2

        h, w = image.shape[:2]
        t = self.tile
        interp = cv2.INTER_AREA if h * w > t * t else cv2.INTER_LINEAR
        small = cv2.resize(image, (t, t), interpolation=interp) if (h, w) != (t, t) else image
        p = self._forward(small[None])
        if (h, w) != (t, t):
            p = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
        return p[0]

    def _probs_tiled(self, image: np.ndarray) -> torch.Tensor:
        h, w = image.shape[:2]
        t = self.tile
        ph, pw = max(0, t - h), max(0, t - w)
        if ph or pw:
            mode = "reflect" if min(h, w) > 1 else "edge"
            image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode)
        hp, wp = image.shape[:2]
        step = max(1, t - self.overlap)
        origins = [(y, x) for y in _starts(hp, t, step) for x in _starts(wp, t, step)]
        window = _ramp_window(t, self.overlap).to(self.device)
        acc: torch.Tensor | None = None
        wsum = torch.zeros((hp, wp), device=self.device)
        for i in range(0, len(origins), self.batch_size):
            chunk = origins[i:i + self.batch_size]
            p = self._forward(np.stack([image[y:y + t, x:x + t] for y, x in chunk]))
            if acc is None:
                acc = torch.zeros((p.shape[1], hp, wp), device=self.device)
            for (y, x), pi in zip(chunk, p, strict=True):
                acc[:, y:y + t, x:x + t] += pi * window
                wsum[y:y + t, x:x + t] += window
        assert acc is not None
        return (acc / wsum)[:, :h, :w]

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """(C, H, W) float32 class probabilities of an (H, W, 3) uint8 RGB photo."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} "
                             f"{image.dtype}")
        if self.crop > 0:
            p = self._probs_crop_scale(image)
        else:
            p = self._probs_tiled(image) if self.tiled else self._probs_resize(image)
        return p.cpu().numpy()

    def constrain(self, probs: np.ndarray, boxes: np.ndarray,
                  teacher: np.ndarray | None = None, box_classes: np.ndarray | None = None,
                  fallback: bool = True) -> tuple[np.ndarray, int]:
        """(box-constrained label, boxes that fell back) of :meth:`probabilities`' output."""
        if self.box_rule == "posterior":
            probs = undo_class_weights(probs, self.class_weights)
        return constrain_to_boxes(probs, boxes, teacher, self.box_pad, box_classes, fallback,
                                  self.box_rule)

    def crop_scale(self, hw: tuple[int, int]) -> float:
        """Factor a photo of size ``hw`` is resized by so its pixels match the training crops."""
        from .data import cache_long_side

        cached = min(1.0, cache_long_side(self.tile, self.crop) / max(max(hw), 1))
        return cached * self.tile / self.crop

    def _probs_crop_scale(self, image: np.ndarray) -> torch.Tensor:
        import cv2

        h, w = image.shape[:2]
        f = self.crop_scale((h, w))
        size = (max(1, round(w * f)), max(1, round(h * f)))
        if size == (w, h):
            return self._probs_tiled(image)
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA if f < 1
                           else cv2.INTER_LINEAR)
        p = self._probs_tiled(small)
        return F.interpolate(p[None], size=(h, w), mode="bilinear", align_corners=False)[0]

    def predict(self, image: np.ndarray, boxes: np.ndarray | None = None,
                teacher: np.ndarray | None = None, return_probs: bool = False,
                box_classes: np.ndarray | None = None, fallback: bool = True) -> PredictResult:
        """Label and confidence maps; with ``boxes`` ((N, 4) xyxy) the box-constrained mask.

        ``box_classes`` ((N,) class ids) gives the boxed pixels their box's class;
        ``fallback=False`` leaves a box the student finds empty empty (no teacher mask).
        """
        probs = self.probabilities(image)
        confidence = np.round(probs.max(axis=0) * 255.0).astype(np.uint8)
        fallbacks = 0
        if boxes is not None and len(boxes):
            label, fallbacks = self.constrain(probs, boxes, teacher, box_classes, fallback)
        else:
            label = probs.argmax(axis=0).astype(np.uint8)
        return PredictResult(label, confidence, probs.astype(np.float16) if return_probs else None,
                             fallbacks)


def _training_weights(card: ModelCard) -> np.ndarray | None:
    """The CE class weights the model was trained with (None for plain CE)."""
    if card.train.loss != "b2p":
        return None
    from .losses import class_weights

    return np.asarray(class_weights(card.train, card.student.num_classes), np.float32)


def undo_class_weights(probs: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Remove the prior shift of class-weighted CE from (C, H, W) probabilities."""
    if weights is None:
        return probs
    p = probs / weights.reshape(-1, 1, 1)
    return p / np.maximum(p.sum(axis=0, keepdims=True), 1e-12)


def _box_slices(box: np.ndarray, pad: float, h: int, w: int) -> tuple[slice, slice]:
    x0, y0, x1, y1 = (float(v) for v in box)
    ys = slice(max(0, math.floor(y0 - pad)), min(h, math.ceil(y1 + pad)))
    xs = slice(max(0, math.floor(x0 - pad)), min(w, math.ceil(x1 + pad)))
    return ys, xs


def constrain_to_boxes(probs: np.ndarray, boxes: np.ndarray, teacher: np.ndarray | None = None,
                       pad: float = 4, classes: np.ndarray | None = None,
                       fallback: bool = True, rule: str = "posterior") -> tuple[np.ndarray, int]:
    """(label, number of boxes that fell back to the teacher); see the module docstring.

    ``classes`` ((N,) class ids of the boxes) sets each box's pixel class; without it the
    student's most likely defect class is taken everywhere. ``fallback=False``: the student
    alone, the teacher's mask is never used (and 0 boxes fall back). ``rule`` decides which
    pixels of a box are defect (:mod:`ml.box_decode`).
    """
    n_cls, h, w = probs.shape
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    box_cls = (np.zeros(len(boxes), np.int64) if classes is None
               else np.asarray(classes, np.int64).reshape(-1))
    if len(box_cls) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(box_cls)} box classes")
    check_rule(rule)
    defect = probs[0] < 0.5
    out = np.zeros((h, w), np.uint8)
    score = np.full((h, w), -1.0, np.float32)  # probability of the class written to ``out``
    empty = []
    for box, c in zip(boxes, box_cls, strict=True):
        ys, xs = _box_slices(box, pad, h, w)
        if rule == "tight":
            inner = _box_slices(box, 0, h, w)
            inner = (slice(inner[0].start - ys.start, inner[0].stop - ys.start),
                     slice(inner[1].start - xs.start, inner[1].stop - xs.start))
            inside = tight_mask(1.0 - probs[0, ys, xs], inner)
        else:
            inside = defect[ys, xs]
        if not inside.any():
            empty.append(box)
            continue
        if 1 <= c < n_cls:  # the box's class, where the model knows it
            cls_map = np.full(inside.shape, c, np.uint8)
            p = probs[c, ys, xs]
        else:
            cls_map = (probs[1:, ys, xs].argmax(axis=0) + 1).astype(np.uint8)
            p = probs[1:, ys, xs].max(axis=0)
        take = inside & (p > score[ys, xs])  # overlapping boxes: the likelier class wins
        out[ys, xs][take] = cls_map[take]
        score[ys, xs][take] = p[take]
    if fallback and teacher is not None and teacher.shape == (h, w):
        for box in empty:  # after all student pixels, so a fallback never overwrites them
            ys, xs = _box_slices(box, 0, h, w)
            region, t = out[ys, xs], teacher[ys, xs]
            take = (t > 0) & (region == 0)
            region[take] = t[take]
    else:
        empty = []
    return out, len(empty)


def _check_classes(card: ModelCard, num_classes: int, names: list[str]) -> list[str]:
    """Raise if the class counts differ; return warnings for renamed classes."""
    if card.student.num_classes != num_classes:
        raise ValueError(f"the model predicts {card.student.num_classes} classes, the project "
                         f"has {num_classes}")
    model_names = [c["name"] for c in sorted(card.classes, key=lambda c: c["id"])]
    if model_names and model_names != names:
        return [f"class names differ: model {model_names}, project {names}"]
    return []


def predict_photo(predictor: Predictor, image: np.ndarray, teacher: np.ndarray | None,
                  boxes: np.ndarray | None, classes: np.ndarray | None, fallback: bool = True
                  ) -> tuple[PredictResult, np.ndarray | None]:
    """One project photo's prediction and corrections map (None without a usable teacher).

    Shared by :func:`predict_project` and the Dask workers of :mod:`ml.campaign`.
    """
    if teacher is not None and teacher.shape != image.shape[:2]:
        teacher = None  # stale mask of another size: neither fallback nor corrections
    result = predictor.predict(image, boxes, teacher, box_classes=classes, fallback=fallback)
    corr = corrections(result.label, teacher) if teacher is not None else None
    return result, corr


def _predict_key(project: Project, key: str, predictor: Predictor, box_constraint: bool,
                 fallback: bool = True) -> tuple[PredictResult, np.ndarray | None]:
    image = project.load_image(key)
    teacher = project.load_mask(key, "teacher")
    boxes, classes = boxes_to_arrays(project.record(key).boxes) if box_constraint else (None,
                                                                                        None)
    return predict_photo(predictor, image, teacher, boxes, classes, fallback)


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


def predict_project(project: Project, model_dir: str | Path, keys: list[str] | None = None,
                    tiled: bool = False, box_constraint: bool = True, device: str = "auto",
                    progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                    fallback: bool = True, keep_previous: bool = True,
                    **options: Any) -> Predictions:
    """Predict photos of a project and store the student masks.

    A photo that fails is named in ``failed`` and the batch goes on; stopping keeps what is
    finished. ``fallback=False``: boxes the student finds empty stay empty (no teacher mask).
    ``keep_previous``: a student mask made by another model is kept as the ``previous`` mask
    before it is overwritten (:mod:`ml.model_diff` compares the two); predicting again with
    the same model keeps the older model's. ``options`` go to :class:`Predictor` (overlap,
    batch_size, box_pad).
    """
    predictor = Predictor.from_dir(model_dir, device, tiled=tiled, **options)
    warnings = _check_classes(predictor.card, project.num_classes, project.class_names())
    mid = model_id(model_dir)
    keys = project.keys() if keys is None else list(keys)
    settings = {**predictor.settings(), "box_constraint": box_constraint,
                "fallback": fallback, "model_dir": str(model_dir)}
    done: list[str] = []
    failed: dict[str, str] = {}
    fallbacks, stopped = 0, False
    diffs: list[ModelDiff] = []
    rep = Reporter(len(keys), progress, should_stop)
    t0 = time.monotonic()
    with project.batch():
        for key in keys:
            if rep.stopped():
                stopped = True
                break
            try:
                result, corr = _predict_key(project, key, predictor, box_constraint, fallback)
                before = project.record(key).student
                if keep_previous and before is not None and before.source != mid:
                    project.keep_previous(key)
                project.save_student(key, result.label, model=mid,
                                     confidence=result.confidence, corrections=corr,
                                     settings=settings)
                if project.record(key).previous is not None:  # counts only, not the maps
                    diffs.append(total([d for d in [photo_diff(project, key)] if d]))
                done.append(key)
                fallbacks += result.fallbacks
            except Exception as e:  # one bad photo must not end the batch
                failed[key] = _why(e)
            rep.step(message=key)
    return Predictions(action="predicted", total=len(keys), done=tuple(done), failed=failed,
                       stopped=stopped, warnings=tuple(warnings), model=mid,
                       fallback_boxes=fallbacks, seconds=round(time.monotonic() - t0, 2),
                       changes=total(diffs) if diffs else None)


def predict_folder(images_dir: str | Path, model_dir: str | Path, out_dir: str | Path,
                   tiled: bool = False, device: str = "auto", progress: ProgressFn | None = None,
                   should_stop: StopFn | None = None, **options: Any) -> Predictions:
    """Predict every photo under ``images_dir`` into ``out_dir`` (label + ``_conf`` PNGs)."""
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    files = _images.list_images(images_dir)
    predictor = Predictor.from_dir(model_dir, device, tiled=tiled, **options)
    classes = [ClassInfo.from_json(c) for c in predictor.card.classes]
    pal = palette(classes) if classes else None
    done: list[str] = []
    failed: dict[str, str] = {}
    stopped = False
    rep = Reporter(len(files), progress, should_stop)
    names = OutputNames((".png", "_conf.png"))  # a.png and a.jpg must not share a.png
    t0 = time.monotonic()
    for path in files:
        if rep.stopped():
            stopped = True
            break
        rel = path.relative_to(images_dir).as_posix()
        try:
            result = predictor.predict(_images.load_image(path))
            stem = out_dir / names(rel)
            _images.save_label(f"{stem}.png", result.label, pal)
            _images.save_label(f"{stem}_conf.png", result.confidence)
            done.append(rel)
        except Exception as e:  # one bad photo must not end the batch
            failed[rel] = _why(e)
        rep.step(message=rel)
    return Predictions(action="predicted", total=len(files), done=tuple(done), failed=failed,
                       stopped=stopped, model=model_id(model_dir),
                       seconds=round(time.monotonic() - t0, 2))
