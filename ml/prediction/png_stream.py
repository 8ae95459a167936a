"""Writing a uint8 mask as PNG band by band, so a 45 MP mask never has to be whole in memory.

Pillow encodes a whole image at once; a PNG is simple enough to write as it comes: a header,
then one zlib stream of the image's rows (each prefixed by its filter byte) cut into IDAT
chunks, then the end chunk. Rows use the Sub filter (each byte minus its left neighbour), which
turns the long runs of one class id into zeros that compress well. The file reads back exactly
as :func:`ml.common.images.load_label` expects: palette indices (with a palette) or grey values.
"""

from __future__ import annotations

import os
import struct
import zlib
from contextlib import ExitStack
from typing import IO

import numpy as np

from ml.common.atomic import atomic_file

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SUB = 1  # PNG filter type: each byte minus the byte to its left


def _chunk(fh: IO[bytes], kind: bytes, data: bytes) -> None:
    fh.write(struct.pack(">I", len(data)) + kind + data)
    fh.write(struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


class PngRows:
    """A PNG of ``width`` x ``height`` uint8 pixels written to ``fh`` in bands of rows."""

    def __init__(self, fh: IO[bytes], width: int, height: int,
                 palette: list[tuple[int, int, int]] | None = None, level: int = 3) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"a PNG needs at least one pixel, got {width} x {height}")
        self.fh, self.width, self.height = fh, int(width), int(height)
        self.rows_written = 0
        self._z = zlib.compressobj(level)
        fh.write(_SIGNATURE)
        colour = 3 if palette is not None else 0  # palette indices or grey
        _chunk(fh, b"IHDR", struct.pack(">IIBBBBB", self.width, self.height, 8, colour, 0, 0, 0))
        if palette is not None:
            flat = bytes(c for rgb in palette for c in rgb)
            _chunk(fh, b"PLTE", flat + bytes(768 - len(flat)))  # all 256 ids valid, as Pillow

    def write(self, rows: np.ndarray) -> None:
        """Append ``rows`` ((n, width) uint8), the next rows of the image from the top."""
        rows = np.asarray(rows)
        if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != self.width:
            raise ValueError(f"expected (n, {self.width}) uint8 rows, got {rows.shape} "
                             f"{rows.dtype}")
        if self.rows_written + len(rows) > self.height:
            raise ValueError(f"more rows than the image's {self.height}")
        filtered = np.empty((len(rows), self.width + 1), np.uint8)
        filtered[:, 0] = _SUB
        filtered[:, 1] = rows[:, 0]
        np.subtract(rows[:, 1:], rows[:, :-1], out=filtered[:, 2:])  # wraps mod 256, as PNG
        self._emit(self._z.compress(filtered.tobytes()))
        self.rows_written += len(rows)

    def close(self) -> None:
        """Finish the file; raise if fewer rows than the image's height were written."""
        if self.rows_written != self.height:
            raise ValueError(f"{self.rows_written} of {self.height} rows written")
        self._emit(self._z.flush())
        _chunk(self.fh, b"IEND", b"")

    def _emit(self, data: bytes) -> None:
        if data:
            _chunk(self.fh, b"IDAT", data)


class PngMaskSink:
    """Label and confidence PNGs written band by band, each atomically (temp file, rename).

    Use as a context manager: both files appear on a clean exit only; on an exception (a stop
    mid-photo, a failed read) the temp files are deleted and any old files stay as they were.
    """

    def __init__(self, label_path: str | os.PathLike, confidence_path: str | os.PathLike,
                 width: int, height: int,
                 palette: list[tuple[int, int, int]] | None = None) -> None:
        self._paths = (label_path, confidence_path)
        self._size = (width, height)
        self._palette = palette
        self._stack = ExitStack()
        self._label: PngRows | None = None
        self._conf: PngRows | None = None

    def __enter__(self) -> PngMaskSink:
        w, h = self._size
        with ExitStack() as stack:
            fl = stack.enter_context(atomic_file(self._paths[0]))
            fc = stack.enter_context(atomic_file(self._paths[1]))
            self._label = PngRows(fl, w, h, self._palette)
            self._conf = PngRows(fc, w, h)
            self._stack = stack.pop_all()
        return self

    def write(self, y0: int, label: np.ndarray, confidence: np.ndarray,
              probs: np.ndarray | None = None) -> None:
        """The band of rows starting at ``y0``; bands come top to bottom without gaps."""
        assert self._label is not None and self._conf is not None, "use PngMaskSink in a with"
        if y0 != self._label.rows_written:
            raise ValueError(f"band at row {y0}, expected row {self._label.rows_written}")
        self._label.write(label)
        self._conf.write(confidence)

    def __exit__(self, kind, value, tb) -> bool:
        if kind is None:
            try:
                assert self._label is not None and self._conf is not None
                self._label.close()
                self._conf.close()
            except BaseException as e:  # a short image: delete the temp files, not rename them
                self._stack.__exit__(type(e), e, e.__traceback__)
                raise
        return bool(self._stack.__exit__(kind, value, tb))
