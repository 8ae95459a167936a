"""Run a teacher over a project: one pseudo-mask per boxed image, saved as soon as it is made.

Person-edited masks are never overwritten. With ``only_missing`` images that already have a
teacher mask are skipped, so an interrupted run picks up where it stopped. A photo that cannot
be read or labelled is named in the result's ``failed`` and the batch goes on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .batch import BatchResult
from .images import ImageError
from .progress import Cancelled, ProgressFn, Reporter, StopFn
from .store import Project, ProjectError, boxes_to_arrays

# why an image was skipped (BatchResult.skipped values)
EDITED = "edited by a person"
EXISTING = "already pseudo-labelled"
NO_BOXES = "no boxes"


def pseudo_label_project(project: Project, teacher: Any, keys: Iterable[str] | None = None,
                         only_missing: bool = False, progress: ProgressFn | None = None,
                         should_stop: StopFn | None = None) -> BatchResult:
    """Pseudo-label ``keys`` (default: all images) with ``teacher``.

    Skip reasons are :data:`EDITED`, :data:`EXISTING` and :data:`NO_BOXES`; ``failed`` names
    the images that could not be read or labelled.
    """
    keys = project.keys() if keys is None else list(keys)
    for k in keys:
        project.record(k)  # unknown keys fail before any work is done
    settings = teacher.settings()
    source = settings["name"]
    done: list[str] = []
    failed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    stopped = False
    rep = Reporter(len(keys), progress, should_stop)
    for key in keys:
        if rep.stopped():
            stopped = True
            break
        try:
            why = _label_one(project, teacher, key, only_missing, source, settings)
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
    return BatchResult(action="pseudo-labelled", total=len(keys), done=tuple(done),
                       failed=failed, skipped=skipped, stopped=stopped)


def _label_one(project: Project, teacher: Any, key: str, only_missing: bool, source: str,
               settings: dict) -> str | None:
    """Label one image; return why it was skipped, or None when a mask was saved."""
    rec = project.record(key)
    if rec.teacher is not None and rec.teacher.edited:
        return EDITED  # checked before loading: edited masks are never redone
    if only_missing and rec.teacher is not None:
        return EXISTING
    project.image_size(key)  # a photo unreadable at scan fails by name, boxes or not
    if not rec.boxes:
        return NO_BOXES
    image = project.load_image(key)
    boxes, classes = boxes_to_arrays(rec.boxes)
    teacher.set_image(image)
    label = teacher.predict(boxes, classes)
    if not project.save_teacher_mask(key, label, source, settings):
        return EDITED  # edited by a person while we worked
    return None
