"""What every importer shares: the result, the report of skipped lines, class maps, clipping,
and applying the boxes found in one batch (all land, or none)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ml.common import images as _images
from ml.common.batch import BatchResult
from ml.common.progress import ProgressFn, Reporter, StopFn
from ml.project.records import box_problem
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


def label_files(project: Project, find: Callable[[str], Path | None], report: ImportReport,
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


def was_stopped(should_stop: StopFn | None) -> bool:
    return should_stop is not None and bool(should_stop())


def apply_boxes(project: Project, found: dict[str, list[Box]], replace: bool, report: ImportReport,
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
