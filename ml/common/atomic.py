"""Atomic file writes: temp file in the same folder, fsync, rename.

A killed process leaves its temp file (``.NAME.XXXXXXXX.tmp``) behind, never a half-written
``NAME``; :func:`remove_stale_temps` clears such leftovers.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open folders; rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# A temp file older than this is a leftover of a killed write: none of ours takes minutes, and
# a younger one may be another process's write in flight (the GUI and the worker share a project).
STALE_AFTER_S = 600.0


def _temp_name(path: Path) -> tuple[str, str]:
    return f".{path.name}.", ".tmp"


def remove_stale_temps(folder: str | os.PathLike, name: str = "*",
                       older_than_s: float = STALE_AFTER_S, recursive: bool = False) -> list[Path]:
    """Delete leftover temp files of atomic writes to ``folder/name`` (a glob); return them.

    ``recursive`` looks in subfolders too (mask files mirror the photos' folders).
    """
    prefix, suffix = _temp_name(Path(name))
    cutoff = time.time() - older_than_s
    removed = []
    find = Path(folder).rglob if recursive else Path(folder).glob
    for p in find(f"{prefix}*{suffix}"):
        try:
            if p.is_file() and p.stat().st_mtime < cutoff:
                p.unlink()
                removed.append(p)
        except OSError:  # renamed by its writer meanwhile, or a read-only folder: leave it
            continue
    return removed


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A temp file beside ``path`` to write into; fsynced and renamed over ``path`` on a clean
    exit, deleted on any exception (a stop mid-write leaves the old file as it was).

    For writes that stream over a long time (a mask written band by band as it is predicted).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = _temp_name(path)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes 0600 files; exports and reports are meant for colleagues too
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(fh)`` on a temp file beside ``path``, fsync it, then rename over ``path``."""
    with atomic_file(path) as fh:
        write(fh)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")
