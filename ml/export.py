"""Export a project's masks as label PNGs, COCO JSON, or YOLO segmentation / box labels.

All outputs are at the image's full resolution in its *displayed* orientation, i.e. after the
EXIF orientation tag is applied (that is how masks are stored and how every viewer shows the
photo). Output names keep the image's subfolders and stem: ``T01/A/LE/img_0042.jpg`` gives
``OUT/T01/A/LE/img_0042.png`` (png), ``OUT/T01/A/LE/img_0042.txt`` (yolo); where two photos
would share a file (same stem in one folder, or a stem ending like another's ``_color``), the
later keeps its extension (``img_0042.jpg.png``): see :class:`ml.outnames.OutputNames`.

Formats:

* ``png``: ``NAME.png`` (grey, pixel = class id) and ``NAME_color.png`` (class colours), plus
  ``dataset.json`` with the class names (index = pixel value).
* ``coco``: one annotation per connected defect region (:mod:`ml.regions`):
  ``segmentation`` is the exact RLE (pycocotools, ``counts`` as str); ``polygon`` holds the
  outer contours (cv2); plus ``bbox``, ``area``, ``score`` (mean student confidence, 1.0
  without one), ``source`` (teacher | edited | student) and ``region_id``. ``OUT`` is the
  JSON file (or a folder, then ``OUT/annotations.json``).
* ``yolo-seg``: ``cls x1 y1 x2 y2 ...`` per region, coordinates / image size, ``cls`` =
  class id - 1; holes inside a region are not representable and get filled.
* ``yolo``: ``cls cx cy w h`` per region. Both YOLO formats add ``classes.txt`` and
  ``data.yaml``; the photos are not copied.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__, yolo
from . import images as _images
from ._atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from .batch import BatchResult
from .outnames import OutputNames
from .progress import ProgressFn, Reporter, StopFn
from .regions import SOURCES, Region, RegionSet, find_regions, mask_for
from .store import Project, ProjectError

FORMATS = ("png", "coco", "yolo-seg", "yolo")


@dataclass(frozen=True, kw_only=True)
class ExportSummary(BatchResult):
    """An export: ``done`` images written, ``skipped`` those without a ``source`` mask."""

    fmt: str
    source: str
    out: Path
    regions: int = 0

    @property
    def exported(self) -> int:
        return len(self.done)

    def summary(self) -> str:
        stop = " (stopped early)" if self.stopped else ""
        failed = f"; {len(self.failed)} failed" if self.failed else ""
        return (f"{self.exported} images, {self.regions} regions exported as {self.fmt} to "
                f"{self.out}; {len(self.skipped)} without a {self.source} mask skipped"
                f"{failed}{stop}")


def fit_to_record(label: np.ndarray, width: int, height: int) -> np.ndarray:
    """The label map at the image's recorded size (nearest neighbour if it differs)."""
    if not width or not height or label.shape == (height, width):
        return label
    import cv2

    return cv2.resize(label, (width, height), interpolation=cv2.INTER_NEAREST)


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


def _write_yolo_names(project: Project, out: Path) -> None:
    names = project.class_names()[1:]
    yolo.write_class_names(out, names)
    yaml = [f"# YOLO labels written by b2p {__version__}; cls = project class id - 1.",
            f"# The photos stay in {json.dumps(str(project.image_root))}.",
            f"path: {json.dumps(str(out))}", f"nc: {len(names)}", "names:"]
    yaml += [f"  {i}: {json.dumps(n)}" for i, n in enumerate(names)]
    atomic_write_text(out / "data.yaml", "\n".join(yaml) + "\n")


def _coco_document(project: Project, source: str, images: list[dict], anns: list[dict]) -> dict:
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    cats = [{"id": c.id, "name": c.name, "supercategory": "defect", "color": c.color}
            for c in sorted(project.classes, key=lambda c: c.id) if c.id > 0]
    return {"info": {"description": f"{project.name}: {source} masks",
                     "version": __version__, "date_created": now,
                     "contributor": "Boxes2Pixels Inspector"},
            "licenses": [], "images": images, "annotations": anns, "categories": cats}


def export_masks(project: Project, fmt: str, source: str, out: str | Path,
                 progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None) -> ExportSummary:
    """Write the ``source`` masks of every image as ``fmt`` under ``out``; see module docs."""
    if fmt not in FORMATS:
        raise ProjectError(f"unknown export format '{fmt}' ({', '.join(FORMATS)})")
    if source not in SOURCES:
        raise ProjectError(f"unknown mask source '{source}' ({', '.join(SOURCES)})")
    out = Path(out)
    coco_file = None
    if fmt == "coco":
        coco_file = out if out.suffix.lower() == ".json" else out / "annotations.json"
    elif out.is_file():
        raise ProjectError(f"{out}: is a file; give a folder for {fmt} export")
    endings = (".png", "_color.png") if fmt == "png" else (".txt",)
    names = OutputNames(endings, reserved=("dataset.json", "classes.txt", "data.yaml"))
    images: list[dict] = []
    anns: list[dict] = []
    keys = project.keys()
    done: list[str] = []
    failed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    n_regions, stopped = 0, False
    rep = Reporter(len(keys), progress, should_stop)
    for key in keys:
        if rep.stopped():
            stopped = True
            break
        rep.step(message=key)
        try:
            sm = mask_for(project, key, source)
        except _images.ImageError as e:
            failed[key] = f"damaged mask file ({e})"
            continue
        if sm is None:  # unreadable photos never get one, so they end here too
            skipped[key] = f"no {source} mask"
            continue
        try:
            width, height = project.image_size(key)
        except _images.ImageError as e:  # unreadable since its mask was made
            failed[key] = e.reason
            continue
        rec = project.record(key)
        label = fit_to_record(sm.label, width, height)
        conf = fit_to_record(sm.confidence, width, height) \
            if sm.confidence is not None else None
        rel = names(key)
        done.append(key)
        if fmt == "png":
            _write_png(project, out, rel, label)
            continue
        regions = find_regions(label, conf)
        n_regions += len(regions)
        if fmt == "coco":
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": key, "width": label.shape[1],
                           "height": label.shape[0], "b2p_meta": rec.meta,
                           "b2p_reviewed": rec.reviewed})
            anns += _coco_annotations(regions, image_id, sm.origin, len(anns) + 1)
        else:
            lines = _yolo_lines(regions, fmt)
            atomic_write_text(out / _with(rel, ".txt"), "".join(f"{s}\n" for s in lines))
    if fmt == "png":
        atomic_write_json(out / "dataset.json", {"classes": project.class_names(),
                                                 "palette": project.palette()})
    elif fmt == "coco":
        atomic_write_json(coco_file, _coco_document(project, source, images, anns))
    else:
        _write_yolo_names(project, out)
    return ExportSummary(action="exported", total=len(keys), done=tuple(done), failed=failed,
                         skipped=skipped, stopped=stopped, fmt=fmt, source=source,
                         out=coco_file or out, regions=n_regions)
