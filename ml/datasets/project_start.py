"""Start a project over a folder of photos, with the box labels found beside them.

:func:`find_labels` looks where datasets usually keep boxes: YOLO ``.txt`` files named like the
photos (in the photo folder, ``labels/`` inside it or beside it, or the ``labels`` twin of an
``images`` folder) and COCO JSON files (in the photo folder or its parent). :func:`start_project`
creates the project the way ``b2p init`` does (``Project.create``), with the label set's class
names when it has them, and imports the labels through ``ml.datasets.importers`` as ``b2p import``
does. The GUI's "Open folder" and ``b2p init --import-found`` both call it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ml.common.classes import BACKGROUND, DEFAULT_CLASSES, make_classes
from ml.common.images import list_images
from ml.common.progress import ProgressFn, StopFn
from ml.datasets import importers
from ml.datasets.importers import yolo_label_file
from ml.datasets.yolo import CLASSES_FILE, read_class_names
from ml.datasets.yolo_dataset import DATA_YAML
from ml.project.store import INDEX_NAME, Project, ProjectError

COCO_SNIFF_BYTES = 1 << 20  # a COCO file names "images" and "file_name" near its start
YOLO_NAME_FILES = (CLASSES_FILE, "obj.names")  # darknet's name for it


@dataclass(frozen=True)
class FoundLabels:
    """One set of labels beside the photos: ``kind`` "yolo" (a folder) or "coco" (a file)."""

    kind: str
    path: Path
    files: int = 1  # YOLO: label files named like a photo

    def describe(self) -> str:
        if self.kind == "yolo":
            return f"YOLO labels in {self.path} ({self.files} files)"
        return f"COCO labels in {self.path}"


@dataclass(frozen=True)
class StartedProject:
    """What :func:`start_project` made: the project folder, its classes, the import's result."""

    root: Path
    classes: tuple[str, ...]
    labels: FoundLabels | None = None
    imported: importers.ImportResult | None = None

    def summary(self) -> str:
        text = f"project {self.root}; classes {', '.join(self.classes)}"
        if self.imported is not None and self.labels is not None:
            text += f"; from {self.labels.describe()}: {self.imported.summary()}"
        return text


def find_labels(photos: str | Path) -> list[FoundLabels]:
    """Label sets beside the photos of ``photos``, the likeliest first (COCO, then YOLO)."""
    photos = Path(photos).resolve()
    keys = [p.relative_to(photos).as_posix() for p in list_images(photos)]
    if not keys:
        return []
    return _coco_files(photos) + _yolo_folders(photos, keys)


def _yolo_folders(photos: Path, keys: list[str]) -> list[FoundLabels]:
    cands = [photos, photos / "labels", photos.parent / "labels"]
    parts = photos.parts
    if "images" in parts:  # dataset/images/train -> dataset/labels/train
        i = len(parts) - 1 - parts[::-1].index("images")
        cands.append(Path(*parts[:i], "labels", *parts[i + 1:]))
    out, seen = [], set()
    for d in cands:
        if d in seen or not d.is_dir():
            continue
        seen.add(d)
        n = sum(1 for k in keys if yolo_label_file(d, k) is not None)  # the importer's own rule
        if n:
            out.append(FoundLabels("yolo", d, n))
    return out


def _coco_files(photos: Path) -> list[FoundLabels]:
    out = []
    for d in (photos, photos / "annotations", photos.parent, photos.parent / "annotations"):
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.json")):
            if f.name != INDEX_NAME and _looks_like_coco(f):
                out.append(FoundLabels("coco", f))
    return out


def _looks_like_coco(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(COCO_SNIFF_BYTES)
    except OSError:
        return False
    return b'"images"' in head and b'"file_name"' in head


def label_class_names(found: FoundLabels) -> list[str] | None:
    """The defect class names the label set declares (in class order), or None."""
    if found.kind == "coco":
        try:
            data = json.loads(found.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ProjectError(f"{found.path}: not a readable COCO file ({e})") from e
        cats = data.get("categories") if isinstance(data, dict) else None
        if not isinstance(cats, list):
            return None
        ordered = sorted((c for c in cats if isinstance(c, dict) and "name" in c),
                         key=lambda c: (c.get("id", 0) if isinstance(c.get("id"), int) else 0))
        names = [str(c["name"]) for c in ordered if str(c["name"]) != BACKGROUND]
        return _unique(names)
    return _yolo_names(found.path)


def _yolo_names(labels_dir: Path) -> list[str] | None:
    """Names from classes.txt, obj.names or data.yaml in the labels folder or up to two folders
    above it (``dataset/labels/train`` keeps them in ``dataset``)."""
    for d in (labels_dir, labels_dir.parent, labels_dir.parent.parent):
        for name in YOLO_NAME_FILES:
            names = read_class_names(d, name)
            if names is not None:
                return _unique(names)
        if (d / DATA_YAML).is_file():
            return _yaml_names(d / DATA_YAML)
    return None


def _yaml_names(path: Path) -> list[str] | None:
    """``names`` of an Ultralytics data.yaml (a list or an index mapping); None without PyYAML."""
    try:
        import yaml
    except ImportError:  # optional: the default classes are used instead
        return None
    try:
        names = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("names")
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return None
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    return _unique([str(n) for n in names]) if isinstance(names, list) else None


def _unique(names: list[str]) -> list[str] | None:
    """The names when they make valid classes, else None (the defaults are used)."""
    names = [n.strip() for n in names if n.strip()]
    if not names or len(set(names)) != len(names) or BACKGROUND in names:
        return None
    return names


def start_project(photos: str | Path, root: str | Path | None = None,
                  labels: FoundLabels | None = None, progress: ProgressFn | None = None,
                  should_stop: StopFn | None = None) -> StartedProject:
    """Create a project in ``root`` (default: the photo folder) over ``photos`` and import
    ``labels`` (one of :func:`find_labels`) as its boxes; the label set's class names, if it
    declares any, become the project's classes."""
    photos = Path(photos).resolve()
    root = Path(root).resolve() if root is not None else photos
    if not photos.is_dir():
        raise ProjectError(f"{photos}: photo folder not found")
    names = label_class_names(labels) if labels is not None else None
    classes = make_classes(names) if names else DEFAULT_CLASSES
    project = Project.create(root, photos if root != photos else None, classes)
    result = None
    if labels is not None and labels.kind == "yolo":
        result = importers.import_yolo(project, labels.path, progress=progress,
                                       should_stop=should_stop)
    elif labels is not None:
        result = importers.import_coco(project, labels.path, progress=progress,
                                       should_stop=should_stop)
    return StartedProject(project.root, tuple(project.class_names()[1:]), labels, result)
