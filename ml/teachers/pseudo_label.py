"""Run a teacher over a project: one pseudo-mask per boxed image, saved as soon as it is made.

Person-edited masks are never overwritten. With ``only_missing`` images that already have a
teacher mask are skipped, so an interrupted run picks up where it stopped. A photo that cannot
be read or labelled is named in the result's ``failed`` and the batch goes on. The teacher's
per-pixel confidence is saved beside each mask, and the result counts, per teacher, the boxes
it left (nearly) empty. A teacher with a ``survey`` method (``auto``) first reads up to
:data:`SURVEY_PHOTOS` of the project's boxed photos, spread over it, to decide what each class
looks like (thin or region); its settings, stored with every mask, say what it decided.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ml.common.batch import BatchResult
from ml.common.images import ImageError
from ml.common.progress import Cancelled, ProgressFn, Reporter, StopFn
from ml.project.store import Project, ProjectError, boxes_to_arrays

# why an image was skipped (BatchResult.skipped values)
EDITED = "edited by a person"
EXISTING = "already pseudo-labelled"
NO_BOXES = "no boxes"
SURVEY_PHOTOS = 64  # photos a teacher's survey reads at most


@dataclass(frozen=True, kw_only=True)
class PseudoLabelResult(BatchResult):
    """A pseudo-labelling batch, plus its boxes and those each teacher left under 2 % covered."""

    boxes: int = 0
    empty_boxes: Mapping[str, int] = field(default_factory=dict)

    def empty_line(self) -> str:
        """'N boxes; under 2 % covered: grabcut 3, ...'."""
        counts = ", ".join(f"{t} {n}" for t, n in self.empty_boxes.items())
        return f"{self.boxes} boxes; under 2 % covered: {counts or 'none'}"

    def summary(self) -> str:
        return f"{super().summary()}; {self.empty_line()}"


def pseudo_label_project(project: Project, teacher: Any, keys: Iterable[str] | None = None,
                         only_missing: bool = False, progress: ProgressFn | None = None,
                         should_stop: StopFn | None = None) -> PseudoLabelResult:
    """Pseudo-label ``keys`` (default: all images) with ``teacher``.

    Skip reasons are :data:`EDITED`, :data:`EXISTING` and :data:`NO_BOXES`; ``failed`` names
    the images that could not be read or labelled.
    """
    keys = project.keys() if keys is None else list(keys)
    for k in keys:
        project.record(k)  # unknown keys fail before any work is done
    survey = getattr(teacher, "survey", None)
    if callable(survey):
        survey(survey_photos(project))
    settings = teacher.settings()
    source = settings["name"]
    done: list[str] = []
    failed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    stopped = False
    boxes = 0
    empty: Counter[str] = Counter()
    rep = Reporter(len(keys), progress, should_stop)
    for key in keys:
        if rep.stopped():
            stopped = True
            break
        try:
            why, n, e = _label_one(project, teacher, key, only_missing, source, settings)
            boxes += n
            empty.update(e)
        except Cancelled:
            stopped = True
            break
        except ImageError as e:
            failed[key] = e.reason  # the key already names the photo
            why = "error"
        except (ProjectError, ValueError) as e:
            failed[key] = str(e)
            why = "error"
        if why is None:
            done.append(key)
        elif why != "error":
            skipped[key] = why
        rep.step(message=key, status=why or "done")
    return PseudoLabelResult(action="pseudo-labelled", total=len(keys), done=tuple(done),
                             failed=failed, skipped=skipped, stopped=stopped, boxes=boxes,
                             empty_boxes=dict(empty))


def survey_photos(project: Project, limit: int = SURVEY_PHOTOS
                  ) -> Iterator[tuple[Any, Any, Any]]:
    """(image, boxes, classes) of up to ``limit`` boxed photos spread over the project.

    Every boxed photo counts, not only those being labelled, so that a run over a few new
    photos decides as a run over all did. Unreadable photos are left out.
    """
    boxed = [k for k in project.keys() if project.record(k).boxes]
    if len(boxed) > limit:
        step = len(boxed) / limit
        boxed = [boxed[int(i * step)] for i in range(limit)]
    for k in boxed:
        try:
            image = project.load_image(k)
        except (ImageError, ProjectError, ValueError):
            continue
        yield (image, *boxes_to_arrays(project.record(k).boxes))


def _label_one(project: Project, teacher: Any, key: str, only_missing: bool, source: str,
               settings: dict) -> tuple[str | None, int, dict[str, int]]:
    """Label one image: (why it was skipped or None when saved, boxes, empty boxes by teacher)."""
    rec = project.record(key)
    if rec.teacher is not None and rec.teacher.edited:
        return EDITED, 0, {}  # checked before loading: edited masks are never redone
    if only_missing and rec.teacher is not None:
        return EXISTING, 0, {}
    project.image_size(key)  # a photo unreadable at scan fails by name, boxes or not
    if not rec.boxes:
        return NO_BOXES, 0, {}
    image = project.load_image(key)
    boxes, classes = boxes_to_arrays(rec.boxes)
    teacher.set_image(image)
    if hasattr(teacher, "predict_with_confidence"):
        out = teacher.predict_with_confidence(boxes, classes)
        label, conf, empty = out.label, out.confidence, dict(out.empty)
    else:  # a bare predict-only teacher (a caller's own)
        label, conf, empty = teacher.predict(boxes, classes), None, {}
    if not project.save_teacher_mask(key, label, source, settings, confidence=conf):
        return EDITED, 0, {}  # edited by a person while we worked
    return None, len(boxes), empty
