"""The project store: a folder of inspection photos plus the sidecar files the app owns.

Layout of a project folder::

    PROJECT/project.sqlite      the index (photos, boxes, mask records, metadata, findings
                                decisions, classes, an audit trail): ml.project.db
    PROJECT/masks/teacher/      pseudo-masks (class-id PNG), possibly edited by a person
    PROJECT/masks/student/      student predictions (+ *_conf.png, *_corr.png)
    PROJECT/masks/previous/     the model before's predictions, kept when a new model predicts
    PROJECT/models/             trained students (safetensors + JSON config)
    PROJECT/runs/               a Dask campaign's results not yet moved in (ml.campaign.client)
    PROJECT/backups/            copies of the database (automatic ones and 'b2p backup')

A photo's mask is ``masks/KIND/KEY.png``, the key's folders kept and its own extension kept
(``a/b.png`` -> ``masks/teacher/a/b.png.png``), so two photos never share a mask file.

Photos stay where they are (``image_root``, which may be the project folder itself) and are
never modified. Every change is one database transaction, written at once: several
processes (the GUI, the CLI, a worker) may hold the same project, and each writes only what
it changes. Records handed out are snapshots: change them through the methods here.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ml.common import images as _images
from ml.common.atomic import remove_stale_temps
from ml.common.batch import BatchResult
from ml.common.classes import DEFAULT_CLASSES, ClassInfo
from ml.project import rows
from ml.project.backups import Backups
from ml.project.db import SCHEMA_VERSION, Database
from ml.project.files import (
    DB_NAME,
    EXTRA_SUFFIXES,
    INDEX_NAME,
    MASK_KINDS,
    POINTER_NAME,
    STORE_DIRS,
    ChangedElsewhere,
    ProjectError,
    ProjectWarning,
    is_project,
    mask_rel,
)
from ml.project.legacy import build, fill, migrate_json
from ml.project.masks import MaskFiles
from ml.project.records import Box, ImageRecord, MaskRecord, box_problem, boxes_to_arrays, now
from ml.project.settings import ProjectSettings, default_user
from ml.project.views import ImagesView

__all__ = ["DB_NAME", "EXTRA_SUFFIXES", "INDEX_NAME", "MASK_KINDS", "SCHEMA_VERSION",
           "STORE_DIRS", "Box", "ChangedElsewhere", "ImageRecord", "MaskRecord", "Project",
           "ProjectError", "ProjectWarning", "boxes_to_arrays", "is_project", "mask_rel"]

# update(): fields with a method of their own (boxes, masks) or fixed by the photo are not set
_NOT_BY_UPDATE = {"key", "width", "height", "boxes", "version", *MASK_KINDS}


def _remove_leftovers(root: Path) -> None:
    """Temp files of writes killed part-way: never read as data, but they would pile up."""
    remove_stale_temps(root, INDEX_NAME)
    for kind in MASK_KINDS:
        remove_stale_temps(root / "masks" / kind, recursive=True)


class Project(MaskFiles, Backups, ProjectSettings):
    """An open project; every change is stored at once (inside :meth:`batch`, as one)."""

    def __init__(self, root: Path, db: Database) -> None:
        self.root = Path(root)
        self.db = db
        self._lock = threading.RLock()
        self._cache: dict[str, tuple[int, int, ImageRecord]] = {}  # key: (id, version, rec)
        self._poll = threading.local()
        self.warnings: list[str] = []  # what opening had to repair; callers show these
        self.user = default_user()
        head = dict(db.q("SELECT name, value FROM settings"))
        schema = json.loads(head.get("schema", "null"))
        if not isinstance(schema, int) or schema > SCHEMA_VERSION:
            raise ProjectError(f"{db.path}: schema {schema!r} is newer than this app "
                               f"understands ({SCHEMA_VERSION}); update the app")
        self.name: str = json.loads(head.get("name", "null")) or self.root.name
        self.created: str = json.loads(head.get("created", "null")) or ""
        self.image_root_raw: str = json.loads(head.get("image_root", '"."'))
        self.changed_elsewhere()  # the baseline of this thread

    # ----------------------------------------------------------------- create / open
    @classmethod
    def create(cls, root: str | os.PathLike, images_dir: str | os.PathLike | None = None,
               classes: list[ClassInfo] | None = None, exist_ok: bool = False,
               db: str | None = None) -> Project:
        """Make a project over ``images_dir`` (default: photos inside ``root``) and scan it.

        ``db``: a ``postgresql://`` URL to keep the index on a server (the folder then holds
        the masks and a pointer to it); default: ``ROOT/project.sqlite``."""
        root = Path(root).resolve()
        if is_project(root) and not exist_ok:
            raise ProjectError(f"{root}: a project already exists here")
        img_root = Path(images_dir).resolve() if images_dir else root
        if not img_root.is_dir():
            raise ProjectError(f"{img_root}: image folder not found")
        try:
            root.mkdir(parents=True, exist_ok=True)
            rel = os.path.relpath(img_root, root)
        except ValueError:  # different drive on Windows
            rel = str(img_root)
        except OSError as e:
            raise ProjectError(f"{root}: cannot make the project folder ({e})") from e
        head = {"name": root.name, "created": now(), "image_root": Path(rel).as_posix(),
                "split": {}, "settings": {}}
        try:
            if db is not None:
                from ml.project.pg import PgDatabase, write_pointer

                server = PgDatabase(db)
                server.init_schema()
                fill(server, head, list(classes or DEFAULT_CLASSES), {})
                write_pointer(root, db)
            else:
                build(root / DB_NAME, head, list(classes or DEFAULT_CLASSES), {})
        except OSError as e:
            raise ProjectError(f"{root}: cannot write the project ({e}); is the folder "
                               f"writable, the disk not full?") from e
        proj = cls(root, _database(root))
        proj.scan()
        return proj

    @classmethod
    def open(cls, root: str | os.PathLike) -> Project:
        root = Path(root).resolve()
        found: list[str] = []
        if not (root / DB_NAME).exists() and not (root / POINTER_NAME).exists():
            if not (root / INDEX_NAME).exists():
                raise ProjectError(f"{root}: no project here (missing {DB_NAME}); run "
                                   f"'b2p init'")
            found = migrate_json(root)  # copy-first: project.json stays as it was
        _remove_leftovers(root)
        proj = cls(root, _database(root))
        proj.warnings.extend(found)
        for w in proj.warnings:  # every caller (CLI, worker, GUI console) gets to see them
            warnings.warn(f"{root}: {w}", ProjectWarning, stacklevel=2)
        return proj

    @classmethod
    def open_or_create(cls, folder: str | os.PathLike) -> Project:
        """Open the project in ``folder``, making one over its photos if there is none."""
        folder = Path(folder)
        if is_project(folder):
            return cls.open(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: not a folder")
        return cls.create(folder)

    def close(self) -> None:
        """Close this thread's database connection (a later call opens it again)."""
        self.db.close()

    @property
    def image_root(self) -> Path:
        p = Path(self.image_root_raw)
        return p if p.is_absolute() else (self.root / p).resolve()

    def scan(self) -> BatchResult:
        """Add photos found under ``image_root`` (subfolders kept); ``done`` lists the new keys.

        A photo that cannot be read (empty, broken, over the pixel limit) is listed with size 0,
        so the user sees it, and reported in ``failed`` with the reason on every scan until the
        file is fixed or removed; every later step skips it by name.
        """
        known = dict(self.db.q("SELECT key, width FROM images"))
        root = self.image_root
        skip = {self.root / d for d in STORE_DIRS}
        sizes: dict[str, tuple[int, int]] = {}
        failed: dict[str, str] = {}
        for p in _images.list_images(root):  # files first: no lock is held while reading
            if any(s in p.parents for s in skip):
                continue
            key = p.relative_to(root).as_posix()
            if known.get(key):
                continue
            try:
                sizes[key] = _images.image_size(p)
            except _images.ImageError as e:
                sizes[key] = (0, 0)
                failed[key] = e.reason
        new = [k for k in sizes if k not in known]
        with self._write():
            at = now()
            for key in new:
                rows.insert(self.db, ImageRecord(key, *sizes[key]), at, self.user)
            for key, (w, h) in sizes.items():
                if key in known and w:  # fixed since the last scan
                    self.db.q("UPDATE images SET width = ?, height = ?, version = version + 1 "
                              "WHERE key = ?", (w, h, key))
        done = tuple(k for k in new if k not in failed)
        return BatchResult(action="new photos added", total=len(done) + len(failed), done=done,
                           failed=failed)

    # ----------------------------------------------------------------- writing
    @contextmanager
    def _write(self) -> Iterator[None]:
        try:
            with self._lock, self.db.write():
                yield
        except BaseException:
            self._cache.clear()  # it may hold versions that were never committed
            raise

    @contextmanager
    def batch(self) -> Iterator[Project]:
        """One transaction for many changes: they land together when the block ends, or not
        at all if it fails. It holds the write lock of the project (other writers wait), so
        read files and compute outside it."""
        with self._write():
            yield self

    def save(self) -> None:
        """Inside :meth:`batch`: make the changes so far land now. Outside, nothing to do:
        every change is stored as it is made."""
        with self._lock:
            self.db.commit_now()

    def _change(self, key: str, names: tuple[str, ...], fn: Callable[[ImageRecord], Any],
                action: str = "", detail: Any = None) -> ImageRecord:
        """Read ``key`` inside a write, let ``fn`` change that copy, store fields ``names``."""
        with self._write():
            row = self.db.one(f"{rows.IMAGE_SELECT} WHERE key = ?", (key,))
            if row is None:
                raise ProjectError(f"no image '{key}' in project {self.root}")
            rec = rows.load_one(self.db, row)  # a copy: records handed out never change
            hit = self._cache.get(key)
            if hit is not None and hit[:2] == (row[0], row[-1]):
                rows.keep_masks(hit[2], rec, names)
            fn(rec)
            rows.write_fields(self.db, row[0], rec, names, now(), self.user)
            rec.version = int(row[-1]) + 1
            self._cache[key] = (row[0], rec.version, rec)
            if action:
                self.db.q("INSERT INTO audit (at, who, image, action, detail) "
                          "VALUES (?, ?, ?, ?, ?)", (now(), self.user, key, action,
                                                     rows.dumps(detail)))
        return rec

    def changed_elsewhere(self) -> bool:
        """Whether another process or thread changed the project since this thread last
        asked: cheap (SQLite's data_version), for a GUI to poll and reload."""
        v = self.db.data_version()
        before = getattr(self._poll, "v", v)
        self._poll.v = v
        return v != before

    # ----------------------------------------------------------------- images
    def keys(self) -> list[str]:
        return [r[0] for r in self.db.q("SELECT key FROM images ORDER BY id")]

    @property
    def images(self) -> ImagesView:
        """The records by key, read from the database (``len``, ``in``, ``items()``...)."""
        return ImagesView(self)

    def record(self, key: str) -> ImageRecord:
        """``key``'s record as stored now (the same object while it is unchanged)."""
        row = self.db.one(f"{rows.IMAGE_SELECT} WHERE key = ?", (key,))
        if row is None:
            raise ProjectError(f"no image '{key}' in project {self.root}")
        hit = self._cache.get(key)
        if hit is not None and hit[:2] == (row[0], row[-1]):
            return hit[2]
        rec = rows.load_one(self.db, row)
        if hit is not None and hit[0] == row[0]:
            rows.keep_masks(hit[2], rec, (), only_equal=True)
        self._cache[key] = (row[0], int(row[-1]), rec)
        return rec

    def records(self) -> dict[str, ImageRecord]:
        """Every record in the project's order (three queries, for whole-campaign reads)."""
        out = rows.load_all(self.db)
        for key, rec in out.items():
            hit = self._cache.get(key)
            if hit is not None and hit[1] == rec.version and hit[2] == rec:
                out[key] = hit[2]  # unchanged: keep handing out the same object
        return out

    def status_counts(self) -> dict[str, int]:
        """Photos per :attr:`ImageRecord.status`, counted by the database."""
        return rows.status_counts(self.db)

    def box_count(self) -> int:
        return int(self.db.one("SELECT count(*) FROM boxes")[0])

    def image_path(self, key: str) -> Path:
        return self.image_root / self.record(key).key

    def load_image(self, key: str) -> np.ndarray:
        """The photo as 8-bit RGB; fixes a record whose size could not be read at scan time."""
        arr = _images.load_image(self.image_path(key))
        rec = self.record(key)
        if (rec.height, rec.width) != arr.shape[:2]:
            h, w = arr.shape[:2]
            self._change(key, ("width", "height"), lambda r: rows.resize(r, w, h))
        return arr

    def image_size(self, key: str) -> tuple[int, int]:
        """(width, height) of a photo; one unreadable so far is read again (ImageError if not)."""
        rec = self.record(key)
        if not rec.width or not rec.height:
            w, h = _images.image_size(self.image_path(key))
            rec = self._change(key, ("width", "height"), lambda r: rows.resize(r, w, h))
        return rec.width, rec.height

    def remove_images(self, keys: list[str]) -> None:
        """Drop photos from the project (their files stay on disk; their masks are deleted)."""
        gone = []
        with self._write():
            for key in keys:
                if key in self.images:
                    gone.append(self.record(key))
                    self.db.q("DELETE FROM images WHERE key = ?", (key,))
                    self._cache.pop(key, None)
        for rec in gone:  # after the commit: a file left by a crash costs space, not truth
            for m in (rec.teacher, rec.student, rec.previous):
                if m is not None:
                    for rel in [m.path, *[v for v in m.extra.values() if isinstance(v, str)]]:
                        (self.root / rel).unlink(missing_ok=True)

    def missing_keys(self) -> list[str]:
        """Photos whose file is no longer under ``image_root`` (moved, deleted, drive absent)."""
        root = self.image_root
        return [k for k in self.keys() if not (root / k).is_file()]

    def find_key(self, name: str) -> str | None:
        """Key of the image whose key or file stem equals ``name`` (stems must be unique)."""
        if name in self.images:
            return name
        hits = self.db.q("SELECT key FROM images WHERE stem = ? LIMIT 2", (Path(name).stem,))
        return hits[0][0] if len(hits) == 1 else None

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
        self._change(key, ("boxes",), lambda r: setattr(r, "boxes", list(boxes)), "boxes",
                     {"n": len(boxes)})

    def add_boxes(self, key: str, boxes: list[Box]) -> None:
        with self._write():  # read and write as one: a box added meanwhile is kept
            self.set_boxes(key, self.record(key).boxes + list(boxes))

    def set_reviewed(self, key: str, reviewed: bool = True) -> None:
        self._change(key, ("reviewed",), lambda r: setattr(r, "reviewed", bool(reviewed)),
                     "reviewed", bool(reviewed))

    def set_meta(self, key: str, **meta: Any) -> None:
        """Set metadata fields of ``key`` (the others stay as stored)."""
        self._change(key, ("meta",), lambda r: r.meta.update(meta), "meta", meta)

    def update(self, key: str, **fields: Any) -> None:
        """Set record fields (``findings``, ``meta``, ``all_defects_boxed``, ``reviewed`` and
        any field added to :class:`ImageRecord`); only these are written."""
        known = set(ImageRecord.__dataclass_fields__) - _NOT_BY_UPDATE
        for k in fields:
            if k not in known:
                raise ProjectError(f"field '{k}' cannot be set this way")
        self._change(key, tuple(fields), lambda r: [setattr(r, k, v) for k, v in fields.items()],
                     "update", fields)

    def models_dir(self) -> Path:
        return self.root / "models"


def _database(root: Path) -> Database:
    """The project's database: on the server its pointer file names, else its SQLite file."""
    from ml.project.pg import PgDatabase, read_pointer

    url = read_pointer(root)
    return PgDatabase(url) if url is not None else Database(root / DB_NAME)
