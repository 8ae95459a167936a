"""The image being annotated: loads it into the layers and saves every change to the project.

There is no unsaved state: box edits are written at once, paint strokes a moment after the
last change (debounced, written off the GUI thread), and both flush before the image changes.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from qtpy.QtCore import QObject, QTimer, Signal

from app.gui import _constants as C
from app.gui._layers import ImageLayers
from app.gui._photo_cache import PhotoCache, read_photo
from ml.evaluation.corrections import fold_corrections
from ml.evaluation.model_diff import ModelDiff, photo_diff
from ml.project.store import Box, Project


class ImageSession(QObject):
    """Binds one project image to :class:`ImageLayers`; undo for boxes and accepted fixes."""

    saved = Signal(str)  # key whose record changed (status may differ now)
    save_failed = Signal(str)
    image_changed = Signal(str)

    def __init__(self, layers: ImageLayers, cache: PhotoCache | None = None) -> None:
        """``cache``: photos read ahead (None: every photo is read when it is opened)."""
        super().__init__()
        self.layers = layers
        self.cache = cache
        self.corrections: np.ndarray | None = None  # the stored corrections map on screen
        self._masks: tuple = (None, None)
        self.project: Project | None = None
        self.key: str | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="b2p-save")
        self._pending: list[Future] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(C.SAVE_DEBOUNCE_MS)
        self._timer.timeout.connect(self.save_mask_now)
        self._undo: list[list[Box]] = []
        self._redo: list[list[Box]] = []
        self._boxes: list[Box] = []
        self._accept_undo: tuple | None = None  # (key, label, source, settings, edited)
        self.compare = "teacher"  # the corrections layer: student vs teacher | previous model
        self.diff: ModelDiff | None = None  # the shown photo's, when comparing with previous
        layers.boxes_edited.connect(self._on_boxes_edited)
        layers.mask_painted.connect(self._timer.start)

    # ------------------------------------------------------------------ image
    def set_project(self, project: Project | None) -> None:
        self.flush()
        self.project, self.key = project, None
        if self.cache is not None:
            self.cache.set_project(project)
        if project is not None:
            self.layers.set_classes(project.classes)

    def open(self, key: str) -> None:
        """Show image ``key`` with its boxes and masks (pending edits of the last are saved)."""
        if self.project is None:
            raise RuntimeError("no project is open")
        self.flush()
        p = self.project
        ahead = self.cache.take(key) if self.cache is not None else None
        if ahead is None and self.cache is not None:  # not read ahead: read it here, keep it
            ahead = read_photo(p, key)
            self.cache.put(ahead)
        if ahead is not None:  # its pyramid and masks, read ahead (or just now, above)
            image, teacher, student = ahead.levels, ahead.teacher, ahead.student
            self.corrections = ahead.corrections
        else:
            image = p.load_image(key)
            teacher, student = p.load_mask(key, "teacher"), p.load_proposing_mask(key)
            self.corrections = p.load_student_extra(key, "corrections")
        self.key = key
        rec = p.record(key)
        self._boxes = list(rec.boxes)
        self._masks = (rec.teacher, rec.student)  # what the layers show (records, by identity)
        self._undo.clear()
        self._redo.clear()
        self._accept_undo = None
        self.layers.show(image, self._boxes, teacher, student, self._changes())
        self.image_changed.emit(key)

    def _changes(self) -> np.ndarray | None:
        """The corrections layer's map: vs the teacher (stored) or vs the previous model."""
        p, k = self.project, self.key
        if self.compare == "previous":
            self.diff = photo_diff(p, k)
            return None if self.diff is None else self.diff.changes
        self.diff = None
        return self.corrections

    def set_compare(self, mode: str) -> None:
        """Hold the student against ``teacher`` or the ``previous`` model's mask."""
        if mode not in ("teacher", "previous"):
            raise ValueError(f"unknown comparison '{mode}' (teacher, previous)")
        self.compare = mode
        if self.project is not None and self.key is not None:
            self.corrections = self.project.load_student_extra(self.key, "corrections")
            self.layers.set_prediction(self.project.load_proposing_mask(self.key),
                                       self._changes())

    def reload_masks(self) -> None:
        """Show masks written by a job; a pending paint stroke keeps the layer as it is."""
        if self.project is None or self.key is None:
            return
        p, k = self.project, self.key
        rec = p.record(k)
        self._masks = (rec.teacher, rec.student)
        if not self.has_pending():
            self.layers.set_teacher(p.load_mask(k, "teacher"))
        self.corrections = p.load_student_extra(k, "corrections")
        self.layers.set_prediction(p.load_proposing_mask(k), self._changes())

    def reload_from_store(self) -> None:
        """Show the boxes and masks as stored now (another writer changed them); a pending
        paint stroke or box edit of this window is kept."""
        if self.project is None or self.key is None:
            return
        rec = self.project.record(self.key)
        boxes = list(rec.boxes)
        if boxes != self._boxes and not self.has_pending():
            self._boxes = boxes
            self.layers.set_boxes(boxes)
        if any(a is not b for a, b in zip((rec.teacher, rec.student), self._masks, strict=True)):
            self.reload_masks()  # only masks written since they were read (12 MP each)

    # ------------------------------------------------------------------ saving
    def has_pending(self) -> bool:
        return self._timer.isActive() or any(not f.done() for f in self._pending)

    def _submit(self, fn, *args) -> None:
        key = self.key

        def run() -> None:
            fn(*args)

        fut = self._pool.submit(run)
        fut.add_done_callback(lambda f: self._after_save(f, key))
        self._pending = [f for f in self._pending if not f.done()] + [fut]

    def _after_save(self, fut: Future, key: str | None) -> None:
        err = fut.exception()
        if err is not None:
            self.save_failed.emit(f"{key}: could not save ({err})")
        elif key is not None:
            self.saved.emit(key)

    def save_mask_now(self) -> None:
        self._timer.stop()
        if self.project is None or self.key is None:
            return
        label = np.array(self.layers.teacher.data, dtype=np.uint8, copy=True)
        self._submit(self.project.save_edited_mask, self.key, label)

    def flush(self) -> None:
        """Write a pending paint stroke now and wait for queued writes."""
        if self._timer.isActive():
            self.save_mask_now()
        for f in list(self._pending):
            f.result()
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)
        if self.cache is not None:
            self.cache.close()

    # ------------------------------------------------------------------ boxes
    def reload_boxes(self) -> None:
        """Show the stored boxes again (changed outside the layer: a review decision)."""
        if self.project is not None and self.key is not None:
            self._boxes = list(self.project.record(self.key).boxes)
            self.layers.set_boxes(self._boxes)

    def _on_boxes_edited(self) -> None:
        if self.project is None or self.key is None:
            return
        boxes = self.layers.current_boxes()
        self._undo.append(self._boxes)
        self._redo.clear()
        self._store_boxes(boxes)

    def _store_boxes(self, boxes: list[Box]) -> None:
        self._boxes = list(boxes)
        self.project.set_boxes(self.key, self._boxes)
        self.saved.emit(self.key)

    def undo_boxes(self) -> bool:
        return self._restore_boxes(self._undo, self._redo)

    def redo_boxes(self) -> bool:
        return self._restore_boxes(self._redo, self._undo)

    def _restore_boxes(self, source: list[list[Box]], other: list[list[Box]]) -> bool:
        """Show and store the last boxes of ``source``; the current ones go onto ``other``."""
        if not source or self.key is None:
            return False
        other.append(self._boxes)
        boxes = source.pop()
        self.layers.set_boxes(boxes)
        self._store_boxes(boxes)
        return True

    # ------------------------------------------------------------------ corrections
    def accept_corrections(self) -> bool:
        """Fold the student's corrections into the pseudo-mask as a person's edit."""
        if self.project is None or self.key is None:
            return False
        p, key = self.project, self.key
        corr = p.load_student_extra(key, "corrections")
        student = p.load_mask(key, "student")
        if corr is None or student is None:
            return False
        self.flush()
        before = np.array(self.layers.teacher.data, dtype=np.uint8, copy=True)
        rec = p.record(key).teacher
        self._accept_undo = (key, before, rec.source if rec else "manual",
                             dict(rec.settings) if rec else {}, bool(rec and rec.edited))
        after = fold_corrections(before, student, corr)
        self.layers.set_teacher(after)
        self._submit(p.save_edited_mask, key, after)
        return True

    def can_undo_accept(self) -> bool:
        return self._accept_undo is not None and self._accept_undo[0] == self.key

    def undo_accept(self) -> bool:
        """Put back the pseudo-mask as it was before the last accept (one level)."""
        if not self.can_undo_accept():
            return False
        key, label, source, settings, edited = self._accept_undo
        self._accept_undo = None
        self.flush()
        self.layers.set_teacher(label)
        self._submit(self.project.save_teacher_mask, key, label, source, settings, edited, True)
        return True
