"""Shared fixtures: tiny photo folders and projects made on the fly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import _display

GUI_DIR = Path(__file__).resolve().parent / "gui"
_GUI_SKIP = pytest.StashKey[str]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the GUI tests; skip them, with one line that says why, where Qt cannot open a window.

    Under CI the GUI tests must run (``.ci/run`` installs what they need), so there a missing
    display stops the run instead of skipping.
    """
    gui = [it for it in items if GUI_DIR in Path(str(it.path)).resolve().parents]
    for it in gui:
        it.add_marker(pytest.mark.gui)
    if not gui:
        return
    reason = _display.unavailable_reason()
    if reason is None:
        return
    msg = f"{len(gui)} GUI tests skipped: {reason}. To run them: {_display.install_hint()}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise pytest.UsageError(f"GUI tests cannot run under CI: {reason}. "
                                f"{_display.install_hint()}")
    config.stash[_GUI_SKIP] = msg
    skip = pytest.mark.skip(reason=f"no usable display ({reason})")
    for it in gui:
        it.add_marker(skip)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    msg = config.stash.get(_GUI_SKIP, None)
    if msg:
        terminalreporter.write_line(msg, yellow=True, bold=True)


def write_photo(path: Path, w: int = 64, h: int = 48, seed: int = 0, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).convert(mode).save(path)
    return path


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    """Three small photos, one in a subfolder."""
    d = tmp_path / "photos"
    write_photo(d / "a.png", 64, 48, 0)
    write_photo(d / "b.jpg", 80, 40, 1)
    write_photo(d / "T01" / "A" / "LE" / "c.png", 32, 32, 2)
    return d


@pytest.fixture
def project(tmp_path: Path, photo_dir: Path):
    from ml.project.store import Project

    return Project.create(tmp_path / "proj", photo_dir)


@pytest.fixture(autouse=True)
def _no_cached_backbone_for_teachers(monkeypatch: pytest.MonkeyPatch) -> None:
    """``auto`` adds its backbone-feature candidate when DINOv2 weights are cached, and the
    suite itself caches them (tests/test_dinov2_onnx.py): tests never pick it up implicitly,
    so a teacher's answer does not depend on which tests ran before. Tests of the candidate
    pass a backbone explicitly."""
    import ml.teachers.features

    monkeypatch.setattr(ml.teachers.features, "backbone_weights", lambda: None)
