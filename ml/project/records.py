"""What the project index holds per photo: boxes, mask records and the image record."""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field

import numpy as np


def now() -> str:
    """The current UTC time as an ISO string (seconds), as the index stores times."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


BOX_DECIMALS = 2  # a box is kept, and stored, to 1/100 px
PROPOSAL_SOURCE = "proposal"  # Box.source of an accepted proposal (ml.findings.decisions)


@dataclass
class Box:
    """An axis-aligned box in pixel coordinates (x0, y0, x1, y1) with a class id.

    Coordinates are rounded to :data:`BOX_DECIMALS` on creation, as the index stores them: a
    YOLO box of 149.00004 px would otherwise cover one pixel row more before the project is
    saved and reopened than after, and the box rule's mask would change with it.
    """

    x0: float
    y0: float
    x1: float
    y1: float
    cls: int
    source: str = "manual"  # manual | imported | proposal (an accepted proposal)

    def __post_init__(self) -> None:
        for name in ("x0", "y0", "x1", "y1"):
            setattr(self, name, round(float(getattr(self, name)), BOX_DECIMALS))

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)

    def to_json(self) -> dict:
        return {"xyxy": list(self.xyxy), "cls": self.cls, "source": self.source}

    @classmethod
    def from_json(cls, d: dict) -> Box:
        x0, y0, x1, y1 = (float(v) for v in d["xyxy"])
        return cls(x0, y0, x1, y1, int(d["cls"]), str(d.get("source", "manual")))


MIN_BOX_PX = 1.0  # narrower or lower than one pixel: a box that covers no whole pixel


def box_problem(box: Box) -> str | None:
    """Why ``box`` cannot be stored (non-finite, inverted, or under :data:`MIN_BOX_PX` wide or
    high), or None when it can: the one rule of the store, the importers and the GUI."""
    if not all(math.isfinite(v) for v in box.xyxy):
        return "has a non-finite coordinate"
    if box.x1 <= box.x0 or box.y1 <= box.y0:
        return "is inverted or has no area (want x0 < x1 and y0 < y1)"
    if box.x1 - box.x0 < MIN_BOX_PX or box.y1 - box.y0 < MIN_BOX_PX:
        return f"is under {MIN_BOX_PX:g} px wide or high"
    return None


def boxes_to_arrays(boxes: list[Box]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) float32 xyxy and (N,) int64 class ids."""
    xyxy = np.array([b.xyxy for b in boxes], dtype=np.float32).reshape(-1, 4)
    cls = np.array([b.cls for b in boxes], dtype=np.int64).reshape(-1)
    return xyxy, cls


@dataclass
class MaskRecord:
    """Where a mask lives and what made it."""

    path: str  # relative to the project folder
    source: str  # teacher name (grabcut, sam_vit_b, box) or model id
    settings: dict = field(default_factory=dict)
    edited: bool = False  # a person changed it: batch jobs never overwrite it
    created: str = field(default_factory=now)
    extra: dict = field(default_factory=dict)  # e.g. confidence / corrections paths

    def to_json(self) -> dict:
        return {"path": self.path, "source": self.source, "settings": self.settings,
                "edited": self.edited, "created": self.created, "extra": self.extra}

    @classmethod
    def from_json(cls, d: dict) -> MaskRecord:
        return cls(d["path"], d.get("source", ""), dict(d.get("settings", {})),
                   bool(d.get("edited", False)), d.get("created", ""), dict(d.get("extra", {})))


@dataclass
class ImageRecord:
    key: str  # path relative to image_root, POSIX separators
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)
    teacher: MaskRecord | None = None
    student: MaskRecord | None = None
    reviewed: bool = False
    meta: dict = field(default_factory=dict)  # turbine, blade, side, distance_m, date
    findings: dict = field(default_factory=dict)  # severity overrides per region, etc.
    # Every defect of the photo is boxed (so nothing outside the boxes is one); None: the
    # default, true for reviewed photos and photos with imported boxes (see every_defect_boxed)
    all_defects_boxed: bool | None = None
    previous: MaskRecord | None = None  # the student mask of the model before (model_diff)
    # the stored record's version when read (counts every change; not part of the record)
    version: int = field(default=0, compare=False, repr=False)

    @property
    def status(self) -> str:
        """no boxes / boxed / pseudo-labelled / edited / predicted / reviewed."""
        if self.reviewed:
            return "reviewed"
        if self.student is not None:
            return "predicted"
        if self.teacher is not None:
            return "edited" if self.teacher.edited else "pseudo-labelled"
        return "boxed" if self.boxes else "no boxes"

    def person_boxed(self) -> bool:
        """A person boxed this photo (a box of theirs, an edited mask, or every defect boxed);
        a photo whose only boxes are accepted proposals was only reviewed."""
        return (any(b.source != PROPOSAL_SOURCE for b in self.boxes)
                or bool(self.teacher and self.teacher.edited) or bool(self.all_defects_boxed))

    def prediction_boxes(self) -> list[Box]:
        """The boxes a prediction of this photo is held to: all of them once a person boxed it,
        none while it was only reviewed. On a reviewed photo the model keeps searching: its
        other findings stay proposals, and the background its mask teaches is its own view,
        not the accepted boxes' outside (which taught every other defect there as background,
        docs/RESULTS.md round 25)."""
        return list(self.boxes) if self.person_boxed() else []

    def every_defect_boxed(self) -> bool:
        """The ``all_defects_boxed`` flag, or its default: reviewed or imported boxes."""
        if self.all_defects_boxed is not None:
            return bool(self.all_defects_boxed)
        return self.reviewed or any(b.source == "imported" for b in self.boxes)

    def to_json(self) -> dict:
        return {"width": self.width, "height": self.height,
                "boxes": [b.to_json() for b in self.boxes],
                "teacher": self.teacher.to_json() if self.teacher else None,
                "student": self.student.to_json() if self.student else None,
                "reviewed": self.reviewed, "meta": self.meta, "findings": self.findings,
                "all_defects_boxed": self.all_defects_boxed,
                "previous": self.previous.to_json() if self.previous else None}

    @classmethod
    def from_json(cls, key: str, d: dict) -> ImageRecord:
        return cls(key, int(d["width"]), int(d["height"]),
                   [Box.from_json(b) for b in d.get("boxes", [])],
                   MaskRecord.from_json(d["teacher"]) if d.get("teacher") else None,
                   MaskRecord.from_json(d["student"]) if d.get("student") else None,
                   bool(d.get("reviewed", False)), dict(d.get("meta", {})),
                   dict(d.get("findings", {})), _flag(d.get("all_defects_boxed")),
                   MaskRecord.from_json(d["previous"]) if d.get("previous") else None)


def _flag(v: object) -> bool | None:
    """An optional boolean read from JSON (None when absent)."""
    return None if v is None else bool(v)
