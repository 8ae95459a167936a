"""The hash-checked cache: which files are present, and moving finished files into it.

A file counts as present only when its SHA-256 matches the published one, or, for sources
without a published hash, the one recorded at first download or import (``hashes.json``
beside the files). Hash checks are cached by size and modification time so :func:`find` stays
cheap.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.common import hashing as _hashing
from ml.common.atomic import atomic_write_json
from ml.weights._registry import SOURCES, WeightsError, get_source, path_for, weights_dir

_HASHES = "hashes.json"


def _read_hashes() -> dict[str, Any]:
    try:
        data = json.loads((weights_dir() / _HASHES).read_text("utf-8"))
    except (FileNotFoundError, ValueError):
        data = {}
    data.setdefault("recorded", {})  # first-seen hashes of sources with none published
    data.setdefault("verified", {})  # name -> {sha256, size, mtime_ns} of the last check
    return data


def _write_hashes(data: dict[str, Any]) -> None:
    atomic_write_json(weights_dir() / _HASHES, data)


def expected_sha256(name: str) -> str:
    """The published hash, else the one recorded at first sight, else ""."""
    src = get_source(name)
    return src.sha256 or _read_hashes()["recorded"].get(name, "")


def record_sha256(name: str, digest: str) -> None:
    """Make ``digest`` the expected hash of ``name`` (a source without a published one)."""
    data = _read_hashes()
    data["recorded"][name] = digest
    _write_hashes(data)


def _accept(name: str, digest: str, what: str) -> None:
    """Check ``digest`` against the expected hash; record it when there is none yet."""
    want = expected_sha256(name)
    if want and digest != want:
        raise WeightsError(f"{what} for {name} has SHA-256 {digest[:16]}..., expected "
                           f"{want[:16]}...: corrupted or not the right file")
    if not want:
        record_sha256(name, digest)


def mark_verified(name: str, path: Path, digest: str) -> None:
    """Remember that ``path`` (at its size and mtime) has hash ``digest``."""
    st = path.stat()
    data = _read_hashes()
    data["verified"][name] = {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    _write_hashes(data)


def find(name: str) -> Path | None:
    """The cached file of ``name`` if it is present and its hash is right, else None."""
    path = path_for(name)
    if not path.is_file():
        return None
    st = path.stat()
    data = _read_hashes()
    seen = data["verified"].get(name, {})
    if seen.get("size") == st.st_size and seen.get("mtime_ns") == st.st_mtime_ns:
        digest = seen.get("sha256", "")
    else:
        digest = _hashing.sha256_file(path)
    want = get_source(name).sha256 or data["recorded"].get(name, "")
    if want and digest != want:
        return None
    if not want:  # placed by hand before any download: trust on first sight, as a download
        _accept(name, digest, "file")
    if seen.get("sha256") != digest or seen.get("size") != st.st_size:
        mark_verified(name, path, digest)
    return path


def part_path(name: str) -> Path:
    """The ``.part`` file a download or import of ``name`` writes before it is checked."""
    folder = weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{get_source(name).filename}.part"


def install(name: str, part: Path, digest: str, what: str) -> Path:
    """Check the hash of a finished ``.part`` file and rename it into place (or delete it)."""
    try:
        _accept(name, digest, what)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    dest = path_for(name)
    os.replace(part, dest)
    mark_verified(name, dest, digest)
    return dest


def scratch() -> tempfile.TemporaryDirectory[str]:
    """A temp folder inside the cache, so the final rename stays on one file system."""
    weights_dir().mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=".tmp-", dir=weights_dir())


@dataclass(frozen=True)
class StatusRow:
    """One registered file: whether it is cached and verified, and where."""

    name: str
    present: bool
    size: int  # bytes on disk, 0 when absent
    path: Path
    description: str


def list_status(names: Iterable[str] | None = None) -> list[StatusRow]:
    """The cache state of ``names`` (default: every registered source)."""
    rows = []
    for name in names or SOURCES:
        found = find(name)
        path = path_for(name)
        size = path.stat().st_size if found else 0
        rows.append(StatusRow(name, found is not None, size, path, get_source(name).description))
    return rows
