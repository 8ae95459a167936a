"""The project.json index (schemas 1 and 2): read it into a new database, write it back out.

A project made before the database opens once through :func:`migrate_json`: the database is
built beside the index in a temporary file, filled in one transaction and renamed into place
only when whole, so a crash leaves the old project as it was; ``project.json`` itself is
never changed (the user deletes it when they like). ``b2p export --format project-json``
writes the same form (:func:`interchange`) for other tools.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ml.common.atomic import atomic_write_json
from ml.common.classes import ClassInfo
from ml.project import rows
from ml.project.db import SCHEMA_VERSION, Database
from ml.project.files import DB_NAME, INDEX_NAME, ProjectError
from ml.project.migrate import upgrade
from ml.project.records import ImageRecord, box_problem, now

if TYPE_CHECKING:
    from ml.project.store import Project

JSON_SCHEMA = 2  # the last schema of project.json, and the interchange form's


def build(path: Path, head: dict, classes: list[ClassInfo],
          records: dict[str, ImageRecord]) -> None:
    """Make the database at ``path`` holding ``head`` (name, created, image_root, split,
    settings), ``classes`` and ``records``; atomic: a temp file renamed when complete."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    for extra in ("", "-wal", "-shm", "-journal"):
        Path(f"{tmp}{extra}").unlink(missing_ok=True)
    db = Database(tmp)
    try:
        db.init_schema()
        fill(db, head, classes, records)
        db.close()  # the last connection: SQLite folds the WAL into the file
        os.replace(tmp, path)
    except BaseException:
        db.close()
        for extra in ("", "-wal", "-shm"):
            Path(f"{tmp}{extra}").unlink(missing_ok=True)
        raise


def fill(db: Database, head: dict, classes: list[ClassInfo],
         records: dict[str, ImageRecord]) -> None:
    """Put a whole project into the empty tables of ``db``, in one transaction."""
    with db.write():
        put = "INSERT INTO settings (name, value) VALUES (?, ?)"
        db.many(put, [(k, rows.dumps(v)) for k, v in {**head, "schema": SCHEMA_VERSION}.items()])
        db.many("INSERT INTO classes (id, info) VALUES (?, ?)",
                [(c.id, rows.dumps(c.to_json())) for c in classes])
        rows.insert_many(db, records, now(), "migration")


def read_json(index: Path) -> tuple[dict, list[ClassInfo], dict[str, ImageRecord], int]:
    """(head, classes, records, schema) of a project.json; refused with a clear message."""
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProjectError(f"{index}: unreadable project index ({e})") from e
    schema = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(schema, int) or schema > JSON_SCHEMA:
        raise ProjectError(f"{index}: schema {schema!r} is newer than this app "
                           f"understands ({JSON_SCHEMA}); update the app")
    try:
        classes = [ClassInfo.from_json(c) for c in data["classes"]]
        records = {k: ImageRecord.from_json(k, v) for k, v in data.get("images", {}).items()}
    except (KeyError, TypeError, ValueError) as e:
        raise ProjectError(f"{index}: unreadable project index ({e!r})") from e
    head = {"name": data.get("name", index.parent.name), "created": data.get("created", now()),
            "image_root": data.get("image_root", "."), "split": dict(data.get("split", {})),
            "settings": dict(data.get("settings", {}))}
    return head, classes, records, schema


def drop_bad_boxes(records: dict[str, ImageRecord]) -> list[str]:
    """An index written before boxes were checked may hold NaN or inverted ones: dropped,
    so later steps (pseudo-labels, training) never see them; one warning each."""
    warnings = []
    for rec in records.values():
        good = []
        for b in rec.boxes:
            problem = box_problem(b)
            if problem is None:
                good.append(b)
            else:
                warnings.append(f"{rec.key}: box {b.xyxy} {problem}; dropped")
        rec.boxes = good
    return warnings


def migrate_json(root: Path) -> list[str]:
    """Build ``root/project.sqlite`` from ``root/project.json`` (left untouched); warnings."""
    head, classes, records, schema = read_json(root / INDEX_NAME)
    warnings = drop_bad_boxes(records)
    try:
        warnings += upgrade(root, records, schema)
        build(root / DB_NAME, head, classes, records)
    except OSError as e:
        raise ProjectError(f"{root}: cannot upgrade the project from {INDEX_NAME} (schema "
                           f"{schema}) to {DB_NAME} ({e}); is the folder writable?") from e
    return warnings


def interchange(project: Project) -> dict:
    """The whole project in the project.json form (schema 2)."""
    return {"schema": JSON_SCHEMA, "name": project.name, "created": project.created,
            "image_root": project.image_root_raw,
            "classes": [c.to_json() for c in project.classes],
            "split": project.split, "settings": project.settings,
            "images": {k: r.to_json() for k, r in project.records().items()}}


def export_json(project: Project, out: str | os.PathLike) -> Path:
    """Write :func:`interchange` to ``out`` (a file, or a folder to hold project.json)."""
    out = Path(out)
    if out.is_dir():
        out = out / INDEX_NAME
    if out.resolve() == (project.root / INDEX_NAME).resolve():
        raise ProjectError(f"{out}: would replace the project's old index; pick another path")
    atomic_write_json(out, interchange(project))
    return out
