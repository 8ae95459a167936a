"""Copies of the project database: on demand, automatic ones before risky steps, restore.

A backup is a whole SQLite file made through SQLite's online backup API, so it is consistent
even while the GUI or a worker writes. Automatic ones (``backups/auto-STAMP-REASON.sqlite``)
are made before a bulk import and a schema migration, and daily while the GUI is open; only
the last :data:`KEEP` of them are kept. Mask PNGs are files beside the database and are not
copied (a restored index may name masks written since: those are simply made again).
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import time
from pathlib import Path

from ml.project.db import Database, check_file, newest_backup
from ml.project.files import BACKUP_DIR, DB_NAME, ProjectError

KEEP = 5  # automatic backups kept per project


def _stamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")


class Backups:
    """The backup half of :class:`ml.project.store.Project` (which provides root and db)."""

    root: Path
    db: Database

    def backup(self, out: str | os.PathLike) -> Path:
        """Copy the database to ``out`` (a file, or a folder to put a dated one in: one that
        exists, or a name without an extension)."""
        out = Path(out)
        if out.is_dir() or not out.suffix:
            out = out / f"project-{_stamp()}{self.db.BACKUP_SUFFIX}"
        return self.db.backup_to(out)

    def auto_backup(self, reason: str, older_than_s: float = 0.0) -> Path | None:
        """An automatic backup (the oldest beyond :data:`KEEP` go); None where the last is
        younger than ``older_than_s`` or the folder cannot be written (the step goes on)."""
        if type(self.db) is not Database:  # a server's backups are its administrator's
            return None
        folder = self.root / BACKUP_DIR
        autos = sorted(folder.glob("auto-*.sqlite"), key=lambda p: p.name)
        if older_than_s and autos and time.time() - autos[-1].stat().st_mtime < older_than_s:
            return None
        try:
            out = self.db.backup_to(folder / f"auto-{_stamp()}-{reason}.sqlite")
        except (ProjectError, OSError):  # a read-only folder, a full disk: the step says so
            return None
        for old in (autos + [out])[:-KEEP]:
            old.unlink(missing_ok=True)
        return out


def restore(root: str | os.PathLike, backup: str | os.PathLike | None = None) -> Path:
    """Put ``backup`` (default: the newest in the project's backups folder) in place of the
    project database; what it replaced is kept (SQLite: the file beside it as
    ``project.sqlite.replaced-STAMP``; PostgreSQL: the tables in a schema of their own).
    Close the GUI and workers on the project first."""
    from ml.project.pg import PgDatabase, read_pointer

    root = Path(root)
    url = read_pointer(root)
    if url is None:
        return _restore_file(root, backup)
    from ml.project.pg_backup import restore_dump

    folder = root / BACKUP_DIR
    src = Path(backup) if backup is not None else max(
        folder.glob(f"*{PgDatabase.BACKUP_SUFFIX}"), key=lambda p: p.stat().st_mtime,
        default=None)
    if src is None:
        raise ProjectError(f"{folder}: no backup to restore")
    db = PgDatabase(url)
    try:
        restore_dump(db, src)
    finally:
        db.close()
    return src


def _restore_file(root: Path, backup: str | os.PathLike | None) -> Path:
    """:func:`restore` of a project whose database is its SQLite file."""
    db = root / DB_NAME
    src = Path(backup) if backup is not None else newest_backup(db)
    if src is None:
        raise ProjectError(f"{root / BACKUP_DIR}: no backup to restore")
    if not src.is_file():
        raise ProjectError(f"{src}: no such backup file")
    with open(src, "rb") as f:
        if b"PostgreSQL database dump" in f.read(200):
            raise ProjectError(f"{src}: a PostgreSQL dump, but this project's database is its "
                               f"SQLite file {db}; restore a SQLite backup of it")
    why = check_file(src)
    if why is not None:
        raise ProjectError(f"{src}: cannot restore from it: {why}")
    tmp = db.with_name(f".{DB_NAME}.restoring")
    try:
        shutil.copyfile(src, tmp)
        if db.exists():
            os.replace(db, db.with_name(f"{DB_NAME}.replaced-{_stamp()}"))
        for extra in ("-wal", "-shm"):  # the replaced file's journal is not the backup's
            Path(f"{db}{extra}").unlink(missing_ok=True)
        os.replace(tmp, db)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ProjectError(f"{db}: cannot restore ({e})") from e
    return src
