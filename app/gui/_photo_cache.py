"""Photos read ahead of time: decoded, their pyramid built and their masks read off the GUI thread.

Reading a 12 MP JPEG and three 12 MP masks takes about a second of CPU, far more than the
100 ms a Review decision may take to show the next proposal. :class:`PhotoCache` reads the
photos a person will see next (the Review dock asks for the next proposals' photos while the
person looks at the current one) in one worker thread and keeps the last few; the session
takes a photo from it when it is ready, and reads it itself, as before, when it is not. The
photo on screen stays in the cache (a photo the session read itself is put in), so that going
back to it, the Review dock's "one before", reads nothing again; a read-ahead never evicts it.

A cached photo is dropped when its stored masks change (the record's mask entries are
compared by identity, as the findings list does) or when :meth:`PhotoCache.clear` is called
(a job wrote masks, another project opened).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from app.gui._responsive import lower_priority
from ml.project.store import Project

KEEP = 4  # photos kept: the one on screen, the next ones and the one before
PYRAMID_MIN_SIDE = 1024  # levels halve until the long side is at most this


def pyramid(image: np.ndarray) -> tuple[np.ndarray, ...]:
    """``image`` and its halvings (area-averaged) down to :data:`PYRAMID_MIN_SIDE` (two levels
    at least): napari then draws only the part on screen at full resolution, however large
    the photo."""
    import cv2

    levels = [image]
    while len(levels) < 2 or max(levels[-1].shape[:2]) > PYRAMID_MIN_SIDE:
        h, w = levels[-1].shape[:2]
        levels.append(cv2.resize(levels[-1], (max(w // 2, 1), max(h // 2, 1)),
                                 interpolation=cv2.INTER_AREA))
    return tuple(levels)


def label_pyramid(label: np.ndarray) -> tuple[np.ndarray, ...]:
    """A label map and its halvings as strided views (nearest: no copy, classes stay whole),
    level for level as :func:`pyramid` (napari's multiscale labels need two levels at least)."""
    levels = [label]
    while len(levels) < 2 or max(levels[-1].shape[:2]) > PYRAMID_MIN_SIDE:
        levels.append(label[:: 2 ** len(levels), :: 2 ** len(levels)])
    return tuple(levels)


@dataclass(frozen=True)
class PhotoData:
    """One photo as the layers show it: its pyramid, masks and the record entries they are of."""

    key: str
    levels: tuple[np.ndarray, ...]
    teacher: np.ndarray | None
    student: np.ndarray | None
    corrections: np.ndarray | None
    stamp: tuple  # (teacher, student) mask records when read: a change drops the photo


def _stamp(project: Project, key: str) -> tuple:
    rec = project.record(key)
    return rec.teacher, rec.student


def read_photo(project: Project, key: str) -> PhotoData:
    """Read ``key``'s photo and masks and build its pyramid (any thread)."""
    stamp = _stamp(project, key)
    image = project.load_image(key)
    # the student layer shows the proposals found under the mask's threshold too
    return PhotoData(key, pyramid(image), project.load_mask(key, "teacher"),
                     project.load_proposing_mask(key),
                     project.load_student_extra(key, "corrections"), stamp)


class PhotoCache:
    """Reads photos ahead in one worker thread; hands them out when ready, never waits."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self.project: Project | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="b2p-photo-ahead",
                                        initializer=lower_priority)
        self._lock = threading.Lock()
        self._futures: OrderedDict[str, Future] = OrderedDict()
        self._shown: str | None = None  # the photo on screen: never evicted by a read-ahead
        self.hits = 0
        self.misses = 0
        self.reads = 0  # photos read ahead, for the benchmark: each costs a second of CPU
        self._closed = False

    def set_project(self, project: Project | None) -> None:
        self.project = project
        self.clear()

    def clear(self) -> None:
        """Forget every photo (masks written by a job, another project)."""
        with self._lock:
            for f in self._futures.values():
                f.cancel()
            self._futures.clear()

    def prefetch(self, keys: list[str]) -> None:
        """Read these photos ahead, in this order (those already read or being read stay)."""
        project = self.project
        if project is None or self._closed:
            return
        with self._lock:
            for key in keys:
                if key in self._futures:
                    self._futures.move_to_end(key)
                    continue
                self._futures[key] = self._pool.submit(self._read, project, key)
                self.reads += 1
            keep = set(keys) | {self._shown}
            for key in [k for k in self._futures if k not in keep]:  # oldest first
                if len(self._futures) <= self.keep:
                    break
                self._futures.pop(key).cancel()

    def _read(self, project: Project, key: str) -> PhotoData | None:
        try:
            return read_photo(project, key)
        except Exception:  # noqa: BLE001 - the session reads it again and names the problem
            return None

    def take(self, key: str) -> PhotoData | None:
        """``key``'s photo when it is read and still current, else None (the caller reads it)."""
        with self._lock:
            fut = self._futures.get(key)
        data = fut.result() if fut is not None and fut.done() and not fut.cancelled() else None
        if data is not None and self.project is not None:
            try:
                current = _stamp(self.project, key)
            except Exception:  # noqa: BLE001 - removed since: read (and fail) as usual
                current = None
            if current is None or any(a is not b for a, b in zip(current, data.stamp,
                                                                  strict=True)):
                data = None
        if data is None:
            self.misses += 1
            with self._lock:
                if self._futures.get(key) is fut and fut is not None and fut.done():
                    del self._futures[key]
        else:
            self.hits += 1
            with self._lock:
                self._shown = key
        return data

    def put(self, data: PhotoData) -> None:
        """Keep ``data``, the photo now on screen that the caller read itself."""
        fut: Future = Future()
        fut.set_result(data)
        with self._lock:
            self._futures.pop(data.key, None)
            self._futures[data.key] = fut
            self._shown = data.key

    def close(self) -> None:
        self._closed = True  # a read-ahead asked for after the window closed does nothing
        self.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
