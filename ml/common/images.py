"""Reading inspection photos and label masks.

Photos are returned as 8-bit RGB ``(H, W, 3)`` arrays in their displayed orientation
(EXIF honoured); the file on disk is never touched. Label masks are ``(H, W)`` uint8
arrays of class ids stored as PNG.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ml.common.atomic import atomic_write

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")

# Largest photo we decode. Drone shots are 20-100 MP (a 100 MP frame is 300 MB as RGB); above
# 200 MP a file is far more likely a decompression bomb (a few kB that unpack to gigabytes).
MAX_PIXELS = 200_000_000
# Pillow refuses at twice its limit and only warns above it; we refuse at MAX_PIXELS ourselves
# (see open_image), so its own refusal is a second line for files that grow while decoding.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ImageError(ValueError):
    """A photo or mask that cannot be read; the message names the file."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def is_image_file(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files under ``folder``, sorted, relative paths kept by the caller."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    it = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(p for p in it if p.is_file() and is_image_file(p)
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def missing_folder(folder: str | os.PathLike) -> Path | None:
    """The highest of ``folder`` and its parents that does not exist (None if it does): what
    was moved or unplugged when a whole photo folder is gone."""
    gone = Path(folder)
    if gone.exists():
        return None
    while gone.parent != gone and not gone.parent.exists():
        gone = gone.parent
    return gone


def label_file(folder: str | os.PathLike, key: str) -> Path | None:
    """The label mask of photo ``key`` in ``folder``, or None: the one rule for finding it.

    Tried in order: ``folder/<key>.png`` (where two photos share a stem, ``b2p masks`` gives
    the later one its full name, :mod:`ml.common.outnames`), ``folder/<key's
    subfolders>/<stem>.png``, ``folder/<stem>.png``, then ``folder/<file name>`` (a mask saved
    under the photo's own name and suffix).
    """
    folder, rel = Path(folder), Path(key)
    for cand in (folder / f"{key}.png", folder / rel.with_suffix(".png"),
                 folder / (rel.stem + ".png"), folder / rel.name):
        if cand.is_file():
            return cand
    return None


def _to_rgb8(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im).astype(np.float32)
        arr[~np.isfinite(arr)] = 0  # NaN / inf samples of float TIFFs would poison the scale
        top = 65535.0 if arr.max(initial=0) > 4095 else 4095.0  # 16-bit or 12-bit sensor data
        if im.mode == "F":
            top = max(float(arr.max(initial=0)), 1e-6)
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _too_large(w: int, h: int) -> str:
    return (f"too large to open safely: {w} x {h} = {w * h / 1e6:.0f} MP, over the "
            f"{MAX_PIXELS / 1e6:.0f} MP limit for photos (a decompression bomb?)")


@contextmanager
def open_image(path: str | os.PathLike, what: str = "image") -> Iterator[Image.Image]:
    """Pillow's lazy image of ``path``; anything wrong inside the block becomes ImageError.

    Every reason a file can fail (empty, truncated, not an image, too many pixels, a mode
    Pillow cannot convert, a plugin's own exception) names the file, so a batch can skip it.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageError(path, "file is empty")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ImageError(path, _too_large(w, h))
            yield im
    except ImageError:
        raise
    except FileNotFoundError as e:
        gone = missing_folder(path.parent)
        raise ImageError(path, "file not found" if gone is None else
                         f"file not found: its folder {gone} is not there (moved, renamed, "
                         f"or on a drive that is not connected)") from e
    except Image.DecompressionBombError as e:
        raise ImageError(path, f"too large to open safely, over the {MAX_PIXELS / 1e6:.0f} MP "
                               f"limit for photos ({e})") from e
    except MemoryError as e:
        raise ImageError(path, "not enough memory to open it") from e
    except Exception as e:  # Pillow plugins raise many kinds on hostile files
        raise ImageError(path, f"not a readable {what} ({e.__class__.__name__}: {e})") from e


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read a photo as 8-bit RGB in display orientation; raise :class:`ImageError` if unusable."""
    path = Path(path)
    with open_image(path) as im:
        arr = _to_rgb8(ImageOps.exif_transpose(im))
    if arr.size == 0:
        raise ImageError(path, "image has no pixels")
    return np.array(arr, order="C")  # writable, whatever Pillow handed out


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) in display orientation, read from the header only."""
    path = Path(path)
    with open_image(path) as im:
        w, h = im.size
        orientation = im.getexif().get(0x0112, 1)
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def thumbnail(path: str | os.PathLike, size: int) -> Image.Image:
    """A ``size``-bounded RGB Pillow image of the photo (JPEG draft mode keeps big files fast)."""
    path = Path(path)
    with open_image(path) as im:
        im.draft("RGB", (size * 2, size * 2))
        im = ImageOps.exif_transpose(im)
        if im.mode not in ("RGB", "L", "P", "RGBA", "1", "CMYK", "YCbCr"):
            im = Image.fromarray(_to_rgb8(im))  # 16-bit and float: scale as load_image does
        im = im.convert("RGB")
        im.thumbnail((size, size))
        im.load()
    return im


def load_label(path: str | os.PathLike) -> np.ndarray:
    """Read a class-id PNG as ``(H, W)`` uint8."""
    path = Path(path)
    with open_image(path, "mask") as im:
        if im.mode == "P":
            arr = np.asarray(im)  # palette indices are the class ids
        elif im.mode in ("I;16", "I"):
            arr = np.asarray(im).astype(np.int64)
            if arr.max(initial=0) > 255:
                raise ImageError(path, "label values above 255")
            arr = arr.astype(np.uint8)
        else:
            arr = np.asarray(im.convert("L"))
    return np.array(arr, dtype=np.uint8, order="C")  # a writable copy: editors paint on it


def encode_png(arr: np.ndarray, palette: list[tuple[int, int, int]] | None = None) -> bytes:
    """PNG bytes of a uint8 label map (with an optional palette) or an RGB image."""
    im = Image.fromarray(np.ascontiguousarray(arr))
    if palette is not None and arr.ndim == 2:
        im = im.convert("P")
        flat = [c for rgb in palette for c in rgb]
        im.putpalette(flat + [0] * (768 - len(flat)))
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False, compress_level=3)
    return buf.getvalue()


def save_label(path: str | os.PathLike, label: np.ndarray,
               palette: list[tuple[int, int, int]] | None = None) -> Path:
    """Atomically write a class-id label map as PNG."""
    if label.ndim != 2:
        raise ValueError(f"label map must be 2-D, got shape {label.shape}")
    data = encode_png(label.astype(np.uint8, copy=False), palette)
    return atomic_write(path, lambda fh: fh.write(data))


def fit_to_record(label: np.ndarray, width: int, height: int) -> np.ndarray:
    """The label map at the image's recorded size (nearest neighbour if it differs)."""
    if not width or not height or label.shape == (height, width):
        return label
    import cv2

    return cv2.resize(label, (width, height), interpolation=cv2.INTER_NEAREST)
