"""Bring boxes into a project from YOLO txt, COCO JSON, or a folder of ground-truth masks.

Only boxes enter the project: masks given to :func:`import_masks` are reduced to one box per
connected component and then forgotten, so every later result stays box-supervised.

Every importer first reads and checks everything (each bad line or annotation is skipped with
a warning naming it), then applies all boxes in one batch: a failure never leaves half an
import in the project, and a stop request imports nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.common import images as _images
from ml.common.batch import BatchResult
from ml.common.progress import ProgressFn, Reporter, StopFn
from ml.datasets.yolo import from_yolo_class, parse_line
from ml.project.records import box_problem
from ml.project.regions import boxes_from_mask
from ml.project.store import Box, Project, ProjectError

NO_LABELS = "no labels"  # why an image was skipped (ImportResult.skipped values)


@dataclass(frozen=True, kw_only=True)
class ImportResult(BatchResult):
    """Boxes brought in: ``done`` are the images that got labels, ``failed`` unreadable ones."""

    boxes_added: int = 0

    @property
    def images_matched(self) -> int:
        return len(self.done)

    @property
    def images_without_labels(self) -> list[str]:
        return self.skipped_for(NO_LABELS)

    def summary(self) -> str:
        text = (f"{self.boxes_added} boxes on {self.images_matched} images; "
                f"{len(self.images_without_labels)} images without labels; "
                f"{len(self.warnings)} warnings")
        if self.failed:
            text += f"; {len(self.failed)} unreadable images skipped"
        return text + ("; stopped early" if self.stopped else "")


@dataclass
class ImportReport:
    """What an import gathers while it runs; :meth:`result` freezes it."""

    matched: list[str] = field(default_factory=list)
    boxes_added: int = 0
    images_without_labels: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    stopped: bool = False

    def image_size(self, project: Project, key: str) -> tuple[int, int] | None:
        """The photo's size, or None after naming it as failed (labels need the size)."""
        try:
            return project.image_size(key)
        except _images.ImageError as e:
            self.failed[key] = f"unreadable photo, labels skipped ({e.reason})"
            return None

    def result(self, total: int) -> ImportResult:
        return ImportResult(action="images got boxes", total=total, done=tuple(self.matched),
                            failed=dict(self.failed),
                            skipped={k: NO_LABELS for k in self.images_without_labels},
                            stopped=self.stopped, warnings=tuple(self.warnings),
                            boxes_added=self.boxes_added)


def parse_class_map(text: str | None, project: Project) -> dict[int, int] | None:
    """'0:damage,1:dirt' -> {0: id(damage), 1: id(dirt)}; source indices to project class ids."""
    if not text:
        return None
    out: dict[int, int] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            src, name = part.split(":", 1)
            out[int(src)] = project.class_id(name.strip())
        except ValueError as e:
            raise ProjectError(f"bad class map entry '{part}' (want INDEX:CLASS): {e}") from e
    return out


def clip_box(box: Box, width: int, height: int, where: str, report: ImportReport) -> Box | None:
    """The gate every imported box passes: drop non-finite ones, clip the rest to the image,
    drop those left with no area; each drop is a warning naming ``where``."""
    if not all(math.isfinite(v) for v in box.xyxy):
        report.warnings.append(f"{where}: non-finite coordinate in {box.xyxy}; box skipped")
        return None
    x0, x1 = sorted((box.x0, box.x1))
    y0, y1 = sorted((box.y0, box.y1))
    cx0, cy0 = min(max(x0, 0.0), width), min(max(y0, 0.0), height)
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
        report.warnings.append(f"{where}: box clipped to the image")
    out = Box(cx0, cy0, cx1, cy1, box.cls, "imported")
    problem = box_problem(out)  # the store's rule: every box kept here can be stored
    if problem is not None:
        report.warnings.append(f"{where}: zero-area box dropped (it {problem})")
        return None
    return out


def _label_files(project: Project, find: Callable[[str], Path | None], report: ImportReport,
                 progress: ProgressFn | None, should_stop: StopFn | None
                 ) -> Iterator[tuple[str, Path]]:
    """(key, label file) for each image that has one; the others are noted in ``report``."""
    rep = Reporter(len(project.images), progress, should_stop)
    for key in project.keys():
        if rep.stopped():
            report.stopped = True
            return
        rep.step(message=key)
        f = find(key)
        if f is None:
            report.images_without_labels.append(key)
            continue
        yield key, f


def _label_file(labels_dir: Path, key: str) -> Path | None:
    # KEY.txt first: where two photos share a stem, the export gave the later one that name
    rel = Path(key).with_suffix(".txt")
    for cand in (labels_dir / f"{key}.txt", labels_dir / rel, labels_dir / rel.name):
        if cand.is_file():
            return cand
    return None


def import_yolo(project: Project, labels_dir: str | Path, class_map: dict[int, int] | None = None,
                replace: bool = True, progress: ProgressFn | None = None,
                should_stop: StopFn | None = None) -> ImportResult:
    """Read ``labels_dir/STEM.txt`` per image; YOLO class i maps to project class i+1 by default."""
    labels_dir = Path(labels_dir)
    if not labels_dir.is_dir():
        raise ProjectError(f"{labels_dir}: labels folder not found")
    report = ImportReport()
    found: dict[str, list[Box]] = {}
    for key, f in _label_files(project, lambda k: _label_file(labels_dir, k), report,
                               progress, should_stop):
        size = report.image_size(project, key)
        if size is None:
            continue
        try:
            lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as e:
            report.warnings.append(f"{f.name}: unreadable, skipped ({e})")
            continue
        found[key] = [b for n, line in enumerate(lines, 1)
                      if (b := _yolo_box(line, f"{f.name}:{n}", *size, class_map,
                                         project.num_classes, report)) is not None]
    _apply(project, found, replace, report, _was_stopped(should_stop))
    return report.result(len(project.images))


def _yolo_box(line: str, where: str, width: int, height: int, class_map: dict[int, int] | None,
              num_classes: int, report: ImportReport) -> Box | None:
    """One YOLO line as a checked box in pixels, or None (with a warning unless blank)."""
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    try:
        lab = parse_line(line)
    except (ValueError, OverflowError) as e:  # Overflow: int(float("inf")) as a class
        report.warnings.append(f"{where}: malformed line skipped ({e})")
        return None
    cid = class_map.get(lab.cls) if class_map is not None else from_yolo_class(lab.cls)
    if cid is None or not 0 < cid < num_classes:
        report.warnings.append(f"{where}: unknown class {lab.cls} skipped")
        return None
    return clip_box(Box(*lab.xyxy(width, height), cid), width, height, where, report)


def _was_stopped(should_stop: StopFn | None) -> bool:
    return should_stop is not None and bool(should_stop())


def _apply(project: Project, found: dict[str, list[Box]], replace: bool, report: ImportReport,
           stopped: bool = False) -> None:
    """Store every photo's checked boxes in one batch; nothing when the caller stopped."""
    if stopped:
        report.stopped = True
        report.warnings.append("stopped before the end: nothing imported")
        return
    if found:
        project.auto_backup("import")  # a bulk change: the state before it can come back
    with project.batch():  # one transaction: the whole import lands, or (killed) none of it
        for key, boxes in found.items():
            report.matched.append(key)
            report.boxes_added += len(boxes)
            old = project.record(key).boxes
            # a re-import replaces imported boxes; boxes a person drew survive it
            keep = [b for b in old if b.source == "manual"] if replace else list(old)
            project.set_boxes(key, keep + boxes)


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
    _apply(project, found, replace, report, rep.stopped())
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


def read_dataset_classes(masks_dir: Path) -> list[str] | None:
    """Class names (index = pixel value) from a ``dataset.json`` beside or above the masks."""
    for cand in (masks_dir / "dataset.json", masks_dir.parent / "dataset.json"):
        if cand.is_file():
            try:
                classes = json.loads(cand.read_text(encoding="utf-8")).get("classes")
            except (OSError, json.JSONDecodeError) as e:
                raise ProjectError(f"{cand}: unreadable ({e})") from e
            if isinstance(classes, list):
                return [str(c) for c in classes]
    return None


def import_masks(project: Project, masks_dir: str | Path, pad: int = 0, replace: bool = True,
                 progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None) -> ImportResult:
    """Boxes from ground-truth class-id masks (same stems); the masks never enter the project."""
    masks_dir = Path(masks_dir)
    if not masks_dir.is_dir():
        raise ProjectError(f"{masks_dir}: masks folder not found")
    names = read_dataset_classes(masks_dir)
    lut: dict[int, int] | None = None
    if names is not None:
        lut = {}
        for value, name in enumerate(names):
            if value == 0:
                continue
            if name not in project.class_names():
                raise ProjectError(f"mask class '{name}' is not a project class "
                                   f"({', '.join(project.class_names())}); create the project "
                                   f"with --classes {','.join(names[1:])}")
            lut[value] = project.class_id(name)
    report = ImportReport()
    found: dict[str, list[Box]] = {}
    for key, f in _label_files(project, lambda k: _images.label_file(masks_dir, k), report,
                               progress, should_stop):
        try:
            label = _images.load_label(f)
        except _images.ImageError as e:
            report.failed[key] = f"unreadable mask ({e.reason})"
            continue
        size = report.image_size(project, key)
        if size is None:
            continue
        if label.shape != size[::-1]:
            report.warnings.append(f"{f.name}: mask size {label.shape[::-1]} differs from "
                                   f"image {size}; skipped")
            continue
        boxes = []
        for b in boxes_from_mask(label, pad):
            cid = lut.get(b.cls) if lut is not None else b.cls
            if cid is None or not 0 < cid < project.num_classes:
                report.warnings.append(f"{f.name}: unknown mask value {b.cls} skipped")
                continue
            b.cls = cid
            checked = clip_box(b, label.shape[1], label.shape[0], f.name, report)
            if checked is not None:
                boxes.append(checked)
        found[key] = boxes
    _apply(project, found, replace, report, _was_stopped(should_stop))
    return report.result(len(project.images))
