"""Boxes from a folder of ground-truth masks: one box per connected component, the mask
itself forgotten."""

from __future__ import annotations

import json
from pathlib import Path

from ml.common import images as _images
from ml.common.progress import ProgressFn, StopFn
from ml.datasets.import_common import (
    ImportReport,
    ImportResult,
    apply_boxes,
    clip_box,
    label_files,
    was_stopped,
)
from ml.project.regions import boxes_from_mask
from ml.project.store import Box, Project, ProjectError


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
    for key, f in label_files(project, lambda k: _images.label_file(masks_dir, k), report,
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
    apply_boxes(project, found, replace, report, was_stopped(should_stop))
    return report.result(len(project.images))
