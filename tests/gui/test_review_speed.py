"""What keeps the Review dock fast (bench/review_latency.py times it): the next photos are read
ahead, layers are pyramids, unchanged layers are not sent again, the docks follow after the
paint, and a reload after a decision reads no mask."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.gui._photo_cache import PhotoCache, label_pyramid, pyramid, read_photo
from ml.project.store import Project
from tests.gui.test_review_dock import _proposed

pytestmark = pytest.mark.gui


def test_pyramids_halve_to_the_screen_and_keep_two_levels():
    big = np.zeros((3000, 4000, 3), np.uint8)
    assert [lv.shape[:2] for lv in pyramid(big)] == [(3000, 4000), (1500, 2000), (750, 1000)]
    small = np.zeros((64, 80), np.uint8)
    small[::2, ::2] = 2
    levels = label_pyramid(small)
    assert [lv.shape for lv in levels] == [(64, 80), (32, 40)] and (levels[1] == 2).all()


def test_the_cache_reads_ahead_and_drops_a_photo_whose_masks_changed(photos, qtbot):
    _proposed(photos)
    proj = Project.open(photos)
    cache = PhotoCache()
    cache.set_project(proj)
    assert cache.take("img1.png") is None  # never asked for: the caller reads it
    cache.prefetch(["img1.png", "img2.png"])
    qtbot.waitUntil(lambda: all(f.done() for f in cache._futures.values()), timeout=10000)
    data = cache.take("img1.png")
    assert data is not None and data.levels[0].shape == (64, 80, 3)
    assert np.array_equal(data.student, proj.load_mask("img1.png", "student"))
    proj.save_student("img2.png", np.zeros((64, 80), np.uint8), model="m2")
    assert cache.take("img2.png") is None  # predicted again since it was read
    cache.close()


def test_the_photo_on_screen_stays_cached_and_read_ahead_never_evicts_it(photos, qtbot):
    _proposed(photos)
    proj = Project.open(photos)
    keys = proj.keys()
    cache = PhotoCache(keep=2)
    cache.set_project(proj)
    assert cache.take(keys[0]) is None  # not read ahead: the session reads it and puts it in
    cache.put(read_photo(proj, keys[0]))
    cache.prefetch([keys[1], keys[2]])  # more than it keeps: the shown photo stays
    assert keys[0] in cache._futures and cache.reads == 2
    qtbot.waitUntil(lambda: all(f.done() for f in cache._futures.values()), timeout=10000)
    assert cache.take(keys[1]) is not None
    cache.prefetch([keys[0]])  # the one before: kept, so nothing is read again
    assert cache.reads == 2 and cache.take(keys[0]) is not None
    cache.close()


def test_next_proposal_comes_from_the_read_ahead_and_the_docks_follow(inspector, photos,
                                                                      qtbot):
    _proposed(photos)
    inspector.open_project(photos)
    panel, session = inspector.proposals, inspector.session
    assert inspector.layers.image.multiscale and inspector.layers.student.visible
    first = panel.current()
    other = next(i for i in panel.items[panel.index + 1:] if i.key != first.key)
    qtbot.waitUntil(lambda: other.key in session.cache._futures
                    and session.cache._futures[other.key].done(), timeout=10000)
    teacher = inspector.layers.teacher.data  # no pseudo-mask on these photos
    for _ in range(len(panel.items)):
        if panel.current().key == other.key:
            break
        assert panel.reject()
    assert session.key == other.key and session.cache.hits >= 1
    assert inspector.layers.teacher.data is teacher  # an empty pseudo-mask is not sent again
    assert inspector.layers.student.data.shape == (64, 80)
    qtbot.waitUntil(lambda: inspector.projects.current_key() == other.key, timeout=5000)
    panel.flush()


def test_a_reload_after_a_decision_reads_no_mask(inspector, photos, monkeypatch):
    _proposed(photos)
    inspector.open_project(photos)
    panel = inspector.proposals
    assert panel.accept()
    panel.flush()
    reads: list[str] = []
    real = Project.load_mask

    def counted(self, k, s="teacher"):
        if threading.current_thread() is threading.main_thread():  # not the findings job's
            reads.append(s)
        return real(self, k, s)

    monkeypatch.setattr(Project, "load_mask", counted)
    inspector.reload_from_store()  # what the watcher does when the decision's write is seen
    assert reads == []
    key = inspector.session.key
    inspector.project.save_student(key, np.zeros((64, 80), np.uint8), model="m2")
    inspector.reload_from_store()
    assert "student" in reads
