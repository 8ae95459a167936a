"""Training in rounds: round 1 learns from the teacher, round ``r`` from round ``r-1``'s masks.

Between rounds the last model predicts every labelled photo and its box-constrained masks are
fused with the teacher's (:func:`fuse_targets`), one-sided as the paper's online self-correction
but one level up:

* the student may **add** defect pixels: inside a box, a pixel the teacher left background
  becomes a defect where the student's prior-corrected defect probability is at least ``tau``
  (``TrainConfig.tau``), with the box's class (the student's likeliest defect class for a box of
  a class it does not know);
* the teacher's defect pixels are **kept** unless the student is very sure of background
  inside a box: ``p(background) >= max(remove_tau, c)``, ``remove_tau`` = 0.99 and ``c`` the
  teacher's own confidence in the pixel where it wrote one (a confident teacher wins);
* a box that held teacher defect pixels never ends up empty (the teacher's pixels come back);
* outside boxes, and on masks a person edited (or reviewed masks), targets are the teacher's;
* review decisions (:mod:`ml.training.decided`) are painted on before the fusion and again on
  its result, so an accepted proposal's mask and a rejected region's background hold in every
  round, and a photo only reviewed trains on its decisions alone.

Round 1 trains into ``out_dir``; round ``r`` >= 2 into ``out_dir/round{r}``, initialised from
the previous round's model. :func:`fit_rounds` yields every round's events (so one
:class:`~ml.training.events.Done` per round: the last is the run's end) with a
:class:`~ml.training.events.Note` before each later round.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ml.common.progress import StopFn
from ml.project.store import Project, boxes_to_arrays
from ml.student import checkpoint
from ml.student.config import StudentConfig, TrainConfig
from ml.training.decided import round_bases
from ml.training.events import Note, Stopped, TrainEvent, TrainResult
from ml.training.losses import IGNORE

REMOVE_TAU = 0.99  # p(background) a student needs to drop a teacher defect pixel


def round_dir(out_dir: str | Path, r: int) -> Path:
    """Where round ``r`` (1-based) trains: ``out_dir`` itself for round 1."""
    return Path(out_dir) if r == 1 else Path(out_dir) / f"round{r}"


def _box_classes(shape: tuple[int, int], boxes: np.ndarray, classes: np.ndarray
                 ) -> np.ndarray:
    """(H, W) int map of the box class per pixel (-1 outside boxes; smaller boxes on top)."""
    out = np.full(shape, -1, np.int64)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for i in np.argsort(-areas, kind="stable"):
        out[_box_slices(boxes[i], shape)] = int(classes[i])
    return out


def fuse_targets(teacher: np.ndarray, probs: np.ndarray, boxes: np.ndarray,
                 classes: np.ndarray, tau: float = 0.9, remove_tau: float = REMOVE_TAU,
                 confidence: np.ndarray | None = None) -> np.ndarray:
    """Round targets from the teacher's (H, W) mask and the student's (C, H, W) probabilities.

    ``probs`` should be prior-corrected (:func:`ml.prediction.predict.undo_class_weights`);
    ``boxes`` (N, 4) xyxy with ``classes`` (N,); ``confidence`` the teacher's per-pixel confidence
    in [0, 1] (or uint8 0-255). The rule is the module docstring's.
    """
    n_cls = probs.shape[0]
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    classes = np.asarray(classes, np.int64).reshape(-1)
    out = teacher.copy()
    if not len(boxes):
        return out
    box_cls = _box_classes(teacher.shape, boxes, classes)
    inbox = box_cls >= 0
    student_cls = (probs[1:].argmax(axis=0) + 1) if n_cls > 1 else np.zeros_like(box_cls)
    cls = np.where((box_cls >= 1) & (box_cls < n_cls), box_cls, student_cls)
    add = inbox & (teacher == 0) & (1.0 - probs[0] >= tau)
    out[add] = cls[add].astype(out.dtype)
    need = np.full(teacher.shape, remove_tau, np.float32)
    if confidence is not None:
        c = confidence.astype(np.float32)
        need = np.maximum(need, c / 255.0 if confidence.dtype == np.uint8 else c)
    drop = inbox & (teacher > 0) & (teacher != IGNORE) & (probs[0] >= need)
    out[drop] = 0
    for box in boxes:  # a box the teacher filled never ends up empty
        ys, xs = _box_slices(box, teacher.shape)
        t = teacher[ys, xs]
        if ((t > 0) & (t != IGNORE)).any() and not ((out[ys, xs] > 0)
                                                    & (out[ys, xs] != IGNORE)).any():
            out[ys, xs] = t
    return out


def _box_slices(box: np.ndarray, shape: tuple[int, int]) -> tuple[slice, slice]:
    h, w = shape
    x0, y0, x1, y1 = (float(v) for v in box)
    return (slice(max(0, math.floor(y0)), min(h, max(math.floor(y0) + 1, math.ceil(y1)))),
            slice(max(0, math.floor(x0)), min(w, max(math.floor(x0) + 1, math.ceil(x1)))))


def round_targets(project: Project, model_dir: str | Path, teacher: dict[str, np.ndarray],
                  tau: float = 0.9, remove_tau: float = REMOVE_TAU, device: str = "auto",
                  keep: set[str] | None = None, should_stop: StopFn | None = None
                  ) -> dict[str, np.ndarray] | None:
    """The next round's targets for every key of ``teacher``; None if asked to stop.

    Keys in ``keep`` (person-made masks) keep the teacher's mask.
    """
    from ml.prediction.predict import Predictor, undo_class_weights

    predictor = Predictor.from_dir(model_dir, device)
    out: dict[str, np.ndarray] = {}
    for key, t in teacher.items():
        if should_stop is not None and should_stop():
            return None
        boxes, classes = boxes_to_arrays(project.record(key).boxes)
        if (keep and key in keep) or not len(boxes):
            out[key] = t
            continue
        probs = undo_class_weights(predictor.probabilities(project.load_image(key)),
                                   predictor.class_weights)
        conf = project.load_teacher_confidence(key)
        out[key] = fuse_targets(t, probs, boxes, classes, tau, remove_tau,
                                conf if conf is not None and conf.shape == t.shape else None)
    return out


def fit_rounds(project: Project, out_dir: str | Path, student: StudentConfig, cfg: TrainConfig,
               rounds: int = 2, mask_source: str = "teacher",
               labels: dict[str, np.ndarray] | None = None, resume: bool = False,
               init_from: Path | None = None, loss_kind: str | None = None,
               should_stop: StopFn | None = None) -> Iterator[TrainEvent]:
    """Train ``rounds`` rounds, yielding every round's events; returns the last result."""
    from ml.training.trainer import Trainer

    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    result: TrainResult | None = None
    teacher: dict[str, np.ndarray] = {}
    keep: set[str] = set()
    for r in range(1, rounds + 1):
        here = round_dir(out_dir, r)
        round_labels = labels
        if r > 1:
            prev = round_dir(out_dir, r - 1)
            if not teacher:
                teacher, keep = round_bases(project, mask_source, labels)
            yield Note(f"round {r} of {rounds}: targets from {prev.name}'s masks fused with "
                       "the teacher's")
            round_labels = round_targets(project, prev, teacher, cfg.tau, device=cfg.device,
                                         keep=keep, should_stop=should_stop)
            if round_labels is None:  # stopped while predicting: round r - 1 is kept
                assert result is not None
                yield Stopped(result)
                return result
            student = checkpoint.load_card(prev).student
        again = resume and checkpoint.can_resume(here)
        trainer = Trainer(project, here, student, cfg, mask_source, round_labels,
                          resume=again, init_from=(init_from if r == 1 else prev)
                          if not again else None, loss_kind=loss_kind, should_stop=should_stop)
        yield from trainer.fit()
        result = trainer.result
        assert result is not None
        if result.stopped:
            return result
    assert result is not None
    return result


def train_rounds(project: Project, out_dir: str | Path, student: StudentConfig,
                 cfg: TrainConfig, rounds: int = 1, mask_source: str = "teacher",
                 labels: dict[str, np.ndarray] | None = None, resume: bool = False,
                 init_from: Path | None = None,
                 on_event: Callable[[TrainEvent], None] | None = None,
                 should_stop: StopFn | None = None, loss_kind: str | None = None
                 ) -> TrainResult:
    """Run :func:`fit_rounds` to its end; ``on_event`` sees every event of every round."""
    gen = fit_rounds(project, out_dir, student, cfg, rounds, mask_source, labels, resume,
                     init_from, loss_kind, should_stop)
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(event)
