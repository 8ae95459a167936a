"""Hash-checked download into the cache: stream to ``.part``, check the SHA-256, rename.

Ours, not pooch: pooch has no file:// downloads, no cancel hook, re-reads the file to hash it
and brings requests; streaming with hashlib is a few lines we can own.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from ml.common.progress import Cancelled, ProgressFn, Reporter, StopFn
from ml.weights._cache import install, part_path
from ml.weights._registry import WeightsError, import_hint

_CHUNK = 1 << 20


def copy_hashing(reader: IO[bytes], dest: Path, total: int, progress: ProgressFn | None,
                 should_stop: StopFn | None) -> str:
    """Stream ``reader`` into ``dest``, returning the SHA-256; Cancelled when asked to stop."""
    rep = Reporter(total, progress, should_stop)
    h = hashlib.sha256()
    with open(dest, "wb") as out:
        while chunk := reader.read(_CHUNK):
            rep.check()
            out.write(chunk)
            h.update(chunk)
            rep.step(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    return h.hexdigest()


def fetch_url(url: str, dest: Path, progress: ProgressFn | None,
              should_stop: StopFn | None) -> str:
    """Download ``url`` (http, https or file) into ``dest``, returning its SHA-256."""
    with urllib.request.urlopen(url, timeout=60) as resp:
        total = int(resp.headers.get("Content-Length") or 0)
        return copy_hashing(resp, dest, total, progress, should_stop)


def download_file(name: str, url: str, progress: ProgressFn | None = None,
                  should_stop: StopFn | None = None) -> Path:
    """Fetch ``url`` as the file of ``name``: ``.part`` first, renamed once its hash is right."""
    part = part_path(name)
    try:
        digest = fetch_url(url, part, progress, should_stop)
    except (Cancelled, KeyboardInterrupt):
        part.unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, OSError, ValueError) as e:
        part.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise WeightsError(f"cannot download {name} from {url} ({reason}); "
                           f"{import_hint(name)}") from e
    return install(name, part, digest, "download")


def copy_file(name: str, path: Path, progress: ProgressFn | None = None) -> Path:
    """Copy a file fetched by hand in as the file of ``name``, by the same ``.part`` rule."""
    part = part_path(name)
    try:
        with open(path, "rb") as fh:
            digest = copy_hashing(fh, part, path.stat().st_size, progress, None)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return install(name, part, digest, str(path))
