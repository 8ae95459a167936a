"""Native-resolution prediction in bounded memory: tiles in row bands, blended, streamed out.

A photo is cut into ``tile``-square tiles that overlap by ``overlap`` px (the last tile of a row
or column is flush with the photo's edge). Each tile's class probabilities are weighted by a
linear-ramp window (:func:`ramp_window`: low at the tile's edges, 1 inside, never 0), summed,
and divided by the summed weights, so neighbouring tiles fade into one another and no seam
shows. A photo smaller than a tile is reflect-padded to one tile.

Tiles are predicted in row-major order. Once tile row ``i`` (rows ``y_i`` to ``y_i + tile``)
is done, rows ``[y_i, y_{i+1})`` are final: no later tile reaches above ``y_{i+1}``. They are
handed out as a band (:func:`tiled_bands`) and the accumulator moves down. Live at once: one
accumulator (C x (tile + step) x W float32: 85 MB for an 8000 px wide photo and 518 px tiles),
one batch of tiles, at most two tile rows' worth of photo rows and one finished band, whatever
the photo's height. The bands' consumer (``Predictor.stream``) turns each into label
and confidence rows and hands them to a sink: :class:`ArraySink` (uint8 arrays) or
:class:`ml.prediction.png_stream.PngMaskSink` (PNG files written as the bands come).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ml.common.progress import Reporter
from ml.prediction.photo_rows import RowSource

# Rows per band when probabilities are resized to the photo (resize mode, crop-scale mode).
UPSAMPLE_ROWS = 256

Forward = Callable[[np.ndarray], torch.Tensor]  # (B, t, t, 3) uint8 -> (B, C, t, t) probs


def _ramp(size: int, overlap: int) -> torch.Tensor:
    """(size,) weights along one axis: linear ramps over the overlap, 1 inside, never 0."""
    w = torch.ones(size)
    if overlap > 0:
        ramp = torch.arange(1, overlap + 1, dtype=torch.float32) / (overlap + 1)
        w[:overlap] = ramp
        w[-overlap:] = torch.minimum(w[-overlap:], ramp.flip(0))
    return w


def ramp_window(size: int, overlap: int) -> torch.Tensor:
    """(size, size) blending weights: linear ramps over the overlap, 1 inside, never 0."""
    w = _ramp(size, overlap)
    return w[:, None] * w[None, :]


def _weight_sums(starts: list[int], n: int, ramp: torch.Tensor) -> torch.Tensor:
    """(n,) sum of the 1-D ramps of tiles starting at ``starts``.

    The window is a product of a row and a column ramp and the tiles form a full grid, so the
    summed 2-D weights are the product of these two 1-D sums: no per-tile weight map to add.
    """
    out = torch.zeros(n, device=ramp.device)
    for s in starts:
        out[s:s + len(ramp)] += ramp
    return out


def tile_starts(n: int, tile: int, step: int) -> list[int]:
    """Tile origins covering ``n`` pixels; the last tile is flush with the end."""
    if n <= tile:
        return [0]
    return sorted(set(range(0, n - tile, step)) | {n - tile})


@dataclass(frozen=True)
class TileGrid:
    """Where the tiles of a ``height`` x ``width`` photo lie."""

    height: int
    width: int
    tile: int
    overlap: int

    @property
    def step(self) -> int:
        return max(1, self.tile - self.overlap)

    @property
    def padded(self) -> tuple[int, int]:
        """(height, width) after padding a photo smaller than a tile up to one tile."""
        return max(self.height, self.tile), max(self.width, self.tile)

    @property
    def ys(self) -> list[int]:
        return tile_starts(self.padded[0], self.tile, self.step)

    @property
    def xs(self) -> list[int]:
        return tile_starts(self.padded[1], self.tile, self.step)

    @property
    def n_tiles(self) -> int:
        return len(self.ys) * len(self.xs)


def _tile_rows(source: RowSource, y: int, grid: TileGrid) -> np.ndarray:
    """Photo rows ``[y, y + tile)``, padded as the whole photo would be when it is too small."""
    h, w = source.height, source.width
    rows = source.rows(y, min(y + grid.tile, h))
    hp, wp = grid.padded
    ph, pw = hp - h, wp - w  # ph > 0 only when the photo is shorter than a tile (y == 0)
    if ph or pw:
        mode = "reflect" if min(h, w) > 1 else "edge"
        rows = np.pad(rows, ((0, ph), (0, pw), (0, 0)), mode=mode)
    return rows


def _shift_up(a: torch.Tensor, rows: int) -> None:
    """Move ``a``'s contents up by ``rows`` along its second last axis, zeros below."""
    if rows >= a.shape[-2]:
        a.zero_()
        return
    a[..., :-rows, :] = a[..., rows:, :].clone()
    a[..., -rows:, :] = 0


def tiles(source: RowSource, grid: TileGrid) -> Iterator[tuple[int, int, np.ndarray]]:
    """(tile row, x, tile) in row-major order; a tile row's photo rows are read when its first
    tile is asked for."""
    for i, y in enumerate(grid.ys):
        rows = _tile_rows(source, y, grid)
        for x in grid.xs:
            yield i, x, rows[:, x:x + grid.tile]


def tiled_bands(forward: Forward, source: RowSource, grid: TileGrid, batch_size: int = 4,
                device: str | torch.device = "cpu", reporter: Reporter | None = None
                ) -> Iterator[tuple[int, torch.Tensor]]:
    """(first row, (C, rows, W) probabilities) of each finished band, top to bottom.

    Batches run on across tile rows (a row of 21 tiles in batches of 4 would leave a batch of
    one, which costs nearly a full batch), so the accumulator holds a row of tiles and the next
    one's first step. ``reporter`` is checked before each batch (raises ``Cancelled`` when asked
    to stop) and told after it how many tiles were done.
    """
    t, h, w = grid.tile, source.height, source.width
    ys, xs = grid.ys, grid.xs
    ramp = _ramp(t, grid.overlap).to(device)
    window = ramp[:, None] * ramp[None, :]
    wy, wx = _weight_sums(ys, grid.padded[0], ramp), _weight_sums(xs, grid.padded[1], ramp)[:w]
    acc: torch.Tensor | None = None  # rows [ys[row], ys[row] + tile + step) of the weighted sum
    row, left = 0, len(xs)  # the first unfinished tile row, its tiles still to add
    pending = tiles(source, grid)
    while row < len(ys):
        if reporter is not None:
            reporter.check()
        # never past the next tile row: the accumulator holds two rows' first steps at most
        chunk = list(itertools.islice(pending, min(batch_size, left + len(xs))))
        p = forward(np.stack([tile for *_, tile in chunk]))
        if acc is None:
            acc = torch.zeros((p.shape[1], t + grid.step, grid.padded[1]), device=device)
        for (i, x, _), pi in zip(chunk, p, strict=True):
            dy = ys[i] - ys[row]  # 0, or the next row's offset when a batch spans two rows
            acc[:, dy:dy + t, x:x + t].addcmul_(pi, window)
        del chunk
        if reporter is not None:
            reporter.step(len(p), message=f"tile row {row + 1}/{len(ys)}")
        left -= len(p)
        while left <= 0 and row < len(ys):  # tile row ``row`` is complete
            y = ys[row]
            nxt = ys[row + 1] if row + 1 < len(ys) else h
            done = min(nxt, h) - y  # rows no later tile touches (a padded photo ends at h)
            if done > 0:
                yield y, acc[:, :done, :w] / (wy[y:y + done, None] * wx[None, :])
            if row + 1 < len(ys):
                _shift_up(acc, nxt - y)
            row, left = row + 1, left + len(xs)


def upsample_bands(probs: torch.Tensor, height: int, width: int, rows: int = UPSAMPLE_ROWS
                   ) -> Iterator[tuple[int, torch.Tensor]]:
    """``probs`` ((C, h, w)) resized bilinearly to ``height`` x ``width``, band by band.

    The same values as ``F.interpolate(..., mode="bilinear", align_corners=False)`` on the
    whole map (up to float rounding), without the whole (C, height, width) map in memory.
    """
    hs, ws = probs.shape[1:]
    scale = hs / height
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        if (hs, ws) == (height, width):
            yield y0, probs[:, y0:y1]
            continue
        # source row of each output row, as PyTorch computes it for align_corners=False
        src = ((torch.arange(y0, y1, dtype=torch.float64) + 0.5) * scale - 0.5).clamp(min=0)
        i0 = src.floor().long().clamp(max=hs - 1)
        i1 = (i0 + 1).clamp(max=hs - 1)
        lam = (src - i0).to(probs.dtype).to(probs.device)[:, None]
        i0, i1 = i0.to(probs.device), i1.to(probs.device)
        mixed = probs[:, i0] * (1 - lam) + probs[:, i1] * lam  # (C, y1 - y0, ws)
        # the rows are at their final height already: this only resizes the width
        yield y0, F.interpolate(mixed[None], size=(y1 - y0, width), mode="bilinear",
                                align_corners=False)[0]


class ArraySink:
    """Label and confidence rows of a photo gathered into uint8 arrays (and, when asked, the
    class probabilities into a (C, H, W) array of ``probs_dtype``, and the box-free proposal
    maps: the label at the proposal threshold and the defect score)."""

    def __init__(self, height: int, width: int, probs_dtype: type | None = None,
                 regions: bool = False) -> None:
        self.label = np.zeros((height, width), np.uint8)
        self.confidence = np.zeros((height, width), np.uint8)
        self.probs: np.ndarray | None = None
        self._probs_dtype = probs_dtype
        self.regions = np.zeros((height, width), np.uint8) if regions else None
        self.defect = np.zeros((height, width), np.uint8) if regions else None
        self.novelty: np.ndarray | None = None  # made by the first band that has one

    def write_regions(self, y0: int, regions: np.ndarray, defect: np.ndarray,
                      novelty: np.ndarray | None = None) -> None:
        assert self.regions is not None and self.defect is not None
        self.regions[y0:y0 + len(regions)] = regions
        self.defect[y0:y0 + len(defect)] = defect
        if novelty is not None:
            if self.novelty is None:
                self.novelty = np.zeros(self.regions.shape, np.uint8)
            self.novelty[y0:y0 + len(novelty)] = novelty

    def write(self, y0: int, label: np.ndarray, confidence: np.ndarray,
              probs: np.ndarray | None = None) -> None:
        n = len(label)
        self.label[y0:y0 + n] = label
        self.confidence[y0:y0 + n] = confidence
        if self._probs_dtype is not None and probs is not None:
            if self.probs is None:
                self.probs = np.zeros((len(probs), *self.label.shape), self._probs_dtype)
            self.probs[:, y0:y0 + n] = probs
