"""Run a teacher over a project: one pseudo-mask per boxed image, saved as soon as it is made.

Person-edited masks are never overwritten. With ``only_missing`` images that already have a
teacher mask are skipped, so an interrupted run picks up where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .images import ImageError
from .progress import Cancelled, ProgressFn, Reporter, StopFn
from .store import Project, ProjectError, boxes_to_arrays


def _empty_summary(total: int) -> dict[str, Any]:
    return {"total": total, "done": 0, "skipped_edited": 0, "skipped_existing": 0,
            "no_boxes": 0, "errors": [], "stopped": False}


def pseudo_label_project(project: Project, teacher: Any, keys: Iterable[str] | None = None,
                         only_missing: bool = False, progress: ProgressFn | None = None,
                         should_stop: StopFn | None = None) -> dict[str, Any]:
    """Pseudo-label ``keys`` (default: all images) with ``teacher``; return a summary dict.

    Summary: ``done``, ``skipped_edited``, ``skipped_existing``, ``no_boxes`` (counts),
    ``errors`` (list of (key, message) for images that could not be read or labelled),
    ``stopped`` (``should_stop`` ended the run early) and ``total``.
    """
    keys = project.keys() if keys is None else list(keys)
    for k in keys:
        project.record(k)  # unknown keys fail before any work is done
    settings = teacher.settings()
    source = settings["name"]
    summary = _empty_summary(len(keys))
    rep = Reporter(len(keys), progress, should_stop)
    for key in keys:
        if rep.stopped():
            summary["stopped"] = True
            break
        try:
            outcome = _label_one(project, teacher, key, only_missing, source, settings)
        except Cancelled:
            summary["stopped"] = True
            break
        except (ImageError, ProjectError, ValueError) as e:
            summary["errors"].append((key, str(e)))
            outcome = "error"
        if outcome != "error":
            summary[outcome] += 1
        rep.step(message=key, status=outcome)
    return summary


def _label_one(project: Project, teacher: Any, key: str, only_missing: bool, source: str,
               settings: dict) -> str:
    """Label one image; return the summary counter it belongs to."""
    rec = project.record(key)
    if rec.teacher is not None and rec.teacher.edited:
        return "skipped_edited"  # checked before loading: edited masks are never redone
    if only_missing and rec.teacher is not None:
        return "skipped_existing"
    if not rec.boxes:
        return "no_boxes"
    image = project.load_image(key)
    boxes, classes = boxes_to_arrays(rec.boxes)
    teacher.set_image(image)
    label = teacher.predict(boxes, classes)
    if not project.save_teacher_mask(key, label, source, settings):
        return "skipped_edited"  # edited by a person while we worked
    return "done"
