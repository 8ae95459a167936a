"""Box-to-mask teachers: turn the boxes of a photo into a (noisy) pixel mask.

    t = make_teacher("grabcut")          # or "box", "ridge" (thin lines), "auto" (picks per box),
                                         # or "sam" (model_type=, checkpoint=, ...)
    t.set_image(image)                   # once per image; SAM computes its embedding here
    label = t.predict(boxes_xyxy, cls)   # uint8 (H, W) class ids, 0 = background
    out = t.predict_with_confidence(boxes_xyxy, cls)  # + uint8 confidence, per-box coverage
    t.settings()                         # name + options, stored with the mask

Common options: ``pad`` (pixels around each box a mask may reach), ``clip_to_box``,
``fill_holes`` with ``max_hole_frac`` (holes up to this fraction of the box area are filled)
and ``priority`` (class ids; the first listed wins where masks overlap; default: the higher
class id wins, e.g. damage over dirt).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ml.teachers._base import EMPTY_COVER, Teacher, TeacherOutput, paint_order
from ml.teachers.auto import AutoTeacher
from ml.teachers.boxfill import BoxTeacher
from ml.teachers.grabcut import GrabCutTeacher
from ml.teachers.ridge import RidgeTeacher


def _build_sam(**options: Any) -> Teacher:
    from ml.teachers.sam import SamTeacher  # imports torch: only when a SAM teacher is asked for

    return SamTeacher(**options)


def _sam_options() -> set[str]:
    from ml.teachers.sam import SamTeacher

    return _accepted(SamTeacher)


TEACHERS: dict[str, Callable[..., Teacher]] = {
    "sam": _build_sam,
    "grabcut": GrabCutTeacher,
    "box": BoxTeacher,
    "ridge": RidgeTeacher,
    "auto": AutoTeacher,
}


def _accepted(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind is p.KEYWORD_ONLY:
                names.add(p.name)
    return names


def teacher_options(name: str) -> set[str]:
    """Keyword options the teacher ``name`` accepts."""
    if name == "sam":
        return _sam_options()
    builder = TEACHERS[name]
    return _accepted(builder) if isinstance(builder, type) else set()


def make_teacher(name: str, **options: Any) -> Teacher:
    """Build the teacher registered as ``name`` (sam, grabcut, box, ridge, auto)."""
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher '{name}' (known: {', '.join(TEACHERS)})")
    unknown = set(options) - teacher_options(name)
    if unknown:
        raise ValueError(f"{name} teacher: unknown option(s) {', '.join(sorted(unknown))} "
                         f"(accepted: {', '.join(sorted(teacher_options(name)))})")
    return TEACHERS[name](**options)


__all__ = ["EMPTY_COVER", "TEACHERS", "AutoTeacher", "BoxTeacher", "GrabCutTeacher",
           "RidgeTeacher", "Teacher", "TeacherOutput", "make_teacher", "paint_order",
           "teacher_options"]
