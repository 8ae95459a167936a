"""The YOLO label format: one line per object, coordinates normalised by the image size.

A box is ``cls cx cy w h`` (centre and size); a segmentation polygon is ``cls x1 y1 x2 y2 ...``.
``cls`` is zero-based over the defect classes, i.e. the project class id - 1 (background has
none). A detector's trailing confidence (``cls cx cy w h conf``) is read and ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ml.common.atomic import atomic_write_text
from ml.project.records import Box

CLASSES_FILE = "classes.txt"


def to_yolo_class(class_id: int) -> int:
    """The YOLO index of a project class id."""
    return class_id - 1


def from_yolo_class(cls: int) -> int:
    """The project class id of a YOLO index (the default mapping)."""
    return cls + 1


@dataclass(frozen=True)
class YoloLabel:
    """One parsed line: its YOLO class, normalised box and, for a polygon line, its vertices."""

    cls: int
    cx: float
    cy: float
    w: float
    h: float
    polygon: tuple[float, ...] = ()  # normalised x1 y1 x2 y2 ... of a segmentation line

    def xyxy(self, width: float, height: float) -> tuple[float, float, float, float]:
        """The box in pixels of a ``width`` x ``height`` image."""
        return ((self.cx - self.w / 2) * width, (self.cy - self.h / 2) * height,
                (self.cx + self.w / 2) * width, (self.cy + self.h / 2) * height)


def box_line(class_id: int, xyxy: Sequence[float], width: float, height: float) -> str:
    """``cls cx cy w h`` of a pixel box ``x0, y0, x1, y1`` of project class ``class_id``."""
    x0, y0, x1, y1 = xyxy
    vals = [(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height]
    return f"{to_yolo_class(class_id)} " + " ".join(f"{v:.6f}" for v in vals)


def polygon_line(class_id: int, points: Iterable[Sequence[float]], width: float,
                 height: float) -> str:
    """``cls x1 y1 x2 y2 ...`` of a polygon given as pixel ``(x, y)`` vertices."""
    xy = " ".join(f"{x / width:.6f} {y / height:.6f}" for x, y in points)
    return f"{to_yolo_class(class_id)} {xy}"


def boxes_text(boxes: Iterable[Box], width: float, height: float) -> str:
    """A label file's text: one box line per box, each ending in a newline."""
    return "".join(box_line(b.cls, b.xyxy, width, height) + "\n" for b in boxes)


def parse_line(line: str) -> YoloLabel:
    """A box or polygon line (a polygon also gets its enclosing box); ValueError if neither."""
    parts = line.split()
    if not parts:
        raise ValueError("empty line")
    cls = int(float(parts[0]))
    vals = [float(v) for v in parts[1:]]
    if len(vals) == 4 or len(vals) == 5:  # 5: trailing confidence from detectors
        cx, cy, w, h = vals[:4]
        return YoloLabel(cls, cx, cy, w, h)
    if len(vals) >= 6 and len(vals) % 2 == 0:
        xs, ys = vals[0::2], vals[1::2]
        return YoloLabel(cls, (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2,
                         max(xs) - min(xs), max(ys) - min(ys), tuple(vals))
    raise ValueError(f"expected 'cls cx cy w h', got {len(parts)} fields")


def write_class_names(out_dir: str | Path, defect_names: Sequence[str]) -> None:
    """``classes.txt``: the defect class names, line i = YOLO class i."""
    atomic_write_text(Path(out_dir) / CLASSES_FILE, "\n".join(defect_names) + "\n")


def read_class_names(folder: str | Path, name: str = CLASSES_FILE) -> list[str] | None:
    """The names of ``folder/classes.txt`` (or another names file), line i = YOLO class i;
    None when there is no such file."""
    f = Path(folder) / name
    if not f.is_file():
        return None
    lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
    return [ln.strip() for ln in lines if ln.strip()]
