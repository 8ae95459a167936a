"""A person's decisions about a photo's proposals as the record stores them, and the mask they
make of the student's.

Taking a decision, its boxes, undo and the training targets it makes are
:mod:`ml.findings.decisions`; this module holds only what a lower row needs to read them: the
stored form (``record.findings["decisions"][pid]``, each mask run-length coded within its
box) and :func:`with_decisions`, which an export applies to the student's mask so that what a
person accepted or rejected is what the exported mask says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ml.project.records import ImageRecord

DECISIONS_KEY = "decisions"
ACCEPTED, REJECTED = "accepted", "rejected"


def rle_encode(mask: np.ndarray) -> list[int]:
    """[start, length, ...] of the True runs of ``mask`` read row by row."""
    flat = np.concatenate([[0], mask.ravel().astype(np.int8), [0]])
    edges = np.nonzero(np.diff(flat))[0]
    starts, ends = edges[::2], edges[1::2]
    return np.column_stack([starts, ends - starts]).ravel().astype(int).tolist()


def rle_decode(runs: list[int], shape: tuple[int, int]) -> np.ndarray:
    flat = np.zeros(shape[0] * shape[1], bool)
    for s, n in zip(runs[::2], runs[1::2], strict=True):
        flat[s:s + n] = True
    return flat.reshape(shape)


@dataclass(frozen=True)
class Decision:
    """What a person decided about one proposal."""

    pid: str
    action: str  # accepted | rejected
    cls: int
    box: tuple[int, int, int, int]  # the mask's frame (the person's box when redrawn)
    rle: list[int]
    by: str = ""
    at: str = ""
    confidence: float | None = None  # the proposal's raw confidence (calibration data)
    model: str = ""
    replaced: list[dict] = field(default_factory=list)  # earlier decisions, oldest first
    novelty: float | None = None  # the proposal's novelty (calibration data; None: no bank)

    def mask(self) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        return rle_decode(self.rle, (y1 - y0, x1 - x0))

    def mask_in(self, shape: tuple[int, int]) -> np.ndarray:
        """The decision's mask placed in a photo of ``shape`` (cut where its box leaves it)."""
        h, w = shape
        x0, y0, x1, y1 = self.box
        full = np.zeros((h, w), bool)
        full[y0:y1, x0:x1] = self.mask()[: max(min(y1, h) - y0, 0), : max(min(x1, w) - x0, 0)]
        return full

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "cls": self.cls, "box": list(self.box), "rle": self.rle,
                "by": self.by, "at": self.at, "confidence": self.confidence,
                "model": self.model, "replaced": self.replaced, "novelty": self.novelty}

    @classmethod
    def from_json(cls, pid: str, d: dict[str, Any]) -> Decision:
        return cls(pid, str(d["action"]), int(d["cls"]), tuple(int(v) for v in d["box"]),
                   list(d.get("rle", [])), str(d.get("by", "")), str(d.get("at", "")),
                   d.get("confidence"), str(d.get("model", "")), list(d.get("replaced", [])),
                   d.get("novelty"))

    def brief(self, class_names: list[str] | None = None) -> str:
        name = (class_names[self.cls] if class_names and 0 <= self.cls < len(class_names)
                else f"class {self.cls}")
        what = f"accepted as {name}" if self.action == ACCEPTED else "rejected"
        return f"{what}" + (f" by {self.by}" if self.by else "") + (
            f" at {self.at}" if self.at else "")


def stored_decisions(rec: ImageRecord) -> dict[str, Decision]:
    """The decisions ``rec`` holds, by proposal id."""
    return {pid: Decision.from_json(pid, d) for pid, d in
            dict(rec.findings.get(DECISIONS_KEY, {})).items()}


def with_decisions(label: np.ndarray, found: Iterable[Decision], num_classes: int
                   ) -> np.ndarray:
    """``label`` (a student mask) with the person's decisions on it: a rejected proposal's
    pixels background, an accepted one's the person's class (an accept wins an overlap).

    Unchanged (the same object) without decisions. Unlike a training target, nothing is grown
    or left unknown: this is the mask a person would draw from their answers.
    """
    found = list(found)
    if not found:
        return label
    out = np.array(label, copy=True)
    shape = out.shape[:2]
    for d in found:
        if d.action == REJECTED:
            out[d.mask_in(shape)] = 0
    for d in found:
        if d.action == ACCEPTED and 0 < d.cls < num_classes:
            out[d.mask_in(shape)] = d.cls
    return out
