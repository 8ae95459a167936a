"""Boxes from YOLO txt files (one per photo, ``cls cx cy w h`` normalised)."""

from __future__ import annotations

from pathlib import Path

from ml.common.progress import ProgressFn, StopFn
from ml.datasets.import_common import (
    ImportReport,
    ImportResult,
    apply_boxes,
    clip_box,
    label_files,
    was_stopped,
)
from ml.datasets.yolo import from_yolo_class, parse_line
from ml.project.store import Box, Project, ProjectError


def yolo_label_file(labels_dir: Path, key: str) -> Path | None:
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
    for key, f in label_files(project, lambda k: yolo_label_file(labels_dir, k), report,
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
    apply_boxes(project, found, replace, report, was_stopped(should_stop))
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
