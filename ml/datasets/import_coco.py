"""Boxes from a COCO JSON file (images, categories, annotations with ``bbox``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.common.progress import ProgressFn, Reporter, StopFn
from ml.datasets.import_common import (
    ImportReport,
    ImportResult,
    apply_boxes,
    clip_box,
)
from ml.project.store import Box, Project, ProjectError


def import_coco(project: Project, coco_file: str | Path, replace: bool = True,
                progress: ProgressFn | None = None,
                should_stop: StopFn | None = None) -> ImportResult:
    """Boxes from a COCO JSON (``bbox``, or the extent of ``segmentation`` where bbox is absent)."""
    coco_file = Path(coco_file)
    data = _read_coco(coco_file)
    report = ImportReport()
    cats = _coco_names(data.get("categories", []), "name", f"{coco_file.name}: category", report)
    imgs = _coco_names(data["images"], "file_name", f"{coco_file.name}: image", report)
    by_image = _coco_annotations(data.get("annotations", []), coco_file.name, report)
    names = set(project.class_names())
    found: dict[str, list[Box]] = {}
    rep = Reporter(len(imgs), progress, should_stop)
    for img_id, fname in imgs.items():
        if rep.stopped():
            break
        rep.step(message=fname)
        key = project.find_key(fname)
        if key is None:
            report.warnings.append(f"{fname}: no such image in the project")
            continue
        size = report.image_size(project, key)
        if size is None:
            continue
        width, height = size
        boxes = found.setdefault(key, [])
        for ann in by_image.get(img_id, []):
            name = cats.get(ann.category_id)
            if name is None or name not in names or name == "background":
                report.warnings.append(f"{ann.where}: unknown category {name!r} skipped")
                continue
            x, y, w, h = ann.xywh
            b = clip_box(Box(x, y, x + w, y + h, project.class_id(name)), width, height,
                         ann.where, report)
            if b is not None:
                boxes.append(b)
    apply_boxes(project, found, replace, report, rep.stopped())
    report.images_without_labels += [k for k in project.keys()
                                     if k not in found and k not in report.failed]
    return report.result(len(project.images))


def _read_coco(coco_file: Path) -> dict:
    """The parsed file; refused whole when it is not JSON shaped like COCO."""
    try:
        data = json.loads(coco_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # ValueError: bad JSON or bad UTF-8
        raise ProjectError(f"{coco_file}: not a readable COCO file ({e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not all(
            isinstance(data.get(k, []), list) for k in ("annotations", "categories")):
        raise ProjectError(f"{coco_file}: not a readable COCO file (want an object whose "
                           "'images', 'annotations' and 'categories' are lists)")
    return data


def _coco_names(entries: list, name_field: str, what: str, report: ImportReport
                ) -> dict[int, str]:
    """id -> ``name_field`` of each well-formed entry; the others are skipped with a warning."""
    out: dict[int, str] = {}
    for n, e in enumerate(entries):
        try:
            out[int(e["id"])] = str(e[name_field])
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            report.warnings.append(f"{what} #{n}: malformed ({err!r}), skipped")
    return out


@dataclass(frozen=True)
class _CocoAnnotation:
    where: str  # file and annotation id, for warnings
    category_id: int
    xywh: tuple[float, float, float, float]


def _coco_annotations(anns: list, file_name: str, report: ImportReport
                      ) -> dict[int, list[_CocoAnnotation]]:
    """Readable annotations by image id; each unreadable one is skipped with its id named."""
    out: dict[int, list[_CocoAnnotation]] = {}
    for n, a in enumerate(anns):
        ann_id = a.get("id", f"#{n}") if isinstance(a, dict) else f"#{n}"
        where = f"{file_name}: annotation {ann_id}"
        try:
            if not isinstance(a, dict):
                raise TypeError(f"not an object but {type(a).__name__}")
            img_id, cat_id = int(a["image_id"]), int(a.get("category_id", -1))
            xywh = _coco_bbox(a)
        except (KeyError, TypeError, ValueError, IndexError, OverflowError) as e:
            report.warnings.append(f"{where}: malformed, skipped ({e})")
            continue
        if xywh is None:
            report.warnings.append(f"{where}: no usable bbox or segmentation, skipped")
            continue
        out.setdefault(img_id, []).append(_CocoAnnotation(where, cat_id, xywh))
    return out


def _coco_bbox(a: dict) -> tuple[float, float, float, float] | None:
    """x, y, w, h from ``bbox`` or the segmentation's extent; raises on non-numbers."""
    bbox = a.get("bbox")
    if isinstance(bbox, list) and len(bbox) == 4:
        x, y, w, h = (float(v) for v in bbox)
        return x, y, w, h
    seg = a.get("segmentation")
    if isinstance(seg, list) and seg:
        polys = [np.asarray(p, dtype=float).reshape(-1, 2) for p in seg if len(p) >= 6]
        if not polys:
            return None
        pts = np.concatenate(polys)
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        return float(x0), float(y0), float(x1 - x0), float(y1 - y0)
    if isinstance(seg, dict) and "counts" in seg:
        from pycocotools import mask as mask_utils

        rle = seg if not isinstance(seg["counts"], list) else \
            mask_utils.frPyObjects(seg, *seg["size"])
        x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
        return x, y, w, h
    return None
