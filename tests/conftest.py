"""Shared fixtures: tiny photo folders and projects made on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


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
    from ml.store import Project

    return Project.create(tmp_path / "proj", photo_dir)
