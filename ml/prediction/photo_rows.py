"""Photos read by rows: whole in memory, or band by band where the file format allows it.

Tiled prediction asks a :class:`RowSource` for one band of rows at a time. Most photos (JPEG,
PNG) can only be decoded whole, and a 45 MP one is 135 MB as RGB, which is fine; those come
through :func:`ml.common.images.load_image` as :class:`ArrayRows`. A TIFF made of many small tiles
or strips can be decoded piece by piece: when ``tifffile`` is installed and the file is plain 8-bit
RGB in display orientation, :class:`TiffRows` decodes only the pieces a band needs. Every file
is first opened through :func:`ml.common.images.open_image` (size limit, readable, its mode and
orientation), so the rules on what a photo may be stay in one place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from ml.common import images as _images

# A TIFF piece (tile or strip) taller than this is decoded whole anyway; the region read would
# save nothing (Pillow writes a whole photo as one strip).
MAX_PIECE_ROWS = 1024


class RowSource(Protocol):
    """Rows of an 8-bit RGB photo, top to bottom; ``close`` releases any open file."""

    height: int
    width: int

    def rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows ``[y0, y1)`` as a ``(y1 - y0, width, 3)`` uint8 array."""
        ...

    def close(self) -> None: ...


class ArrayRows:
    """A photo already in memory (an ``(H, W, 3)`` uint8 array)."""

    def __init__(self, image: np.ndarray) -> None:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} "
                             f"{image.dtype}")
        if image.shape[0] < 1 or image.shape[1] < 1:
            raise ValueError(f"image has no pixels: {image.shape}")
        self.image = image
        self.height, self.width = image.shape[:2]

    def rows(self, y0: int, y1: int) -> np.ndarray:
        return self.image[y0:y1]

    def close(self) -> None:
        return None

    def __enter__(self) -> ArrayRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def as_rows(image: np.ndarray | RowSource) -> RowSource:
    """``image`` as a row source (arrays are wrapped, sources returned as they are)."""
    return ArrayRows(image) if isinstance(image, np.ndarray) else image


class TiffRows:
    """A tiled or striped 8-bit RGB TIFF read piece by piece with ``tifffile``.

    The pieces of the last band are kept, so overlapping bands decode each piece once.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        import tifffile

        self.path = Path(path)
        self._tf = tifffile.TiffFile(self.path)
        try:
            page = self._tf.pages.first
            self._page = page
            self.height, self.width = int(page.imagelength), int(page.imagewidth)
            if page.is_tiled:
                self._piece = (int(page.tilelength), int(page.tilewidth))
            else:
                self._piece = (min(int(page.rowsperstrip) or self.height, self.height),
                               self.width)
            self._across = -(-self.width // self._piece[1])
            self._cache: dict[int, np.ndarray | None] = {}
        except BaseException:
            self._tf.close()
            raise

    def rows(self, y0: int, y1: int) -> np.ndarray:
        try:
            return self._rows(y0, y1)
        except Exception as e:  # a damaged piece: name the file, as every photo read does
            raise _images.ImageError(self.path, f"not a readable image ({type(e).__name__}: "
                                                f"{e})") from e

    def _rows(self, y0: int, y1: int) -> np.ndarray:
        ph, pw = self._piece
        out = np.zeros((y1 - y0, self.width, 3), np.uint8)  # empty pieces are black
        wanted = [r * self._across + c for r in range(y0 // ph, (y1 - 1) // ph + 1)
                  for c in range(self._across)]
        pieces = {i: self._cache[i] if i in self._cache else self._decode(i) for i in wanted}
        self._cache = pieces
        for i, piece in pieces.items():
            if piece is None:
                continue
            top, left = (i // self._across) * ph, (i % self._across) * pw
            a, b = max(y0, top), min(y1, top + piece.shape[0])
            w = min(self.width - left, piece.shape[1])
            out[a - y0:b - y0, left:left + w] = piece[a - top:b - top, :w]
        return out

    def _decode(self, index: int) -> np.ndarray | None:
        page, fh = self._page, self._tf.filehandle
        offset, count = page.dataoffsets[index], page.databytecounts[index]
        data = None
        if offset and count:
            fh.seek(offset)
            data = fh.read(count)
        piece, _, _ = page.decode(data, index, jpegtables=page.jpegtables)
        return None if piece is None else np.asarray(piece[0], np.uint8)

    def close(self) -> None:
        self._tf.close()

    def __enter__(self) -> TiffRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tiff_by_pieces(path: Path) -> bool:
    """True when ``path`` is a TIFF that :class:`TiffRows` reads exactly as ``load_image``."""
    with _images.open_image(path) as im:
        if im.format != "TIFF" or im.mode != "RGB" or im.getexif().get(0x0112, 1) != 1:
            return False
    try:
        import tifffile
    except ImportError:
        return False
    try:
        with tifffile.TiffFile(path) as tf:
            p = tf.pages.first
            piece_rows = p.tilelength if p.is_tiled else (p.rowsperstrip or p.imagelength)
            if not (p.photometric == 2 and p.planarconfig == 1 and p.bitspersample == 8
                    and p.samplesperpixel == 3 and p.imagedepth == 1 and p.dtype == np.uint8
                    and len(p.dataoffsets) > 1 and piece_rows <= MAX_PIECE_ROWS):
                return False
            # a compression tifffile cannot decode here (a codec package missing): Pillow's
            fh = tf.filehandle
            fh.seek(p.dataoffsets[0])
            p.decode(fh.read(p.databytecounts[0]), 0, jpegtables=p.jpegtables)
            return True
    except Exception:  # tifffile cannot read it: Pillow's whole read decides
        return False


def open_rows(path: str | os.PathLike) -> TiffRows | ArrayRows:
    """The photo at ``path`` as a row source; use it in a ``with`` block to close it.

    Raises :class:`ml.common.images.ImageError` (naming the file) for anything unreadable.
    """
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff") and _tiff_by_pieces(path):
        try:
            return TiffRows(path)
        except Exception as e:
            raise _images.ImageError(path, f"not a readable image ({type(e).__name__}: "
                                           f"{e})") from e
    return ArrayRows(_images.load_image(path))
