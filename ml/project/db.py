"""The project's database: connections, the schema and its version, transactions, backups.

One SQLite file, ``PROJECT/project.sqlite`` (stdlib :mod:`sqlite3`): WAL, so readers never
wait for a writer and a killed writer leaves the last committed state; a busy timeout, so
writers of several processes (the GUI, the CLI, the training worker) take turns instead of
failing; foreign keys on. A write is one transaction (:meth:`Database.write`), which lands
whole or not at all.

Every SQL statement goes through :meth:`Database.q`, so what the disk or the file does wrong
(damaged, read-only, full) reaches the caller as a :class:`ProjectError` that names the file
and what to do, never as a traceback.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ml.project.files import BACKUP_DIR, ProjectError

SCHEMA_VERSION = 3  # 1, 2: the project.json index (ml.project.legacy); 3: project.sqlite
BUSY_TIMEOUT_S = 30.0  # a writer waits this long for another's transaction before failing

# Boxes and masks are rows of their own (a photo's boxes are replaced without touching its
# other fields); a record's open-ended dicts are JSON text: meta, findings, and in ``fields``
# every record field that has no column (ImageRecord fields added later keep round-tripping).
SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS classes (id INTEGER PRIMARY KEY, info TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    width INTEGER NOT NULL DEFAULT 0,
    height INTEGER NOT NULL DEFAULT 0,
    reviewed INTEGER NOT NULL DEFAULT 0,
    all_defects_boxed INTEGER,
    meta TEXT NOT NULL DEFAULT '{}',
    findings TEXT NOT NULL DEFAULT '{}',
    fields TEXT NOT NULL DEFAULT '{}',
    stem TEXT NOT NULL DEFAULT '',
    version INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL DEFAULT '',
    updated_by TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS images_stem ON images (stem);
CREATE TABLE IF NOT EXISTS boxes (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
    cls INTEGER NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (image_id, idx));
CREATE TABLE IF NOT EXISTS masks (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    source TEXT NOT NULL,
    settings TEXT NOT NULL,
    edited INTEGER NOT NULL,
    created TEXT NOT NULL,
    extra TEXT NOT NULL,
    PRIMARY KEY (image_id, kind));
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    who TEXT NOT NULL,
    image TEXT,
    action TEXT NOT NULL,
    detail TEXT NOT NULL);
"""

_DAMAGED = ("file is not a database", "malformed", "disk image", "not a database")


def newest_backup(db_path: Path) -> Path | None:
    """The most recent backup in the project's backups folder, if any."""
    found = sorted((db_path.parent / BACKUP_DIR).glob("*.sqlite"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def explain(path: Path, e: sqlite3.Error) -> ProjectError:
    """A database error as one clear message: what happened to which file, and what to do."""
    text = str(e)
    low = text.lower()
    if any(w in low for w in _DAMAGED):
        newest = newest_backup(path)
        back = (f"the newest backup is {newest}; bring it back with "
                f"'b2p restore {path.parent} {newest}'" if newest else
                "there is no backup in its backups folder")
        return ProjectError(f"{path}: the project database is damaged ({text}); {back}")
    if "readonly" in low or "read-only" in low or "unable to open" in low:
        return ProjectError(f"{path}: cannot write the project database ({text}); is the "
                            f"project folder {path.parent} writable?")
    if "full" in low:
        return ProjectError(f"{path}: the disk is full ({text}); nothing of this change was "
                            f"written. Free some space and try again")
    if "locked" in low or "busy" in low:
        return ProjectError(f"{path}: another program kept the project busy for more than "
                            f"{BUSY_TIMEOUT_S:.0f} s ({text}); try again")
    return ProjectError(f"{path}: database error ({text})")


class Database:
    """Connections to one project database, one per thread (a sqlite3 connection is not
    shared between threads), and the transactions of each."""

    BACKUP_SUFFIX = ".sqlite"  # what its backups are named with

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()

    # ----------------------------------------------------------------- connections
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S,
                                       isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA foreign_keys = ON")
                # WAL: a commit is durable once the WAL is on disk; NORMAL fsyncs at
                # checkpoints only, which a killed process cannot tear (power cuts may lose
                # the last commits, never the file)
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as e:
                raise explain(self.path, e) from None
            try:  # a restored backup is a plain file: WAL again (kept in the file from then on)
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.Error:
                pass  # read-only: reads work in any mode, and a write says why it cannot
            self._local.conn, self._local.depth = conn, 0
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def init_schema(self) -> None:
        """Create the tables of a new database (WAL mode is kept in the file)."""
        conn = self._conn()
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(SCHEMA)
        except sqlite3.Error as e:
            raise explain(self.path, e) from None

    # ----------------------------------------------------------------- statements
    def q(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run one statement; its rows (empty for writes)."""
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise explain(self.path, e) from None

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        rows = self.q(sql, params)
        return rows[0] if rows else None

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._conn().executemany(sql, rows)
        except sqlite3.Error as e:
            raise explain(self.path, e) from None

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an INSERT; the new row's id."""
        try:
            return int(self._conn().execute(sql, params).lastrowid)
        except sqlite3.Error as e:
            raise explain(self.path, e) from None

    def ids_taken(self, table: str) -> None:
        """After rows were inserted with their ids given: new rows number on from them
        (SQLite's AUTOINCREMENT follows by itself)."""

    # ----------------------------------------------------------------- transactions
    def in_write(self) -> bool:
        return bool(getattr(self._local, "depth", 0))

    @contextmanager
    def write(self) -> Iterator[None]:
        """One write transaction: the block lands whole or, on any exception, not at all.

        A nested block is a savepoint of the outer one: its exception undoes only what it
        wrote. The outermost holds the database's write lock, so keep it short: read files
        and compute first, then write.
        """
        conn = self._conn()
        depth = self._local.depth
        begin, ok, undo = (("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK") if depth == 0 else
                           (f"SAVEPOINT s{depth}", f"RELEASE s{depth}",
                            f"ROLLBACK TO s{depth}; RELEASE s{depth}"))
        self.q(begin)
        self._local.depth = depth + 1
        try:
            yield
        except BaseException:
            self._local.depth = depth
            try:
                for stmt in undo.split("; "):
                    conn.execute(stmt)
            except sqlite3.Error:
                pass  # already rolled back by SQLite (a full disk does that)
            raise
        self._local.depth = depth
        try:
            conn.execute(ok)
        except sqlite3.Error as e:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise explain(self.path, e) from None

    def commit_now(self) -> None:
        """Inside a write: make what was written so far land, and go on in a new transaction."""
        if self.in_write():
            try:
                self._conn().execute("COMMIT")
                self._conn().execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise explain(self.path, e) from None

    def data_version(self) -> int:
        """Changes when another connection (process or thread) commits (SQLite's counter)."""
        row = self.one("PRAGMA data_version")
        return int(row[0]) if row else 0

    # ----------------------------------------------------------------- backups
    def backup_to(self, out: str | Path) -> Path:
        """A consistent copy through SQLite's online backup API (writers may go on)."""
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.part")
        tmp.unlink(missing_ok=True)
        try:
            dst = sqlite3.connect(tmp)
            try:
                self._conn().backup(dst)
                dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            finally:
                dst.close()
            tmp.replace(out)
        except sqlite3.Error as e:
            tmp.unlink(missing_ok=True)
            raise explain(self.path, e) from None
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise ProjectError(f"{out}: cannot write the backup ({e})") from None
        return out


def check_file(path: Path) -> str | None:
    """Why the database at ``path`` cannot be used (damaged, not ours), or None if it can."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            ok = conn.execute("PRAGMA quick_check").fetchone()
            if not ok or ok[0] != "ok":
                return f"damaged ({ok[0] if ok else 'no answer'})"
            if conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'images'"
                            ).fetchone()[0] != 1:
                return "not a project database"
        finally:
            conn.close()
    except sqlite3.Error as e:
        return f"damaged ({e})"
    return None
