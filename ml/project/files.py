"""Where a project keeps its files, and the errors a project raises.

Shared by :mod:`ml.project.store` (which re-exports all of it) and the schema migration
(:mod:`ml.project.migrate`), which must name files exactly as the store does.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

DB_NAME = "project.sqlite"  # the index: ml.project.db
INDEX_NAME = "project.json"  # the index before schema 3, and the interchange form (export)
POINTER_NAME = "project.postgresql"  # the URL of the project's database on a server (pg.py)
BACKUP_DIR = "backups"  # automatic and 'b2p backup' copies of the database
STORE_DIRS = ("masks", "models", "exports", "reports", "runs", BACKUP_DIR)  # runs: campaign
MASK_KINDS = ("teacher", "student", "previous")  # previous: the model before's student mask
# the masks an export, the findings or a report can read (ml.project.masks.mask_for)
SOURCES = ("teacher", "student", "reviewed")
# maps beside a mask; "proposed": box-free proposals found under the mask's own threshold
EXTRA_SUFFIXES = {"confidence": "_conf", "corrections": "_corr", "proposed": "_prop"}


class ProjectError(RuntimeError):
    """A project that cannot be created, opened or changed as asked."""


class ProjectWarning(UserWarning):
    """Something opening a project had to repair; also kept in ``Project.warnings``."""


class ChangedElsewhere(ProjectWarning):
    """A write replaced a value another writer had changed since this writer read it.

    The write lands (the later one wins) and the writer is told, so nothing is overwritten
    silently; the earlier writer sees the change at its next :meth:`Project.changed_elsewhere`.
    """


def is_project(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a project (its database, or a project.json to migrate)."""
    folder = Path(folder)
    return any((folder / n).is_file() for n in (POINTER_NAME, DB_NAME, INDEX_NAME))


def mask_rel(kind: str, key: str, suffix: str = "") -> str:
    """Where ``key``'s mask of ``kind`` lives, relative to the project folder.

    The key keeps its folders and its extension, so distinct keys give distinct files; an
    extra map's name (``KEY_conf.png``) never equals a mask's (``KEY.png``) because keys end
    in an image extension, never in ``_conf``.
    """
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or any(p in ("..", ".") for p in parts):
        raise ProjectError(f"'{key}' is not a photo key a mask can be named after")
    return f"masks/{kind}/{key}{suffix}.png"
