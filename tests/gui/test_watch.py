"""Changes made by another process show in the open window within about a second."""

from __future__ import annotations

import pytest

from ml.project.store import Box, Project

pytestmark = pytest.mark.gui


def test_another_writers_boxes_and_status_show_within_two_seconds(inspector, photos, qtbot):
    project = inspector.open_project(photos)
    key = inspector.session.key
    other = Project.open(project.root)  # as the CLI or a second window would
    other.set_boxes(key, [Box(2, 2, 20, 20, 1)])
    other.set_reviewed("img3.png")
    qtbot.waitUntil(lambda: len(inspector.layers.current_boxes()) == 1, timeout=2500)
    assert inspector.projects.status_of("img3.png").startswith("reviewed")
    assert "changed elsewhere: reloaded" in inspector.annotate.state.text()
    # this window's own edits are not news to it
    inspector.watcher.poll()
    assert not inspector.watcher.poll()
