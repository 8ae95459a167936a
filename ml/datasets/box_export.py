"""Write a project's boxes back out as YOLO txt files or a COCO JSON."""

from __future__ import annotations

from pathlib import Path

from ml.common.atomic import atomic_write_json, atomic_write_text
from ml.common.outnames import OutputNames
from ml.datasets.yolo import CLASSES_FILE, boxes_text, write_class_names
from ml.project.store import Project


def export_boxes_yolo(project: Project, out_dir: str | Path) -> int:
    """One ``STEM.txt`` per boxed image (subfolders kept) plus ``classes.txt``; returns files.

    A photo whose stem another one already took keeps its extension (``a.jpg.txt``).
    """
    out_dir = Path(out_dir)
    names = OutputNames((".txt",), reserved=(CLASSES_FILE,))
    n = 0
    for key in project.keys():
        rec = project.record(key)
        if not rec.boxes or not rec.width:
            continue
        atomic_write_text(out_dir / f"{names(key)}.txt",
                          boxes_text(rec.boxes, rec.width, rec.height))
        n += 1
    write_class_names(out_dir, project.class_names()[1:])
    return n


def export_boxes_coco(project: Project, out_file: str | Path) -> int:
    """A COCO detection JSON of all boxes; returns the number of annotations."""
    images, anns = [], []
    for img_id, key in enumerate(project.keys(), start=1):
        rec = project.record(key)
        images.append({"id": img_id, "file_name": key, "width": rec.width, "height": rec.height})
        for b in rec.boxes:
            w, h = b.x1 - b.x0, b.y1 - b.y0
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": b.cls,
                         "bbox": [b.x0, b.y0, w, h], "area": w * h, "iscrowd": 0})
    cats = [{"id": c.id, "name": c.name} for c in project.classes if c.id > 0]
    atomic_write_json(out_file, {"images": images, "annotations": anns, "categories": cats})
    return len(anns)
