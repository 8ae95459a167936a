"""The project store: a folder of inspection photos plus the sidecar files the app owns.

Layout of a project folder::

    PROJECT/project.json        schema-versioned index (boxes, mask records, metadata)
    PROJECT/masks/teacher/      pseudo-masks (class-id PNG), possibly edited by a person
    PROJECT/masks/student/      student predictions (+ *_conf.png, *_corr.png)
    PROJECT/masks/previous/     the model before's predictions, kept when a new model predicts
    PROJECT/models/             trained students (safetensors + JSON config)
    PROJECT/runs/               a Dask campaign's results not yet moved in (ml.campaign.client)

A photo's mask is ``masks/KIND/KEY.png``, the key's folders kept and its own extension kept
(``a/b.png`` -> ``masks/teacher/a/b.png.png``), so two photos never share a mask file.

Photos stay where they are (``image_root``, which may be the project folder itself) and are
never modified. Every write is atomic, so a crash leaves the last good state readable.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ml.common import images as _images
from ml.common.atomic import atomic_write_json, remove_stale_temps
from ml.common.batch import BatchResult
from ml.common.classes import DEFAULT_CLASSES, ClassInfo, palette
from ml.project.files import (
    EXTRA_SUFFIXES,
    INDEX_NAME,
    MASK_KINDS,
    STORE_DIRS,
    ProjectError,
    ProjectWarning,
    mask_rel,
)
from ml.project.masks import MaskFiles
from ml.project.migrate import migrate
from ml.project.records import Box, ImageRecord, MaskRecord, box_problem, boxes_to_arrays, now

__all__ = ["EXTRA_SUFFIXES", "INDEX_NAME", "MASK_KINDS", "STORE_DIRS", "Box", "ImageRecord",
           "MaskRecord", "Project", "ProjectError", "ProjectWarning", "boxes_to_arrays",
           "mask_rel"]

SCHEMA_VERSION = 2  # 2: mask files mirror the key's folders instead of joining them with "__"


def _remove_leftovers(root: Path) -> None:
    """Temp files of writes killed part-way: never read as data, but they would pile up."""
    remove_stale_temps(root, INDEX_NAME)
    for kind in MASK_KINDS:
        remove_stale_temps(root / "masks" / kind, recursive=True)


class Project(MaskFiles):
    """An open project. Mutating methods save the index at once unless inside :meth:`batch`."""

    def __init__(self, root: Path, data: dict) -> None:
        self.root = Path(root)
        self._lock = threading.RLock()
        self._defer = 0
        self._dirty = False
        self.name: str = data.get("name", self.root.name)
        self.created: str = data.get("created", now())
        self._image_root_raw: str = data.get("image_root", ".")
        self.classes: list[ClassInfo] = [ClassInfo.from_json(c) for c in data["classes"]]
        self.split: dict = dict(data.get("split", {}))
        self.settings: dict = dict(data.get("settings", {}))
        self.images: dict[str, ImageRecord] = {
            k: ImageRecord.from_json(k, v) for k, v in data.get("images", {}).items()}
        self.warnings: list[str] = []  # what opening had to repair; callers show these
        self._drop_bad_boxes()

    def _drop_bad_boxes(self) -> None:
        # an index written before boxes were checked may hold NaN or inverted ones; opening
        # must still work, and later steps (pseudo-labels, training) must never see them
        for rec in self.images.values():
            good = []
            for b in rec.boxes:
                problem = box_problem(b)
                if problem is None:
                    good.append(b)
                else:
                    self.warnings.append(f"{rec.key}: box {b.xyxy} {problem}; dropped")
            rec.boxes = good

    # ----------------------------------------------------------------- create / open
    @classmethod
    def create(cls, root: str | os.PathLike, images_dir: str | os.PathLike | None = None,
               classes: list[ClassInfo] | None = None, exist_ok: bool = False) -> Project:
        """Make a project over ``images_dir`` (default: photos inside ``root``) and scan it."""
        root = Path(root).resolve()
        if (root / INDEX_NAME).exists() and not exist_ok:
            raise ProjectError(f"{root}: a project already exists here")
        root.mkdir(parents=True, exist_ok=True)
        img_root = Path(images_dir).resolve() if images_dir else root
        if not img_root.is_dir():
            raise ProjectError(f"{img_root}: image folder not found")
        try:
            rel = os.path.relpath(img_root, root)
        except ValueError:  # different drive on Windows
            rel = str(img_root)
        data = {"schema": SCHEMA_VERSION, "name": root.name, "created": now(),
                "image_root": Path(rel).as_posix(),
                "classes": [c.to_json() for c in (classes or DEFAULT_CLASSES)],
                "images": {}}
        proj = cls(root, data)
        proj.scan()
        proj.save()
        return proj

    @classmethod
    def open(cls, root: str | os.PathLike) -> Project:
        root = Path(root).resolve()
        index = root / INDEX_NAME
        if not index.exists():
            raise ProjectError(f"{root}: no project here (missing {INDEX_NAME}); run 'b2p init'")
        try:
            data = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ProjectError(f"{index}: unreadable project index ({e})") from e
        schema = data.get("schema")
        if not isinstance(schema, int) or schema > SCHEMA_VERSION:
            raise ProjectError(f"{index}: schema {schema!r} is newer than this app "
                               f"understands ({SCHEMA_VERSION}); update the app")
        _remove_leftovers(root)
        proj = cls(root, data)
        if schema < SCHEMA_VERSION:
            proj.warnings.extend(migrate(proj, schema))
        for w in proj.warnings:  # every caller (CLI, worker, GUI console) gets to see them
            warnings.warn(f"{root}: {w}", ProjectWarning, stacklevel=2)
        return proj

    @classmethod
    def open_or_create(cls, folder: str | os.PathLike) -> Project:
        """Open the project in ``folder``, making one over its photos if there is none."""
        folder = Path(folder)
        if (folder / INDEX_NAME).exists():
            return cls.open(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: not a folder")
        return cls.create(folder)

    @property
    def image_root(self) -> Path:
        p = Path(self._image_root_raw)
        return p if p.is_absolute() else (self.root / p).resolve()

    def scan(self) -> BatchResult:
        """Add photos found under ``image_root`` (subfolders kept); ``done`` lists the new keys.

        A photo that cannot be read (empty, broken, over the pixel limit) is listed with size 0,
        so the user sees it, and reported in ``failed`` with the reason on every scan until the
        file is fixed or removed; every later step skips it by name.
        """
        new: list[str] = []
        failed: dict[str, str] = {}
        root = self.image_root
        skip = {self.root / d for d in STORE_DIRS}
        with self._lock, self.batch():
            for p in _images.list_images(root):
                if any(s in p.parents for s in skip):
                    continue
                key = p.relative_to(root).as_posix()
                rec = self.images.get(key)
                if rec is not None and rec.width:
                    continue
                try:
                    w, h = _images.image_size(p)
                except _images.ImageError as e:
                    w, h = 0, 0
                    failed[key] = e.reason
                if rec is None:
                    self.images[key] = ImageRecord(key, w, h)
                    new.append(key)
                    self._changed()
                elif w:  # fixed since the last scan
                    rec.width, rec.height = w, h
                    self._changed()
        done = tuple(k for k in new if k not in failed)
        return BatchResult(action="new photos added", total=len(done) + len(failed), done=done,
                           failed=failed)

    # ----------------------------------------------------------------- saving
    def to_json(self) -> dict:
        return {"schema": SCHEMA_VERSION, "name": self.name, "created": self.created,
                "image_root": self._image_root_raw,
                "classes": [c.to_json() for c in self.classes],
                "split": self.split, "settings": self.settings,
                "images": {k: r.to_json() for k, r in self.images.items()}}

    def save(self) -> None:
        with self._lock:
            atomic_write_json(self.root / INDEX_NAME, self.to_json())
            self._dirty = False

    def _changed(self) -> None:
        self._dirty = True
        if self._defer == 0:
            self.save()

    @contextmanager
    def batch(self) -> Iterator[Project]:
        """Defer index saves until the block ends (or fails): one write for many changes."""
        with self._lock:
            self._defer += 1
            try:
                yield self
            finally:
                self._defer -= 1
                if self._defer == 0 and self._dirty:
                    self.save()

    # ----------------------------------------------------------------- images
    def keys(self) -> list[str]:
        return list(self.images)

    def record(self, key: str) -> ImageRecord:
        try:
            return self.images[key]
        except KeyError:
            raise ProjectError(f"no image '{key}' in project {self.root}") from None

    def image_path(self, key: str) -> Path:
        return self.image_root / self.record(key).key

    def load_image(self, key: str) -> np.ndarray:
        """The photo as 8-bit RGB; fixes a record whose size could not be read at scan time."""
        arr = _images.load_image(self.image_path(key))
        rec = self.record(key)
        if (rec.height, rec.width) != arr.shape[:2]:
            with self._lock:
                rec.height, rec.width = arr.shape[:2]
                self._changed()
        return arr

    def image_size(self, key: str) -> tuple[int, int]:
        """(width, height) of a photo; one unreadable so far is read again (ImageError if not)."""
        rec = self.record(key)
        if not rec.width or not rec.height:
            w, h = _images.image_size(self.image_path(key))
            with self._lock:
                rec.width, rec.height = w, h
                self._changed()
        return rec.width, rec.height

    def remove_images(self, keys: list[str]) -> None:
        """Drop photos from the project (their files stay on disk; their masks are deleted)."""
        with self._lock:
            for key in keys:
                rec = self.images.pop(key, None)
                for m in (rec.teacher, rec.student, rec.previous) if rec else ():
                    if m is None:
                        continue
                    for rel in [m.path, *[v for v in m.extra.values() if isinstance(v, str)]]:
                        (self.root / rel).unlink(missing_ok=True)
            self._changed()

    def missing_keys(self) -> list[str]:
        """Photos whose file is no longer under ``image_root`` (moved, deleted, drive absent)."""
        return [k for k in self.images if not self.image_path(k).is_file()]

    def find_key(self, name: str) -> str | None:
        """Key of the image whose key or file stem equals ``name`` (stems must be unique)."""
        if name in self.images:
            return name
        stem = Path(name).stem
        hits = [k for k in self.images if Path(k).stem == stem]
        return hits[0] if len(hits) == 1 else None

    # ----------------------------------------------------------------- classes
    @property
    def num_classes(self) -> int:
        return max(c.id for c in self.classes) + 1

    def class_id(self, name: str) -> int:
        for c in self.classes:
            if c.name == name:
                return c.id
        raise ProjectError(f"unknown class '{name}' (known: {', '.join(self.class_names())})")

    def class_names(self) -> list[str]:
        return [c.name for c in sorted(self.classes, key=lambda c: c.id)]

    def palette(self) -> list[tuple[int, int, int]]:
        return palette(self.classes)

    def set_classes(self, classes: list[ClassInfo]) -> None:
        ids = sorted(c.id for c in classes)
        if ids != list(range(len(ids))) or classes[0].id != 0:
            raise ProjectError("class ids must be 0..N-1 with 0 = background")
        with self._lock:
            self.classes = sorted(classes, key=lambda c: c.id)
            self._changed()

    # ----------------------------------------------------------------- boxes
    def set_boxes(self, key: str, boxes: list[Box]) -> None:
        """Replace ``key``'s boxes; refuses a box with a bad class or bad coordinates."""
        n = self.num_classes
        for b in boxes:
            if not 0 < b.cls < n:
                raise ProjectError(f"{key}: box class {b.cls} is not a defect class (1..{n - 1})")
            problem = box_problem(b)
            if problem is not None:
                raise ProjectError(f"{key}: box {b.xyxy} {problem}")
        with self._lock:
            self.record(key).boxes = list(boxes)
            self._changed()

    def add_boxes(self, key: str, boxes: list[Box]) -> None:
        self.set_boxes(key, self.record(key).boxes + list(boxes))

    def set_reviewed(self, key: str, reviewed: bool = True) -> None:
        with self._lock:
            self.record(key).reviewed = reviewed
            self._changed()

    def set_meta(self, key: str, **meta: Any) -> None:
        with self._lock:
            self.record(key).meta.update({k: v for k, v in meta.items()})
            self._changed()

    def update(self, key: str, **fields: Any) -> None:
        """Set plain record fields (``findings``, ``meta``, ``all_defects_boxed``) and save."""
        with self._lock:
            rec = self.record(key)
            for k, v in fields.items():
                if k not in ("findings", "meta", "reviewed", "all_defects_boxed"):
                    raise ProjectError(f"field '{k}' cannot be set this way")
                setattr(rec, k, v)
            self._changed()

    def set_split(self, split: dict) -> None:
        with self._lock:
            self.split = dict(split)
            self._changed()

    def models_dir(self) -> Path:
        return self.root / "models"
