"""The project database on a PostgreSQL server, for a team (``b2p init PROJECT --db URL``).

The same tables as SQLite (:data:`ml.project.db.SCHEMA`, with PostgreSQL's types) through
psycopg 3 (the ``postgresql`` extra). The project folder keeps the masks and a pointer file,
``project.postgresql``, holding the URL without a password: libpq takes the password from
``PGPASSWORD`` or ``~/.pgpass``. Writers take turns as on SQLite (a transaction-scoped
advisory lock stands for SQLite's write lock), so a read-change-write is never interleaved.
A URL may name a schema (``?options=-csearch_path%3Dname``) to keep several projects apart.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ml.project.db import SCHEMA, Database
from ml.project.files import POINTER_NAME, ProjectError

_LOCK_ID = 0x62327044  # the advisory lock every writer of a project takes ("b2pD")
PG_SCHEMA = (SCHEMA.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
             .replace("REAL", "DOUBLE PRECISION")
             .replace("image_id INTEGER", "image_id BIGINT")
             + "CREATE TABLE IF NOT EXISTS changes (n BIGINT NOT NULL);\n"
             "INSERT INTO changes (n) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM changes);\n")


def without_password(url: str) -> str:
    """``url`` with any password taken out (it is never stored in the project)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def is_url(text: str) -> bool:
    return text.startswith(("postgresql://", "postgres://"))


def _psycopg():
    try:
        import psycopg
    except ImportError:
        raise ProjectError("this project's database is on PostgreSQL: install the driver "
                           "with pip install 'boxes2pixels[postgresql]'") from None
    return psycopg


class PgDatabase(Database):
    """:class:`Database` on a PostgreSQL server (the same calls; ``?`` marks become ``%s``)."""

    BACKUP_SUFFIX = ".sql"  # pg_dump's plain SQL

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = without_password(url)  # what messages name (never a password)
        self._local = threading.local()

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            psycopg = _psycopg()
            try:
                conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            except psycopg.Error as e:
                raise ProjectError(f"{without_password(self.url)}: cannot reach the project "
                                   f"database ({str(e).strip()})") from None
            self._local.conn, self._local.depth, self._local.own = conn, 0, 0
        return conn

    def _explain(self, e: Exception) -> ProjectError:
        text = str(e).strip()
        if "relation" in text and "does not exist" in text:  # the schema dropped, or lost
            return ProjectError(f"{without_password(self.url)}: the project's tables are not "
                                f"there ({text.splitlines()[0]}); bring a backup back with "
                                f"'b2p restore PROJECT DUMP' (b2p backup writes one)")
        return ProjectError(f"{without_password(self.url)}: database error ({text})")

    def init_schema(self) -> None:
        """Create the tables (and the URL's schema); refused where a project already is."""
        name = schema_name(self.url)
        if name is not None:
            self.q(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
        if self.q("SELECT to_regclass('settings')")[0][0] is not None and \
                self.q("SELECT count(*) FROM settings")[0][0]:
            raise ProjectError(f"{self.path}: this database already holds a project; name "
                               f"another database or schema")
        with self.write():
            for stmt in PG_SCHEMA.split(";"):
                if stmt.strip():
                    self.q(stmt)

    def q(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        psycopg = _psycopg()
        try:
            cur = self._conn().execute(sql.replace("?", "%s"), tuple(params))
            return cur.fetchall() if cur.description is not None else []
        except psycopg.Error as e:
            raise self._explain(e) from None

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        psycopg = _psycopg()
        if not rows:
            return
        try:
            with self._conn().cursor() as cur:
                cur.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])
        except psycopg.Error as e:
            raise self._explain(e) from None

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.q(f"{sql} RETURNING id", params)[0][0])

    def ids_taken(self, table: str) -> None:
        self.q(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
               f"(SELECT COALESCE(max(id), 0) + 1 FROM {table}), false)")

    @contextmanager
    def write(self) -> Iterator[None]:
        """As :meth:`Database.write`: one transaction, nested blocks savepoints; the outermost
        takes the project's write lock and counts a change for the others' polls."""
        conn = self._conn()
        depth = self._local.depth
        if depth == 0:
            self.q("BEGIN")
            self.q("SELECT pg_advisory_xact_lock(?)", (_LOCK_ID,))
        else:
            self.q(f"SAVEPOINT s{depth}")
        self._local.depth = depth + 1
        try:
            yield
            if depth == 0:
                self.q("UPDATE changes SET n = n + 1")
        except BaseException:
            self._local.depth = depth
            try:
                conn.execute("ROLLBACK" if depth == 0 else f"ROLLBACK TO SAVEPOINT s{depth}")
            except Exception:  # the connection is gone: the server rolled it back
                pass
            raise
        self._local.depth = depth
        self.q("COMMIT" if depth == 0 else f"RELEASE SAVEPOINT s{depth}")
        if depth == 0:
            self._local.own += 1

    def commit_now(self) -> None:
        if self.in_write():
            self.q("UPDATE changes SET n = n + 1")
            self.q("COMMIT")
            self._local.own += 1
            self.q("BEGIN")
            self.q("SELECT pg_advisory_xact_lock(?)", (_LOCK_ID,))

    def data_version(self) -> int:
        """Changes counted by the others: every write counts one, less this connection's."""
        self._conn()
        return int(self.q("SELECT n FROM changes")[0][0]) - self._local.own

    def backup_to(self, out: str | Path) -> Path:
        """``pg_dump`` of the project's schema to ``out`` (consistent while others write;
        written whole or not at all); ``b2p restore`` puts it back (ml.project.pg_backup)."""
        exe = tool("pg_dump")
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.part")
        done = subprocess.run([exe, "--no-owner", "-n", quote(project_schema(self)), "-f",
                               str(tmp), self.url], capture_output=True, text=True)
        if done.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise ProjectError(f"pg_dump: {done.stderr.strip()[-500:]}")
        tmp.replace(out)
        return out


def read_pointer(root: Path) -> str | None:
    """The database URL a project folder points at, if it is on PostgreSQL."""
    f = root / POINTER_NAME
    if not f.is_file():
        return None
    url = f.read_text(encoding="utf-8").strip()
    return url if is_url(url) else None


def write_pointer(root: Path, url: str) -> None:
    from ml.common.atomic import atomic_write_bytes

    atomic_write_bytes(root / POINTER_NAME, (without_password(url) + "\n").encode())


def schema_name(url: str) -> str | None:
    """The schema a URL's options name (``-csearch_path=NAME``), if any."""
    m = re.search(r"search_path(?:%3D|=)([A-Za-z0-9_]+)", url)
    return m.group(1) if m else None


def project_schema(db: PgDatabase) -> str:
    """The schema the project's tables live in (its URL's, else the server's default)."""
    return schema_name(db.url) or db.q("SELECT current_schema()")[0][0] or "public"


def tool(name: str) -> str:
    """The path of one of PostgreSQL's client programs, or a ProjectError saying how to get it."""
    exe = shutil.which(name)
    if exe is None:
        raise ProjectError(f"{name} is not installed (PostgreSQL's client tools: apt-get "
                           f"install postgresql-client)")
    return exe


def quote(name: str) -> str:
    """``name`` as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
