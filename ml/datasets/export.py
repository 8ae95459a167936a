"""Export a project's masks as label PNGs, COCO JSON, or YOLO segmentation / box labels.

All outputs are at the image's full resolution in its *displayed* orientation, i.e. after the
EXIF orientation tag is applied (that is how masks are stored and how every viewer shows the
photo). Output names keep the image's subfolders and stem: ``T01/A/LE/img_0042.jpg`` gives
``OUT/T01/A/LE/img_0042.png`` (png), ``OUT/T01/A/LE/img_0042.txt`` (yolo); where two photos
would share a file (same stem in one folder, or a stem ending like another's ``_color``), the
later keeps its extension (``img_0042.jpg.png``): see :class:`ml.common.outnames.OutputNames`.

Formats:

* ``png``: ``NAME.png`` (grey, pixel = class id) and ``NAME_color.png`` (class colours), plus
  ``dataset.json`` with the class names (index = pixel value).
* ``coco``: one annotation per connected defect region (:mod:`ml.project.regions`):
  ``segmentation`` is the exact RLE (pycocotools, ``counts`` as str); ``polygon`` holds the
  outer contours (cv2); plus ``bbox``, ``area``, ``score`` (mean student confidence, 1.0
  without one), ``source`` (teacher | edited | student) and ``region_id``. ``OUT`` is the
  JSON file (or a folder, then ``OUT/annotations.json``).
* ``yolo-seg``: ``cls x1 y1 x2 y2 ...`` per region, coordinates / image size, ``cls`` =
  class id - 1; holes inside a region are not representable and get filled.
* ``yolo``: ``cls cx cy w h`` per region. Both YOLO formats write the dataset Ultralytics
  trains from (:mod:`ml.datasets.yolo_dataset`): ``images/{train,val}/NAME.EXT`` (the photos, linked
  or copied), ``labels/{train,val}/NAME.txt``, ``data.yaml`` and ``classes.txt``; the split is
  the project's train/val split (:mod:`ml.project.split`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml import __version__
from ml.common import images as _images
from ml.common.atomic import atomic_write_bytes, atomic_write_json
from ml.common.batch import BatchResult
from ml.common.images import fit_to_record
from ml.common.outnames import OutputNames
from ml.common.progress import ProgressFn, Reporter, StopFn
from ml.datasets import yolo
from ml.datasets import yolo_dataset as _yolo_dataset
from ml.project.masks import SourceMask, check_source, mask_for
from ml.project.regions import Region, RegionSet, find_regions
from ml.project.store import Project, ProjectError

FORMATS = ("png", "coco", "yolo-seg", "yolo")


@dataclass(frozen=True, kw_only=True)
class ExportSummary(BatchResult):
    """An export: ``done`` images written, ``skipped`` those without a ``source`` mask."""

    fmt: str
    source: str
    out: Path
    regions: int = 0
    split: Mapping[str, int] = field(default_factory=dict)  # yolo: photos per split
    photos: Mapping[str, int] = field(default_factory=dict)  # yolo: how photos were placed

    @property
    def exported(self) -> int:
        return len(self.done)

    def summary(self) -> str:
        stop = " (stopped early)" if self.stopped else ""
        failed = f"; {len(self.failed)} failed" if self.failed else ""
        split = ""
        if self.split:
            how = ", ".join(f"{n} {k}" for k, n in sorted(self.photos.items()))
            split = (f" ({self.split.get('train', 0)} train, {self.split.get('val', 0)} val"
                     f"{'; photos: ' + how if how else ''})")
        return (f"{self.exported} images, {self.regions} regions exported as {self.fmt} to "
                f"{self.out}{split}; {len(self.skipped)} without a {self.source} mask skipped"
                f"{failed}{stop}")


def contours(mask: np.ndarray, offset: tuple[int, int] = (0, 0)) -> list[np.ndarray]:
    """Outer contours of a boolean mask as (N, 2) int pixel coordinates, N >= 3."""
    import cv2

    found, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in found:
        pts = c.reshape(-1, 2) + np.array(offset)
        if len(pts) < 3:  # a line or a dot: trace its pixel extent instead
            x0, y0 = pts.min(axis=0)
            x1, y1 = pts.max(axis=0)
            pts = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        out.append(pts)
    return out


def region_polygons(regions: RegionSet, r: Region) -> list[np.ndarray]:
    """Outer contours of one region (computed on its bbox crop, then shifted)."""
    x0, y0, x1, y1 = r.bbox
    crop = regions.components[r.cls][y0:y1, x0:x1] == r.label
    return contours(crop, (x0, y0))


def rle_encode(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a boolean mask, ``counts`` as str (JSON-ready)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _with(rel: Path, ending: str) -> Path:
    # not with_suffix: a stem like "img.v2" must keep its dot
    return rel.parent / (rel.name + ending)


def _write_png(project: Project, out: Path, rel: Path, label: np.ndarray) -> None:
    _images.save_label(out / _with(rel, ".png"), label)
    lut = np.zeros((256, 3), np.uint8)
    for i, rgb in enumerate(project.palette()):
        lut[i] = rgb
    atomic_write_bytes(out / _with(rel, "_color.png"), _images.encode_png(lut[label]))


def _coco_annotations(regions: RegionSet, image_id: int, origin: str,
                      first_id: int) -> list[dict]:
    anns = []
    for n, r in enumerate(regions, start=first_id):
        polys = [[float(v) for v in p.reshape(-1)] for p in region_polygons(regions, r)]
        anns.append({"id": n, "image_id": image_id, "category_id": r.cls,
                     "segmentation": rle_encode(regions.mask(r)), "polygon": polys,
                     "area": r.area, "bbox": [float(v) for v in r.xywh], "iscrowd": 0,
                     "score": round(r.confidence, 4) if r.confidence is not None else 1.0,
                     "source": origin, "region_id": r.id})
    return anns


def _yolo_lines(regions: RegionSet, fmt: str) -> list[str]:
    h, w = regions.shape
    lines = []
    for r in regions:
        if fmt == "yolo":
            lines.append(yolo.box_line(r.cls, r.bbox, w, h))
            continue
        lines += [yolo.polygon_line(r.cls, poly, w, h) for poly in region_polygons(regions, r)]
    return lines


def _coco_document(project: Project, source: str, images: list[dict], anns: list[dict]) -> dict:
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    cats = [{"id": c.id, "name": c.name, "supercategory": "defect", "color": c.color}
            for c in sorted(project.classes, key=lambda c: c.id) if c.id > 0]
    return {"info": {"description": f"{project.name}: {source} masks",
                     "version": __version__, "date_created": now,
                     "contributor": "Boxes2Pixels Inspector"},
            "licenses": [], "images": images, "annotations": anns, "categories": cats}


class _Writer:
    """Where one export's files go: label PNGs, a COCO document, or a YOLO dataset."""

    def __init__(self, project: Project, fmt: str, source: str, out: Path,
                 yolo_dataset: _yolo_dataset.YoloDatasetWriter | None) -> None:
        self.project, self.fmt, self.source, self.out = project, fmt, source, out
        self.yolo = yolo_dataset
        self.names = OutputNames((".png", "_color.png"), reserved=("dataset.json",))
        self.images: list[dict] = []
        self.anns: list[dict] = []
        self.regions = 0

    def add(self, key: str, sm: SourceMask) -> None:
        """Write one photo's mask; ImageError for an unreadable photo, OSError for a write."""
        width, height = self.project.image_size(key)  # unreadable since its mask was made?
        label = fit_to_record(sm.label, width, height)
        conf = fit_to_record(sm.confidence, width, height) \
            if sm.confidence is not None else None
        if self.fmt == "png":
            _write_png(self.project, self.out, self.names(key), label)
            return
        regions = find_regions(label, conf)
        self.regions += len(regions)
        if self.fmt == "coco":
            rec = self.project.record(key)
            image_id = len(self.images) + 1
            self.images.append({"id": image_id, "file_name": key, "width": label.shape[1],
                                "height": label.shape[0], "b2p_meta": rec.meta,
                                "b2p_reviewed": rec.reviewed})
            self.anns += _coco_annotations(regions, image_id, sm.origin, len(self.anns) + 1)
        else:
            self.yolo.add(key, _yolo_lines(regions, self.fmt))

    def finish(self, split_note: str) -> None:
        if self.fmt == "png":
            atomic_write_json(self.out / "dataset.json",
                              {"classes": self.project.class_names(),
                               "palette": self.project.palette()})
        elif self.fmt == "coco":
            atomic_write_json(self.out, _coco_document(self.project, self.source, self.images,
                                                       self.anns))
        else:
            self.yolo.finish(self.source, split_note)


def export_masks(project: Project, fmt: str, source: str, out: str | Path,
                 progress: ProgressFn | None = None, should_stop: StopFn | None = None, *,
                 val_fraction: float = 0.2, seed: int = 0,
                 copy_images: bool = False) -> ExportSummary:
    """Write the ``source`` masks of every image as ``fmt`` under ``out``; see module docs.

    The YOLO formats split the photos by the project's train/val split (drawn with
    ``val_fraction`` and ``seed`` and saved when it has none) and hard-link the photos, or copy
    them with ``copy_images``.
    """
    if fmt not in FORMATS:
        raise ProjectError(f"unknown export format '{fmt}' ({', '.join(FORMATS)})")
    check_source(source)
    out = Path(out)
    dataset, split_note = None, ""
    if fmt == "coco":
        out = out if out.suffix.lower() == ".json" else out / "annotations.json"
    elif fmt == "png" and out.is_file():
        raise ProjectError(f"{out}: is a file; give a folder for {fmt} export")
    else:
        _yolo_dataset.check_folder(project, out)  # before a split is drawn and saved
        val, split_note = _yolo_dataset.plan_split(project, source, val_fraction, seed)
        dataset = _yolo_dataset.YoloDatasetWriter(project, out, val, copy_images)
    writer = _Writer(project, fmt, source, out, dataset)
    keys = project.keys()
    done: list[str] = []
    failed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    stopped = False
    rep = Reporter(len(keys), progress, should_stop)
    for key in keys:
        if rep.stopped():
            stopped = True
            break
        rep.step(message=key)
        try:
            sm = mask_for(project, key, source, decisions=True)
        except _images.ImageError as e:
            failed[key] = f"damaged mask file ({e})"
            continue
        if sm is None:  # unreadable photos never get one, so they end here too
            skipped[key] = f"no {source} mask"
            continue
        try:
            writer.add(key, sm)
        except _images.ImageError as e:
            failed[key] = e.reason
            continue
        except OSError as e:
            failed[key] = f"could not write its files ({e})"
            continue
        done.append(key)
    writer.finish(split_note)
    return ExportSummary(action="exported", total=len(keys), done=tuple(done), failed=failed,
                         skipped=skipped, stopped=stopped, fmt=fmt, source=source, out=out,
                         regions=writer.regions,
                         split=dict(dataset.counts) if dataset else {},
                         photos=dict(dataset.photos) if dataset else {})
