"""Atomic file writes: temp file in the same folder, fsync, rename.

A killed process leaves its temp file (``.NAME.XXXXXXXX.tmp``) behind, never a half-written
``NAME``; :func:`remove_stale_temps` clears such leftovers.
"""

from __future__ import annotations

import errno
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
    prefix, suffix = _temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    except OSError as e:  # a read-only folder, a full disk: name the file meant, not the temp
        if e.errno is None:
            raise
        raise _naming(e, path) from e
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes 0600 files; exports and reports are meant for colleagues too
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and e.errno is not None and e.filename is None:
            raise _naming(e, path) from e
        raise
    _fsync_dir(path.parent)


def _naming(e: OSError, path: Path) -> OSError:
    """``e`` as naming ``path`` (a write's ENOSPC names no file; mkstemp names its temp)."""
    return OSError(e.errno, e.strerror or str(e), str(path))  # the errno's own subclass


def explain_os_error(e: OSError) -> str:
    """What a failed file operation means to a person, and what to do (the CLI and the GUI
    say it): a full disk and a read-only or forbidden folder in words, others as they are."""
    where = f" {e.filename}" if e.filename else ""
    if e.errno == errno.ENOSPC:
        return (f"the disk is full: cannot write{where}; what was being written was not kept "
                f"(an older file there is as it was). Free some space and try again")
    if e.errno == errno.EROFS:
        return f"the disk is read-only: cannot write{where}; nothing was written"
    if e.errno in (errno.EACCES, errno.EPERM):
        return (f"no permission for{where} ({e.strerror}); is the folder writable by you? "
                f"Nothing was written")
    return str(e)


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
