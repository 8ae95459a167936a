"""Building a trained model's background bank (:mod:`ml.student.novelty`) from its project.

The bank holds the background a person's boxes imply: on each training photo a person boxed,
the pixels outside every box (grown by :data:`MARGIN` px) and outside its teacher mask. The
validation photos stay out of it: the proposals' calibration (:mod:`ml.prediction.
proposal_calibration`) scores their regions' novelty as an unseen photo's would be. Each photo
is seen as prediction sees it (:func:`views`), so a bank patch and a predicted patch come from
the same scale.

:func:`ensure_bank` is what the calibration calls: the folder's bank, else one built and saved
now (a model trained before banks gets one the first time its proposals are calibrated).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ml.common.progress import ProgressFn, Reporter, StopFn
from ml.prediction.photo_rows import ArrayRows
from ml.prediction.tiled import TileGrid, tiles
from ml.project.store import Project
from ml.student.novelty import (
    POOL,
    TAPS_USED,
    NoveltyBank,
    build_bank,
    load_bank,
    patch_features,
)

if TYPE_CHECKING:
    from ml.prediction.predict import Predictor

MARGIN = 4  # px a box is grown by before its outside counts as background


def bank_keys(project: Project) -> list[str]:
    """The photos a bank learns background from: person-boxed training photos with a teacher
    mask (every such photo when the project has no stored split)."""
    split = project.split
    val = set(split.get("val") or [])
    train = set(split.get("train") or [])
    out = []
    for k in project.keys():
        rec = project.record(k)
        if rec.teacher is None or not rec.person_boxed() or k in val:
            continue
        if train and k not in train:
            continue
        out.append(k)
    return out


def background_of(project: Project, key: str, margin: int = MARGIN) -> np.ndarray | None:
    """Bool map of ``key``'s background: outside its boxes (grown by ``margin``) and outside
    its teacher mask; None where the photo has no teacher mask."""
    mask = project.load_mask(key, "teacher")
    if mask is None:
        return None
    h, w = mask.shape[:2]
    bg = mask == 0  # ignored pixels (IGNORE) are not background either
    for b in project.record(key).boxes:
        x0, y0, x1, y1 = b.xyxy
        bg[max(int(y0) - margin, 0):min(int(np.ceil(y1)) + margin, h),
           max(int(x0) - margin, 0):min(int(np.ceil(x1)) + margin, w)] = False
    return bg


def views(predictor: Predictor, image: np.ndarray, mask: np.ndarray
          ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(input view (t, t, 3) uint8, ``mask``'s share of each view pixel (t, t) float32) of
    every model input ``predictor`` makes of ``image`` (:meth:`~ml.prediction.predict.
    Predictor.bands`): the resized photo, or its tiles (padding lies outside ``mask``)."""
    import cv2

    h, w = image.shape[:2]
    m = mask.astype(np.float32)
    t = predictor.tile
    if predictor.crop <= 0 and not predictor.tiled:
        yield (cv2.resize(image, (t, t), interpolation=cv2.INTER_AREA if h * w > t * t
                          else cv2.INTER_LINEAR),
               cv2.resize(m, (t, t), interpolation=cv2.INTER_AREA))
        return
    hs, ws = predictor._tiled_size(h, w)
    if (hs, ws) != (h, w):
        interp = cv2.INTER_AREA if hs * ws < h * w else cv2.INTER_LINEAR
        image = cv2.resize(image, (ws, hs), interpolation=interp)
        m = cv2.resize(m, (ws, hs), interpolation=cv2.INTER_AREA)
    grid = TileGrid(hs, ws, t, predictor.overlap)
    mp = np.zeros(grid.padded, np.float32)  # a photo smaller than a tile: padding is not mask
    mp[:hs, :ws] = m
    for i, x, tile in tiles(ArrayRows(image), grid):  # the tiles prediction cuts, padded alike
        y = grid.ys[i]
        yield tile, mp[y:y + t, x:x + t]


def background_patches(predictor: Predictor, image: np.ndarray, background: np.ndarray
                       ) -> np.ndarray:
    """(n, D) unit features (:func:`ml.student.novelty.patch_features`) of the patches of
    ``image`` lying wholly on ``background`` (bool, the photo's size), each seen as
    prediction sees it: a photo's rows of the bank."""
    import cv2
    import torch

    model = predictor.model
    out = []
    with torch.inference_mode():
        for view, share in views(predictor, image, background):
            f = patch_features(model.encode(predictor._input(view[None])))[0]  # (D, gh, gw)
            gh, gw = f.shape[1:]
            cell = cv2.resize(share, (gw, gh), interpolation=cv2.INTER_AREA) >= 0.999
            if cell.any():
                out.append(f.permute(1, 2, 0)[torch.from_numpy(cell).to(f.device)].cpu())
    if not out:
        return np.zeros((0, int(model.backbone.out_channels) * TAPS_USED), np.float32)
    return torch.cat(out).numpy()


def build_model_bank(project: Project, predictor: Predictor, keys: list[str] | None = None,
                     progress: ProgressFn | None = None, should_stop: StopFn | None = None
                     ) -> NoveltyBank | None:
    """The bank of ``predictor``'s model from ``keys`` (default :func:`bank_keys`); None when
    fewer than two photos have background patches, or when stopped."""
    rows = bank_rows(project, predictor, keys, progress, should_stop)
    return None if rows is None else build_bank(rows)


def bank_rows(project: Project, predictor: Predictor, keys: list[str] | None = None,
              progress: ProgressFn | None = None, should_stop: StopFn | None = None
              ) -> list[np.ndarray] | None:
    """Each photo of ``keys`` (default :func:`bank_keys`): its background patches'
    features, at most its share of the coreset's pool; None when stopped."""
    keys = bank_keys(project) if keys is None else keys
    rep = Reporter(len(keys), progress, should_stop)
    rows = []
    # each photo's share of the coreset's pool: a few tiled 45 MP photos would otherwise hold
    # millions of patches (gigabytes) before the bank draws its pool from them
    share = -(-POOL // max(len(keys), 1))
    rng = np.random.default_rng(0)
    for k in keys:
        if rep.stopped():
            return None
        bg = background_of(project, k)
        if bg is not None and bg.any():
            image = project.load_image(k)
            if image.shape[:2] == bg.shape:
                row = background_patches(predictor, image, bg)
                if len(row) > share:
                    row = row[np.sort(rng.choice(len(row), share, replace=False))]
                rows.append(row)
        rep.step(message=k)
    return rows


def ensure_bank(project: Project, model_dir: str | Path, predictor: Predictor,
                progress: ProgressFn | None = None, should_stop: StopFn | None = None
                ) -> NoveltyBank | None:
    """``predictor``'s bank: the one it has, the folder's, or one built now and saved there
    (None: the model has no taps to build from, or the project too few boxed photos)."""
    if predictor.novelty is not None:
        return predictor.novelty
    bank = load_bank(model_dir)
    if bank is None and hasattr(predictor.model, "encode"):
        bank = build_model_bank(project, predictor, progress=progress, should_stop=should_stop)
        if bank is not None:
            bank.save(model_dir)
    predictor.novelty = bank
    return bank
