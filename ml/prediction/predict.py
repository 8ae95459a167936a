"""Student inference: whole-image or tiled prediction, box-constrained masks, corrections map.

Modes: ``resize`` (the paper: the photo is resized to ``input_size`` squared, class
probabilities are resized back) and ``tiled`` (native resolution: overlapping ``input_size``
tiles blended with a linear-ramp window, :mod:`ml.prediction.tiled`; photos smaller than a tile are
reflect-padded). A model trained on crops (``card.train.crop`` > 0) is always tiled at its
training scale: the photo is scaled as the training cache scaled it (long side at most
:func:`ml.student.crops.cache_long_side`) and by input size / crop, tiled, and the probabilities are
resized back, so training and prediction see defects at the same pixel size.

Box constraint, where a person drew boxes: only pixels inside them may be defects, which of
them are is the box rule's call (:mod:`ml.prediction.box_decode`: by default ``tight``, the
tightness prior; ``posterior``, the 0.5 rule on prior-corrected probabilities), the box gives the
class, and a box the student leaves empty may take the teacher's mask (the fallback, the product's
default; scoring the student itself needs it off). :mod:`ml.prediction.box_constraint` has the
rules.

Novelty: a model folder with a background bank (:mod:`ml.student.novelty`, built after
training by :mod:`ml.prediction.novelty_build`) scores every patch against it in the same
forward pass; the novelty rides as one more channel through the tiles and bands and comes out
beside the box-free proposal maps (``PredictResult.novelty``), where a proposal's calibrated
confidence weighs it.

Every mode hands out the probabilities band by band (:meth:`Predictor.bands`), and
:meth:`Predictor.stream` turns each band into uint8 label and confidence rows for a sink, so a
45 MP photo is predicted without any whole-photo float map; :meth:`Predictor.predict` gathers
the rows into arrays. :mod:`ml.prediction.batch_predict` runs it over a project's or a folder's
photos (``predict_folder`` writes the rows into PNGs as they come, :mod:`ml.prediction.png_stream`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ml.common.device import resolve_device
from ml.common.progress import ProgressFn, Reporter, StopFn
from ml.evaluation.free_threshold import FreeThreshold
from ml.prediction.box_constraint import (
    BOX_PAD,
    BoxConstraint,
    constrain_to_boxes,
    undo_class_weights,
)
from ml.prediction.box_decode import check_rule
from ml.prediction.photo_rows import ArrayRows, RowSource, as_rows
from ml.prediction.speckle import MIN_CELLS, output_cell, remove_speckle
from ml.prediction.tiled import ArraySink, TileGrid, tiled_bands, upsample_bands
from ml.prediction.tiled import ramp_window as _ramp_window  # noqa: F401 - the name tests and callers know
from ml.prediction.tiled import tile_starts as _starts  # noqa: F401
from ml.student.checkpoint import load_model
from ml.student.config import ModelCard
from ml.student.novelty import NoveltyBank, load_bank, novelty_bytes


@dataclass
class PredictResult:
    label: np.ndarray  # (H, W) uint8 class ids
    confidence: np.ndarray  # (H, W) uint8: max class probability * 255
    probs: np.ndarray | None = None  # (C, H, W) float16, when asked for
    fallbacks: int = 0  # boxes that took the teacher's mask
    # box-free only: the label at the proposal threshold (where proposals are looked for,
    # ml.prediction.proposals) and the defect score 1 - p(background) * 255
    regions: np.ndarray | None = None  # (H, W) uint8 class ids
    defect: np.ndarray | None = None  # (H, W) uint8
    # box-free with a background bank: each pixel's novelty * NOVELTY_UNIT (ml.student.novelty)
    novelty: np.ndarray | None = None  # (H, W) uint8


class BandSink(Protocol):
    """Where :meth:`Predictor.stream` puts each finished band (top to bottom, no gaps)."""

    def write(self, y0: int, label: np.ndarray, confidence: np.ndarray,
              probs: np.ndarray | None = None) -> None: ...


PROPOSAL_THRESHOLD = 0.5  # box-free proposals are looked for where defect beats background
REGION_PROPOSAL_THRESHOLD = 0.3  # ... and lower for the classes the teacher found to be blobs


def proposal_threshold(free_threshold: float | None, region: bool = False) -> float:
    """The defect score above which box-free proposals are looked for: where the student finds
    a defect likelier than background, or lower when the mask's own threshold is lower.
    ``region``: for a class the teacher's survey called a region (blobs), lower still.

    The free threshold draws the mask for the best pixel IoU; a small defect whose score peaks
    under it would never be proposed (round 19: on the shared sets 22 and 42 true regions that
    the queue missed had no pixel above 0.75), so the calibrated region confidence, not the
    pixel threshold, decides which regions a person sees.

    Blobs the student is unsure of peak under 0.5 (round 21: magnetic_tile's missed true
    regions at 0.35-0.50, 0.96 of them held at 0.3), while a thin defect looked for lower merges
    with its surroundings (crackforest's queue fell from 0.84 to 0.78 real at 0.3, round 29):
    region classes take :data:`REGION_PROPOSAL_THRESHOLD`, thin ones and the classes of a
    teacher without a survey keep :data:`PROPOSAL_THRESHOLD`.
    """
    base = REGION_PROPOSAL_THRESHOLD if region else PROPOSAL_THRESHOLD
    return base if free_threshold is None else min(base, free_threshold)


class Predictor:
    """A trained model ready for numpy-in, numpy-out prediction of single photos."""

    def __init__(self, model: nn.Module, card: ModelCard, device: str | torch.device = "cpu",
                 tiled: bool = False, overlap: float = 0.25, batch_size: int = 4,
                 box_pad: int = BOX_PAD, box_rule: str = "tight",
                 min_region_cells: float = MIN_CELLS, thin_lines: bool = True,
                 free_threshold: float | None | str = "card",
                 novelty: NoveltyBank | None = None) -> None:
        if not 0 <= overlap < 1:
            raise ValueError(f"tile overlap must be in [0, 1), got {overlap}")
        self.device = resolve_device(str(device))
        self.model = model.to(self.device).eval()
        self.card = card
        self.tile = int(card.student.input_size)
        self.tiled = tiled
        self.crop = max(int(card.train.crop), 0)  # > 0: tile at the training crops' scale
        self.overlap = int(round(self.tile * overlap))
        self.batch_size = max(1, int(batch_size))
        self.box_pad = int(box_pad)
        self.box_rule = check_rule(box_rule)
        self.class_weights = _training_weights(card)
        self.min_region_cells = max(0.0, float(min_region_cells))  # box-free speckle bound
        # tight rule: thin classes drawn as the centre line of the student's box mask
        self.thin = ({int(c): float(w) for c, w in card.thin_widths.items()} if thin_lines
                     else {})
        # box-free pixels are defects when 1 - p(background) passes this (None: the argmax);
        # "card": the threshold training chose on the validation photos, if any
        self.free_threshold = (card_free_threshold(card) if free_threshold == "card"
                               else None if free_threshold is None else float(free_threshold))
        self.proposal_threshold = proposal_threshold(self.free_threshold)
        regions = {int(c) for c in card.region_classes}
        # per class id (0 unused): where a class's box-free proposals are looked for
        self.proposal_thresholds = torch.tensor(
            [1.0] + [proposal_threshold(self.free_threshold, c in regions)
                     for c in range(1, max(self.num_classes, 1))])
        self.novelty = novelty  # the background bank (None: no novelty channel)
        self._novelty_read = True  # False while a stream has no proposal maps to put it in

    @classmethod
    def from_dir(cls, model_dir: str | Path, device: str | torch.device = "auto",
                 **options: Any) -> Predictor:
        model, card = load_model(model_dir, "cpu")
        options.setdefault("novelty", load_bank(model_dir))
        return cls(model, card, device, **options)

    def settings(self) -> dict[str, Any]:
        """What made a prediction, stored beside each mask."""
        tiles = self.tiled or self.crop > 0
        return {"mode": "tiled" if tiles else "resize", "input_size": self.tile,
                "train_crop": self.crop,
                "overlap": self.overlap if tiles else 0, "box_pad": self.box_pad,
                "box_rule": self.box_rule,
                "box_prior_correction": (self.box_rule == "posterior"
                                         and self.class_weights is not None),
                "box_classes": True, "min_region_cells": self.min_region_cells,
                "free_threshold": self.free_threshold,
                "proposal_threshold": self.proposal_threshold,
                "region_proposal_threshold": (
                    proposal_threshold(self.free_threshold, True) if self.card.region_classes
                    else None),
                "novelty_bank": self.novelty is not None,
                "thin_widths": ({str(c): w for c, w in sorted(self.thin.items())}
                                if self.box_rule == "tight" else {})}

    @property
    def num_classes(self) -> int:
        return int(self.card.student.num_classes)

    def _input(self, batch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        return x.permute(0, 3, 1, 2).float().div_(255.0)

    @torch.inference_mode()
    def _forward(self, batch: np.ndarray) -> torch.Tensor:
        """Class probabilities (B, C, h, w) of a (B, h, w, 3) uint8 batch; with a background
        bank, each pixel's novelty as channel C after them (unless the stream reads none)."""
        x = self._input(batch)
        if self.novelty is None or not self._novelty_read:
            return self.model(x)["fine"].float().softmax(dim=1)
        feats = self.model.encode(x)
        probs = self.model.decode(feats, x)["fine"].float().softmax(dim=1)
        nov = torch.nn.functional.interpolate(self.novelty.score(feats)[:, None],
                                              size=probs.shape[-2:], mode="bilinear",
                                              align_corners=False)
        return torch.cat([probs, nov], dim=1)

    def crop_scale(self, hw: tuple[int, int]) -> float:
        """Factor a photo of size ``hw`` is resized by so its pixels match the training crops."""
        from ml.student.crops import cache_long_side

        cached = min(1.0, cache_long_side(self.tile, self.crop) / max(max(hw), 1))
        return cached * self.tile / self.crop

    def input_scale(self, hw: tuple[int, int]) -> float:
        """Input pixels per photo pixel for a photo of size ``hw`` (geometric mean of the axes)."""
        if self.crop > 0:
            return self.crop_scale(hw)
        if self.tiled:
            return 1.0
        return self.tile / max(math.sqrt(hw[0] * hw[1]), 1.0)

    def _tiled_size(self, h: int, w: int) -> tuple[int, int]:
        """(height, width) a photo is tiled at: native, or a crop-trained model's scale."""
        if self.crop <= 0:
            return h, w
        f = self.crop_scale((h, w))
        return max(1, round(h * f)), max(1, round(w * f))

    def tile_count(self, height: int, width: int) -> int:
        """Model runs (tiles) a photo of this size takes: the total of its progress."""
        if self.crop <= 0 and not self.tiled:
            return 1
        return TileGrid(*self._tiled_size(height, width), self.tile, self.overlap).n_tiles

    def _tiled(self, source: RowSource, reporter: Reporter | None
               ) -> Iterator[tuple[int, torch.Tensor]]:
        grid = TileGrid(source.height, source.width, self.tile, self.overlap)
        return tiled_bands(self._forward, source, grid, self.batch_size, self.device, reporter)

    def bands(self, image: np.ndarray | RowSource, reporter: Reporter | None = None
              ) -> Iterator[tuple[int, torch.Tensor]]:
        """(first row, (C, rows, W) class probabilities) of the photo, band by band (with a
        background bank, C + 1 rows: the novelty last)."""
        import cv2

        src = as_rows(image)
        h, w = src.height, src.width
        if self.crop > 0 or self.tiled:
            hs, ws = self._tiled_size(h, w)
            if (hs, ws) == (h, w):
                yield from self._tiled(src, reporter)
                return
            small = cv2.resize(src.rows(0, h), (ws, hs), interpolation=cv2.INTER_AREA
                               if hs * ws < h * w else cv2.INTER_LINEAR)
            # the scaled photo is small (its long side is bounded by the training cache's)
            probs = torch.cat([p for _, p in self._tiled(ArrayRows(small), reporter)], dim=1)
            yield from upsample_bands(probs, h, w)
            return
        t = self.tile
        if reporter is not None:
            reporter.check()
        image = src.rows(0, h)
        interp = cv2.INTER_AREA if h * w > t * t else cv2.INTER_LINEAR
        small = cv2.resize(image, (t, t), interpolation=interp) if (h, w) != (t, t) else image
        del image
        probs = self._forward(small[None])[0]
        if reporter is not None:
            reporter.step(1)
        yield from upsample_bands(probs, h, w)

    def stream(self, image: np.ndarray | RowSource, sink: BandSink,
               boxes: np.ndarray | None = None, box_classes: np.ndarray | None = None,
               progress: ProgressFn | None = None, should_stop: StopFn | None = None
               ) -> BoxConstraint | None:
        """Predict ``image`` into ``sink`` band by band: uint8 label and confidence rows.

        With ``boxes`` ((N, 4) xyxy) the label is box-constrained; the ``tight`` rule's boxes
        and the teacher fallback need whole boxes, so they are left to the caller through the
        returned :class:`~ml.prediction.box_constraint.BoxConstraint` (``finish``, then
        ``fallback``; see :meth:`predict`): the streamed rows hold the ``posterior`` rule's boxes
        only. ``progress`` counts tiles; ``should_stop`` is asked before each batch of tiles and
        raises ``Cancelled``.
        """
        src = as_rows(image)
        h, w = src.height, src.width
        bc = (BoxConstraint(boxes, box_classes, self.box_pad, h, w, self.box_rule, self.thin)
              if boxes is not None and len(boxes) else None)
        rep = Reporter(self.tile_count(h, w), progress, should_stop)
        c = self.num_classes
        wants = bc is None and getattr(sink, "regions", None) is not None  # proposal maps
        self._novelty_read = wants  # the novelty goes only beside them: not computed else
        try:
            for y0, band in self.bands(src, rep):
                band = band.float()
                novelty = band[c] if band.shape[0] > c else None
                band = band[:c]
                top = band.max(dim=0)  # torch: threaded and on the model's device
                confidence = (top.values * 255.0).round_().to(torch.uint8).cpu().numpy()
                p = band.cpu().numpy()
                if bc is None:
                    label = free_label(band, top.indices, self.free_threshold)
                    if wants:
                        sink.write_regions(y0, proposal_label(band, self.proposal_thresholds),
                                           (255.0 - band[0] * 255.0).round_().to(torch.uint8)
                                           .cpu().numpy(),
                                           None if novelty is None else novelty_bytes(novelty))
                else:
                    label = bc.band(y0, undo_class_weights(p, self.class_weights)
                                    if self.box_rule == "posterior" else p)
                sink.write(y0, label, confidence, p)
        finally:
            self._novelty_read = True
        return bc

    def probabilities(self, image: np.ndarray | RowSource) -> np.ndarray:
        """(C, H, W) float32 class probabilities of an (H, W, 3) uint8 RGB photo."""
        src = as_rows(image)
        sink = ArraySink(src.height, src.width, np.float32)
        self.stream(src, sink)
        assert sink.probs is not None
        return sink.probs

    def constrain(self, probs: np.ndarray, boxes: np.ndarray,
                  teacher: np.ndarray | None = None, box_classes: np.ndarray | None = None,
                  fallback: bool = True, rule: str | None = None) -> tuple[np.ndarray, int]:
        """(box-constrained label, boxes that fell back) of :meth:`probabilities`' output.

        ``rule``: a box rule other than the predictor's own (the bench scores both).
        """
        rule = check_rule(rule or self.box_rule)
        if rule == "posterior":
            probs = undo_class_weights(probs, self.class_weights)
        return constrain_to_boxes(probs, boxes, teacher, self.box_pad, box_classes, fallback,
                                  rule, self.thin)

    def predict(self, image: np.ndarray | RowSource, boxes: np.ndarray | None = None,
                teacher: np.ndarray | None = None, return_probs: bool = False,
                box_classes: np.ndarray | None = None, fallback: bool = True,
                progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                regions: bool = True) -> PredictResult:
        """Label and confidence maps; with ``boxes`` ((N, 4) xyxy) the box-constrained mask.

        ``box_classes`` ((N,) class ids) gives the boxed pixels their box's class;
        ``fallback=False`` leaves a box the student finds empty empty (no teacher mask).
        ``progress`` and ``should_stop``: as :meth:`stream`. Without boxes, findings smaller
        than ``min_region_cells`` output cells are dropped (:mod:`ml.prediction.speckle`), and
        ``regions`` adds the maps proposals are found in (``PredictResult.regions``, ``defect``).
        """
        src = as_rows(image)
        free = boxes is None or not len(boxes)
        sink = ArraySink(src.height, src.width, np.float16 if return_probs else None,
                         regions=regions and free)
        bc = self.stream(src, sink, boxes, box_classes, progress, should_stop)
        if bc is not None:
            bc.finish(sink.label)  # the tight rule's boxes, decided once each box is whole
        fallbacks = bc.fallback(sink.label, teacher) if bc is not None and fallback else 0
        label, low = sink.label, sink.regions
        if bc is None and self.min_region_cells > 0:  # box-free: findings, not specks
            cell = output_cell(self.input_scale((src.height, src.width)))
            label = remove_speckle(label, cell, self.min_region_cells)
            low = None if low is None else remove_speckle(low, cell, self.min_region_cells)
        return PredictResult(label, sink.confidence, sink.probs, fallbacks, low, sink.defect,
                             getattr(sink, "novelty", None))


def free_label(probs: torch.Tensor, argmax: torch.Tensor, threshold: float | None
               ) -> np.ndarray:
    """Box-free uint8 label rows of (C, rows, W) ``probs``: the likeliest defect class where
    the defect score 1 - p(background) passes ``threshold``, else background (None: argmax)."""
    if threshold is None:
        return argmax.to(torch.uint8).cpu().numpy()
    label = probs[1:].argmax(dim=0).add_(1).to(torch.uint8)
    label[probs[0] >= 1.0 - threshold] = 0
    return label.cpu().numpy()


def proposal_label(probs: torch.Tensor, thresholds: torch.Tensor) -> np.ndarray:
    """Box-free uint8 label rows of (C, rows, W) ``probs`` at per-class proposal ``thresholds``
    ((C,), 0 unused): the likeliest defect class where the defect score passes its class's."""
    label = probs[1:].argmax(dim=0).add_(1)
    t = thresholds.to(probs.device)[label]
    label[probs[0] >= 1.0 - t] = 0
    return label.to(torch.uint8).cpu().numpy()


def card_free_threshold(card: ModelCard) -> float | None:
    """The box-free threshold training stored in ``card`` (None: none was chosen)."""
    chosen = FreeThreshold.from_json(card.free_threshold)
    return None if chosen is None else chosen.threshold


def _training_weights(card: ModelCard) -> np.ndarray | None:
    """The CE class weights the model was trained with (None for plain CE)."""
    if card.train.loss != "b2p":
        return None
    from ml.student.config import class_weights

    return np.asarray(class_weights(card.train, card.student.num_classes), np.float32)
