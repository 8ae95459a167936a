"""The mask files of a project: pseudo-masks, student predictions and the maps beside them.

:class:`MaskFiles` is the half of :class:`ml.project.store.Project` that reads and writes
``masks/KIND/KEY.png`` (and ``KEY_conf.png``, ``KEY_corr.png``) and the index's records of
them; the other half (photos, boxes, classes, the index itself) is in :mod:`ml.project.store`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.common import images as _images
from ml.common.atomic import atomic_write_bytes
from ml.project.decided import stored_decisions, with_decisions
from ml.project.files import EXTRA_SUFFIXES, MASK_KINDS, SOURCES, ProjectError, mask_rel
from ml.project.records import ImageRecord, MaskRecord


# Which stored mask a source (files.SOURCES) means is decided here alone: load_mask("reviewed"),
# exports, findings and the report all go through mask_for.
def check_source(source: str) -> None:
    """Refuse a mask source that is not one of :data:`SOURCES`."""
    if source not in SOURCES:
        raise ProjectError(f"unknown mask source '{source}' ({', '.join(SOURCES)})")


class MaskFiles:
    """Mask reads and writes of a :class:`ml.project.store.Project` (which provides what is
    declared)."""

    if TYPE_CHECKING:  # what ml.project.store.Project provides
        root: Path
        _lock: threading.RLock

        def record(self, key: str) -> ImageRecord: ...
        def palette(self) -> list[tuple[int, int, int]]: ...
        @property
        def num_classes(self) -> int: ...
        def _write(self) -> AbstractContextManager[None]: ...
        def _change(self, key: str, names: tuple[str, ...],
                    fn: Callable[[ImageRecord], Any], action: str = "",
                    detail: Any = None) -> ImageRecord: ...

    def _write_mask(self, kind: str, key: str, label: np.ndarray,
                    maps: dict[str, np.ndarray | None]) -> tuple[str, dict[str, str]]:
        """Write ``key``'s ``kind`` mask and its extra ``maps`` ((rel path, {map: rel path})).

        A map given as None is removed, so no file outlives the mask it was made with.
        """
        for what, arr in maps.items():  # refused before anything is written
            if arr is not None and arr.shape[:2] != label.shape[:2]:
                raise ProjectError(f"{key}: {what} shape {arr.shape[:2]} does not match mask "
                                   f"{label.shape[:2]}")
        rel = mask_rel(kind, key)
        _images.save_label(self.root / rel, label, self.palette())
        extra: dict[str, str] = {}
        for what, arr in maps.items():
            map_rel = mask_rel(kind, key, EXTRA_SUFFIXES[what])
            if arr is None:
                (self.root / map_rel).unlink(missing_ok=True)
                continue
            _images.save_label(self.root / map_rel, np.asarray(arr, np.uint8))
            extra[what] = map_rel
        return rel, extra

    def save_teacher_mask(self, key: str, label: np.ndarray, source: str,
                          settings: dict | None = None, edited: bool = False,
                          force: bool = False, confidence: np.ndarray | None = None) -> bool:
        """Store a pseudo-mask; a person-edited mask is kept unless ``force``. True if written.

        ``confidence`` (uint8, the label's shape) is the teacher's per-pixel confidence,
        stored beside the mask; a mask saved without one (a person's edit) drops the old one.
        """
        with self._write():  # the check and the write as one: a person's edit meanwhile wins
            rec = self.record(key)
            if rec.teacher is not None and rec.teacher.edited and not edited and not force:
                return False
            self._check_shape(rec, label)
            rel, extra = self._write_mask("teacher", key, label, {"confidence": confidence})
            m = MaskRecord(rel, source, dict(settings or {}), edited, extra=extra)
            self._change(key, ("teacher",), lambda r: setattr(r, "teacher", m),
                         "edited mask" if edited else "", {"source": source} if edited else None)
        return True

    def save_edited_mask(self, key: str, label: np.ndarray) -> None:
        """A person's edit of the pseudo-mask: marked edited, never overwritten by batches."""
        rec = self.record(key)
        prev = rec.teacher
        source = prev.source if prev else "manual"
        settings = prev.settings if prev else {}
        self.save_teacher_mask(key, label, source, settings, edited=True, force=True)

    def save_student(self, key: str, label: np.ndarray, model: str,
                     confidence: np.ndarray | None = None,
                     corrections: np.ndarray | None = None, settings: dict | None = None,
                     proposed: np.ndarray | None = None) -> None:
        """Store a student prediction with optional uint8 confidence, corrections and
        ``proposed`` maps (the class ids of the proposals found under the mask's threshold:
        :meth:`load_proposing_mask`)."""
        self._check_shape(self.record(key), label)
        with self._write():
            rel, extra = self._write_mask("student", key, label, {
                "confidence": confidence, "corrections": corrections, "proposed": proposed})
            m = MaskRecord(rel, model, dict(settings or {}), False, extra=extra)
            self._change(key, ("student",), lambda r: setattr(r, "student", m))

    def keep_previous(self, key: str, new_model: str | None = None) -> bool:
        """Copy ``key``'s student mask to ``previous`` (before another model overwrites it).

        With ``new_model``, a mask that model made is not kept: predicting again with the same
        model keeps the older model's mask. True if there was one to keep. The copy is atomic;
        the index names it at its next write.
        """
        with self._write():
            m = self.record(key).student
            if m is None or m.source == new_model or not (self.root / m.path).is_file():
                return False
            rel = mask_rel("previous", key)
            atomic_write_bytes(self.root / rel, (self.root / m.path).read_bytes())
            prev = MaskRecord(rel, m.source, dict(m.settings), created=m.created)
            self._change(key, ("previous",), lambda r: setattr(r, "previous", prev))
        return True

    def adopt_student(self, key: str, folder: str | os.PathLike, shape: tuple[int, int],
                      model: str, extras: tuple[str, ...] = (),
                      settings: dict | None = None) -> None:
        """Move a student prediction another process wrote under ``folder`` into the project.

        ``folder`` mirrors the project's layout (``folder / mask_rel("student", key)``, the
        ``extras`` maps beside it) on the same file system, so each move is an atomic rename.
        """
        self._check_shape(self.record(key), np.empty((*shape, 0), np.uint8))
        with self._write():
            rel = mask_rel("student", key)
            extra = {w: mask_rel("student", key, EXTRA_SUFFIXES[w]) for w in extras}
            for r in (*extra.values(), rel):  # the mask last: it is what the record names
                (self.root / r).parent.mkdir(parents=True, exist_ok=True)
                os.replace(Path(folder) / r, self.root / r)
            m = MaskRecord(rel, model, dict(settings or {}), False, extra=extra)
            self._change(key, ("student",), lambda r: setattr(r, "student", m))

    def _check_shape(self, rec: ImageRecord, label: np.ndarray) -> None:
        if rec.width and rec.height and label.shape[:2] != (rec.height, rec.width):
            raise ProjectError(f"{rec.key}: mask shape {label.shape[:2]} does not match image "
                               f"{(rec.height, rec.width)}")

    def load_mask(self, key: str, source: str = "teacher") -> np.ndarray | None:
        """Mask of ``source`` (teacher | student | previous | reviewed), or None if there is none.

        ``previous`` is the student mask of the model before the last one that predicted.
        ``reviewed`` is defined only for images marked reviewed: the person-edited mask if
        there is one, else the student's prediction, else the teacher's.
        """
        if source == "reviewed":
            sm = mask_for(self, key, "reviewed")
            return None if sm is None else sm.label
        rec = self.record(key)
        if source not in MASK_KINDS:
            raise ProjectError(f"unknown mask source '{source}' (teacher, student, previous, "
                               "reviewed)")
        m = getattr(rec, source)
        return None if m is None else _images.load_label(self.root / m.path)

    def load_student_extra(self, key: str, what: str) -> np.ndarray | None:
        """The student's ``confidence``, ``corrections`` or ``proposed`` map, if stored."""
        return self._load_extra(self.record(key).student, what)

    def load_proposing_mask(self, key: str) -> np.ndarray | None:
        """The student mask with its proposals found under the mask's threshold drawn in: what
        the proposing model found, as the Review dock shows it, proposals are cut from and
        findings are read from.

        Those proposals are kept beside the mask, not in it: the mask is the student's at its
        own threshold, the one exported and scored (round 21: drawn in, they cost a blob
        student 5 points of box-free IoU).
        """
        label = self.load_mask(key, "student")
        proposed = self.load_student_extra(key, "proposed")
        if label is None or proposed is None or proposed.shape != label.shape[:2]:
            return label
        return np.where(proposed > 0, proposed, label).astype(label.dtype, copy=False)

    def load_teacher_confidence(self, key: str) -> np.ndarray | None:
        """The teacher's uint8 per-pixel confidence, if its mask was saved with one."""
        return self._load_extra(self.record(key).teacher, "confidence")

    def _load_extra(self, m: MaskRecord | None, what: str) -> np.ndarray | None:
        if m is None or what not in m.extra:
            return None
        return _images.load_label(self.root / m.extra[what])


@dataclass
class SourceMask:
    """The label map an export or report uses for one image, and where it came from."""

    label: np.ndarray
    origin: str  # teacher | edited | student
    confidence: np.ndarray | None  # only for student predictions
    model: str  # teacher name or student model id


def mask_for(project: MaskFiles, key: str, source: str, fallback: bool = False,
             proposals: bool = False, decisions: bool = False) -> SourceMask | None:
    """The mask of ``source`` for ``key`` (None if there is none).

    ``reviewed`` follows :meth:`Project.load_mask`: only images marked reviewed, using the
    person-edited mask, else the student's, else the teacher's. With ``fallback`` a missing
    student prediction falls back to the teacher's mask. With ``proposals`` the student's mask
    has its proposals found under its threshold drawn in (:meth:`MaskFiles.load_proposing_mask`:
    findings and reports, which list the accepted ones), else it is the mask alone. With
    ``decisions`` (exports, findings, reports) the student's mask says what a person decided
    about its proposals (:func:`ml.project.decided.with_decisions`: accepted ones drawn in
    with their class, a faint one found under the threshold included; rejected ones cleared).
    """
    check_source(source)
    rec = project.record(key)
    if source == "reviewed":
        if not rec.reviewed:
            return None
        order = ["edited", "student", "teacher"]
    elif source == "student":
        order = ["student", "teacher"] if fallback else ["student"]
    else:
        order = ["teacher"]
    for kind in order:
        if kind == "edited" and not (rec.teacher and rec.teacher.edited):
            continue
        store_kind = "student" if kind == "student" else "teacher"
        label = (project.load_proposing_mask(key) if kind == "student" and proposals
                 else project.load_mask(key, store_kind))  # never "reviewed": no recursion
        if label is None:
            continue
        mrec = rec.student if kind == "student" else rec.teacher
        origin = kind if kind != "teacher" or not mrec.edited else "edited"
        if kind == "student" and decisions:
            label = with_decisions(label, stored_decisions(rec).values(),
                                   project.num_classes)
        conf = project.load_student_extra(key, "confidence") if kind == "student" else None
        return SourceMask(label, origin, conf, mrec.source if mrec else "")
    return None
