"""Training data: the in-memory cache of images and masks, and views of cached images.

Which images are labelled and the persisted train/val split live in :mod:`ml.project.split` (no
torch) and are re-exported here; review decisions join every target through
:mod:`ml.training.decided`.

Images are read once and kept in memory, downscaled (area interpolation; nearest for masks)
so that their long side is at most :func:`ml.student.crops.cache_long_side` = 4 x max(input size,
crop). That bounds memory (a 518 px student keeps ~2072 px photos, ~10 MB each) while crops
still see thin defects at 4x the detail of a whole-image resize.

Two kinds of view, both giving float ``(3, S, S)`` tensors in [0, 1] and long ``(S, S)``
targets (255 = padding outside the image):

* whole image resized to the square input (the paper; ``crop == 0``), or
* a ``crop`` x ``crop`` window of the cached image resized to the input (``crop > 0``).

:class:`RandomViews` draws fresh views every epoch (random crops, two thirds of them centred
on a defect pixel, flips and mild colour jitter; on photos with boxes, three quarters of the
crops hold a whole box and the rest are drawn anywhere, for background). :class:`FixedViews`
lists deterministic views (a grid of crops, optional horizontal flip) for validation and the
feature cache.
With ``with_boxes`` both also give each view's box raster (:mod:`ml.training.box_raster`), for the
box-consistency loss.

With ``confidence`` the teacher's per-pixel confidence is loaded too and travels with the
target through every crop, resize and flip; views then give a weight tensor after the target,
float (S, S) in [0, 1] (1 outside the boxes, on padding and where no confidence was stored).
Items are ``(image, target[, weight][, box raster])``.

``TrainConfig.crop`` = :data:`ml.student.crops.CROP_AUTO` picks the sampler from the photos
(:func:`ml.student.crops.resolve_crop`): native-resolution crops where photos are larger than the
input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ml.common.classes import IGNORE
from ml.project.split import MIN_VAL_IMAGES, split_keys  # noqa: F401 (re-exported)
from ml.project.store import Project, boxes_to_arrays
from ml.student.crops import grid_origins
from ml.training.box_raster import box_raster, box_window
from ml.training.decided import decided_label, labelled_keys  # noqa: F401 (re-exported)

DEFECT_CENTRED = 2 / 3  # share of random crops centred on a defect pixel (photos without boxes)
BOX_CENTRED = 0.75  # share of random crops holding a box (the rest: anywhere, for background)


# ---------------------------------------------------------------- the in-memory cache
@dataclass
class Sample:
    """One cached image and its target, both downscaled to the cache size."""

    image: np.ndarray  # (h, w, 3) uint8
    label: np.ndarray  # (h, w) uint8
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # xyxy
    all_boxed: bool = False  # every defect of the photo is boxed
    weight: np.ndarray | None = None  # (h, w) uint8 teacher confidence, 255 = sure

    def target(self) -> np.ndarray:
        """The label, or (h, w, 2) label and weight stacked so that both are cut alike."""
        return self.label if self.weight is None else np.dstack([self.label, self.weight])


def _downscale(image: np.ndarray, label: np.ndarray, long_side: int,
               boxes: np.ndarray | None = None, all_boxed: bool = False,
               weight: np.ndarray | None = None) -> Sample:
    h, w = image.shape[:2]
    s = long_side / max(h, w)
    boxes = np.zeros((0, 4), np.float32) if boxes is None else boxes.astype(np.float32)
    if s < 1:
        size = (max(1, round(w * s)), max(1, round(h * s)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
        boxes = boxes * np.array([size[0] / w, size[1] / h] * 2, np.float32)
        if weight is not None:
            weight = cv2.resize(weight, size, interpolation=cv2.INTER_NEAREST)
    return Sample(np.ascontiguousarray(image), np.ascontiguousarray(label), boxes, all_boxed,
                  None if weight is None else np.ascontiguousarray(weight))


def load_confidence(project: Project, key: str, shape: tuple[int, int]) -> np.ndarray:
    """``key``'s teacher confidence (uint8), or all 255 where none was stored."""
    conf = project.load_teacher_confidence(key)
    if conf is None or conf.shape != shape:
        return np.full(shape, 255, np.uint8)  # an old project, or a mask edited by a person
    return conf


def load_samples(project: Project, keys: list[str], source: str = "teacher",
                 labels: dict[str, np.ndarray] | None = None, long_side: int = 2072,
                 num_classes: int | None = None,
                 on_loaded: Callable[[str], None] | None = None,
                 confidence: bool = False) -> dict[str, Sample]:
    """Read and downscale the images and targets of ``keys``; errors name the image.

    ``confidence``: also load the teacher's per-pixel confidence (teacher masks only).
    """
    n = num_classes or project.num_classes
    out: dict[str, Sample] = {}
    for key in keys:
        image = project.load_image(key)
        label = labels.get(key) if labels is not None else project.load_mask(key, source)
        label = decided_label(project, key, label, image.shape[:2], source,  # decisions
                              given=labels is not None)
        if label is None:
            raise ValueError(f"{key}: no {source} mask")
        label = np.asarray(label, dtype=np.uint8)
        if label.shape != image.shape[:2]:
            raise ValueError(f"{key}: mask {label.shape} does not match image {image.shape[:2]}")
        bad = (label >= n) & (label != IGNORE)
        if bad.any():
            raise ValueError(f"{key}: mask has class ids >= {n}")
        rec = project.record(key)
        weight = (load_confidence(project, key, label.shape)
                  if confidence and labels is None and source == "teacher" else None)
        out[key] = _downscale(image, label, long_side, boxes_to_arrays(rec.boxes)[0],
                              rec.every_defect_boxed(), weight)
        if on_loaded:
            on_loaded(key)
    return out


# ---------------------------------------------------------------- views
@dataclass(frozen=True)
class View:
    """A deterministic view: a crop window (or the whole image when ``size`` is 0) and flip."""

    key: str
    y0: int = 0
    x0: int = 0
    size: int = 0
    flip: bool = False


def fixed_views(samples: dict[str, Sample], keys: list[str], crop: int = 0,
                flips: bool = False) -> list[View]:
    """Whole images (``crop`` 0) or a grid of crops per image, each also flipped if asked."""
    out = []
    for key in keys:
        h, w = samples[key].label.shape
        boxes = ([(0, 0, 0)] if crop <= 0 else
                 [(y, x, crop) for y in grid_origins(h, crop) for x in grid_origins(w, crop)])
        for y, x, s in boxes:
            out.extend(View(key, y, x, s, f) for f in ((False, True) if flips else (False,)))
    return out


def _cut(sample: Sample, y0: int, x0: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A size x size window; parts outside the image are black with IGNORE targets."""
    target = sample.target()
    img = np.zeros((size, size, 3), np.uint8)
    lab = np.full((size, size, *target.shape[2:]), IGNORE, np.uint8)  # weight 255 there too
    h, w = sample.label.shape
    y1, x1 = min(y0 + size, h), min(x0 + size, w)
    img[: y1 - y0, : x1 - x0] = sample.image[y0:y1, x0:x1]
    lab[: y1 - y0, : x1 - x0] = target[y0:y1, x0:x1]
    return img, lab


def render(sample: Sample, view: View, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The view as a uint8 (S, S, 3) image and uint8 (S, S) target, S = ``input_size``.

    A sample with a weight gives an (S, S, 2) target: label and weight.
    """
    if view.size > 0:
        img, lab = _cut(sample, view.y0, view.x0, view.size)
    else:
        img, lab = sample.image, sample.target()
    if img.shape[:2] != (input_size, input_size):
        shrink = max(img.shape[:2]) > input_size
        img = cv2.resize(img, (input_size, input_size),
                         interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        lab = cv2.resize(lab, (input_size, input_size), interpolation=cv2.INTER_NEAREST)
    if view.flip:
        img, lab = img[:, ::-1], lab[:, ::-1]
    return img, lab


def view_window(sample: Sample, view: View) -> tuple[int, int, int, int]:
    """(y0, x0, height, width) of the image part a view shows, before it is resized."""
    if view.size > 0:
        return view.y0, view.x0, view.size, view.size
    h, w = sample.label.shape
    return 0, 0, h, w


def render_boxes(sample: Sample, view: View, input_size: int) -> np.ndarray:
    """The view's (S, S) int32 box raster, transformed as :func:`render` transforms the label."""
    r = box_raster(sample.boxes, sample.all_boxed, sample.label.shape,
                   view_window(sample, view), input_size)
    return r[:, ::-1] if view.flip else r


def to_tensors(img: np.ndarray, lab: np.ndarray) -> tuple[torch.Tensor, ...]:
    """uint8 (H, W, 3) / (H, W) arrays to float (3, H, W) in [0, 1] and long (H, W).

    An (H, W, 2) target (label and weight) adds float (H, W) weights in [0, 1].
    """
    # np.require copies only arrays that are views, flipped or read-only (torch needs writable)
    x = torch.from_numpy(np.require(img, requirements=["C", "W"])).permute(2, 0, 1)
    t = torch.from_numpy(np.require(lab, requirements=["C", "W"]))
    if t.ndim == 3:
        return x.float().div_(255.0), t[..., 0].long(), t[..., 1].float().div_(255.0)
    return x.float().div_(255.0), t.long()


def collate(items: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    """Stack ``(image, target[, weight][, box raster])`` items into a batch."""
    return tuple(torch.stack(list(parts)) for parts in zip(*items, strict=True))


def raster_tensor(raster: np.ndarray) -> torch.Tensor:
    """A box raster (maybe a flipped view) as a long tensor."""
    return torch.from_numpy(np.ascontiguousarray(raster)).long()


class FixedViews(torch.utils.data.Dataset):
    """Deterministic views (validation, feature cache); ``with_boxes`` adds the box raster."""

    def __init__(self, samples: dict[str, Sample], views: list[View], input_size: int,
                 with_boxes: bool = False) -> None:
        self.samples, self.views, self.input_size = samples, views, input_size
        self.with_boxes = with_boxes

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        v = self.views[i]
        item = to_tensors(*render(self.samples[v.key], v, self.input_size))
        if self.with_boxes:
            return (*item, raster_tensor(render_boxes(self.samples[v.key], v, self.input_size)))
        return item


class RandomViews(torch.utils.data.Dataset):
    """Augmented training views; item ``i`` uses image ``i % len(keys)``, drawn from ``rng``.

    ``with_boxes``: items are (image, target, box raster).
    """

    def __init__(self, samples: dict[str, Sample], keys: list[str], input_size: int,
                 crop: int = 0, augment: bool = True, length: int | None = None,
                 rng: np.random.Generator | None = None, with_boxes: bool = False) -> None:
        self.samples, self.keys = samples, list(keys)
        self.input_size, self.crop, self.augment = input_size, crop, augment
        self.with_boxes = with_boxes
        self.length = length or len(self.keys)
        self.rng = rng or np.random.default_rng(0)

    def __len__(self) -> int:
        return self.length

    def _window(self, sample: Sample) -> tuple[int, int]:
        h, w = sample.label.shape
        c = self.crop
        if len(sample.boxes):  # box-centred: the crop holds a whole box (where it fits)
            if self.rng.random() < BOX_CENTRED:
                j = int(self.rng.integers(len(sample.boxes)))
                return box_window(sample.boxes[j], (h, w), c, self.rng)
            return (int(self.rng.integers(0, max(h - c, 0) + 1)),
                    int(self.rng.integers(0, max(w - c, 0) + 1)))
        ys, xs = np.nonzero((sample.label > 0) & (sample.label != IGNORE))
        if not len(ys) and sample.label[::8, ::8].min() == IGNORE:
            # a reviewed photo that teaches only where rejected: crops on what it teaches
            ys, xs = np.nonzero(sample.label == 0)
        if len(ys) and self.rng.random() < DEFECT_CENTRED:
            j = int(self.rng.integers(len(ys)))
            y, x = int(ys[j]) - c // 2, int(xs[j]) - c // 2
        else:
            y, x = int(self.rng.integers(0, max(h - c, 0) + 1)), int(
                self.rng.integers(0, max(w - c, 0) + 1))
        return min(max(y, 0), max(h - c, 0)), min(max(x, 0), max(w - c, 0))

    def _jitter(self, x: torch.Tensor) -> torch.Tensor:
        """Mild photometric change: brightness, contrast and saturation within +-10 %."""
        b, c, s = (float(v) for v in self.rng.uniform(0.9, 1.1, size=3))
        mean = x.mean()
        x = (x - mean) * c + mean * b
        grey = x.mean(dim=0, keepdim=True)
        return ((x - grey) * s + grey).clamp_(0.0, 1.0)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        key = self.keys[i % len(self.keys)]
        sample = self.samples[key]
        y0, x0 = self._window(sample) if self.crop > 0 else (0, 0)
        view = View(key, y0, x0, self.crop)
        img, lab = render(sample, view, self.input_size)
        boxes = render_boxes(sample, view, self.input_size) if self.with_boxes else None
        if self.augment:
            if self.rng.random() < 0.5:
                img, lab = img[:, ::-1], lab[:, ::-1]
                boxes = boxes[:, ::-1] if boxes is not None else None
            if self.rng.random() < 0.5:
                img, lab = img[::-1], lab[::-1]
                boxes = boxes[::-1] if boxes is not None else None
        x, *target = to_tensors(img, lab)
        x = self._jitter(x) if self.augment else x
        return (x, *target) if boxes is None else (x, *target, raster_tensor(boxes))


class FeatureCache:
    """Backbone features of fixed views, computed once (frozen mode) and reused every epoch.

    Features are kept on the CPU in float16 (half the memory; they come out of a LayerNorm,
    well inside its range) with the uint8 view and target, and moved per batch. Colour jitter
    cannot apply to cached features: cached training sees crops and horizontal flips only.
    ``with_boxes`` also keeps each view's box raster (:meth:`box_batch`).
    """

    def __init__(self, samples: dict[str, Sample], views: list[View], input_size: int,
                 with_boxes: bool = False) -> None:
        self.views = list(views)
        self.index = {v: i for i, v in enumerate(self.views)}
        self._set = FixedViews(samples, self.views, input_size, with_boxes)
        self.feats: list[torch.Tensor] = []
        self.images = torch.empty(0)
        self.labels = torch.empty(0)
        self.boxes: torch.Tensor | None = None
        self.weights: torch.Tensor | None = None  # uint8 confidence, when the samples have it
        self.with_boxes = with_boxes

    def __len__(self) -> int:
        return len(self.views)

    @torch.no_grad()
    def fill(self, model: torch.nn.Module, device: torch.device, batch_size: int,
             autocast: Callable) -> Iterator[tuple[int, int]]:
        """Encode every view once, yielding (done, total) after each batch.

        The cache is usable only once the generator is exhausted; a caller that stops early
        (to honour a stop request) leaves it empty.
        """
        model.eval()
        chunks: list[list[torch.Tensor]] = []
        images, labels, boxes, weights = [], [], [], []
        n = len(self.views)
        for i in range(0, n, batch_size):
            x, y, *rest = collate([self._set[j] for j in range(i, min(i + batch_size, n))])
            if self.with_boxes:
                boxes.append(rest.pop().to(torch.int32))
            weights.extend(v.mul(255).round_().to(torch.uint8) for v in rest)
            with autocast():
                feats = model.encode(x.to(device))
            chunks.append([f.detach().to("cpu", torch.float16) for f in feats])
            images.append(x.mul(255).round_().to(torch.uint8))
            labels.append(y.to(torch.uint8))
            yield min(i + batch_size, n), n
        self.feats = [torch.cat([c[level] for c in chunks]) for level in range(len(chunks[0]))]
        self.images, self.labels = torch.cat(images), torch.cat(labels)
        self.boxes = torch.cat(boxes) if boxes else None
        self.weights = torch.cat(weights) if weights else None

    def batch(self, idx: list[int], device: torch.device
              ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """(features, images in [0, 1], long targets) of the views ``idx`` on ``device``."""
        t = torch.as_tensor(idx, dtype=torch.long)
        feats = [f[t].to(device).float() for f in self.feats]
        x = self.images[t].to(device).float().div_(255.0)
        return feats, x, self.labels[t].to(device).long()

    def box_batch(self, idx: list[int], device: torch.device) -> torch.Tensor:
        """The long box rasters of the views ``idx`` on ``device`` (cache built with boxes)."""
        if self.boxes is None:
            raise RuntimeError("the feature cache was built without box rasters")
        return self.boxes[torch.as_tensor(idx, dtype=torch.long)].to(device).long()

    def weight_batch(self, idx: list[int], device: torch.device) -> torch.Tensor | None:
        """Float [0, 1] weights of the views ``idx`` on ``device``, or None without any."""
        if self.weights is None:
            return None
        t = torch.as_tensor(idx, dtype=torch.long)
        return self.weights[t].to(device).float().div_(255.0)
