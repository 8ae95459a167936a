"""Putting a backup of a project on PostgreSQL back: ``b2p restore`` of a ``pg_dump``.

A backup is ``pg_dump``'s plain SQL of the project's schema only (others on the server are
not the project's), consistent while others write (:meth:`PgDatabase.backup_to`).
:func:`restore_dump` loads it through ``psql`` in ONE transaction that first moves the
project's tables aside into a schema of their own (``SCHEMA_replaced_STAMP``, kept, as SQLite
keeps the file it replaced): any error rolls all of it back, so a failed restore leaves the
project exactly as it was.
"""

from __future__ import annotations

import datetime as _dt
import re
import subprocess
import tempfile
from pathlib import Path

from ml.project.files import ProjectError
from ml.project.pg import _LOCK_ID, PG_SCHEMA, PgDatabase, project_schema, quote, tool

TABLES = tuple(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", PG_SCHEMA))  # the project's
_HEAD = "-- PostgreSQL database dump"
_FOOT = "-- PostgreSQL database dump complete"
_NAME = r'("?)([A-Za-z_][A-Za-z0-9_$]*)\1'  # a schema name as pg_dump writes it


def dumped_schema(src: Path) -> str:
    """The schema a project's dump holds; a :class:`ProjectError` saying why ``src`` is not a
    whole dump of a project (another kind of file, cut short, not a project's tables)."""
    try:
        with open(src, "rb") as f:
            head = f.read(64)
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read().decode("utf-8", "replace")
        text_head = head.decode("utf-8", "replace")
    except OSError as e:
        raise ProjectError(f"{src}: cannot read the backup ({e})") from None
    if head.startswith(b"SQLite format 3"):
        raise ProjectError(f"{src}: a SQLite backup, but this project's database is on "
                           f"PostgreSQL; restore a 'b2p backup' dump of it")
    if head.startswith(b"PGDMP"):
        raise ProjectError(f"{src}: a pg_dump archive; make it plain SQL first with "
                           f"'pg_restore -f OUT.sql {src}'")
    if _HEAD not in text_head:
        raise ProjectError(f"{src}: not a PostgreSQL dump (b2p backup writes one)")
    if _FOOT not in tail:
        raise ProjectError(f"{src}: the dump is incomplete (it was cut short: no '{_FOOT}' "
                           f"at its end); nothing was restored")
    found: dict[str, str] = {}
    with open(src, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(rf"CREATE TABLE {_NAME}\.(\w+) \(", line)
            if m and m.group(3) in ("images", "settings"):
                found[m.group(3)] = m.group(2)
            if len(found) == 2:
                break
    if len(found) < 2 or len(set(found.values())) != 1:
        raise ProjectError(f"{src}: not a dump of a project (no images and settings tables)")
    return found["images"]


def restore_dump(db: PgDatabase, src: Path) -> str | None:
    """Put the dump ``src`` in place of the project's tables, in one transaction; the schema
    the replaced tables were kept in (None where there were none: its schema was lost)."""
    exe = tool("psql")
    theirs = dumped_schema(src)
    ours = project_schema(db)
    exists = bool(db.q("SELECT 1 FROM pg_namespace WHERE nspname = ?", (theirs,)))
    if theirs != ours and db.q("SELECT to_regclass(?)", (f"{quote(theirs)}.settings",))[0][0]:
        raise ProjectError(f"{src}: this dump is of the project in schema '{theirs}', which "
                           f"holds another project on {db.path}; nothing was restored")
    kept = f"{ours}_replaced_{_dt.datetime.now():%Y%m%d_%H%M%S_%f}"[:63]
    present = [r[0] for r in db.q(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
        "AND table_name = ANY(?)", (ours, list(TABLES)))]
    before = [r"\set ON_ERROR_STOP on", "SET client_min_messages = warning;", "BEGIN;",
              f"SELECT pg_advisory_xact_lock({_LOCK_ID});",
              f"CREATE SCHEMA IF NOT EXISTS {quote(ours)};"]
    if present:
        before.append(f"CREATE SCHEMA {quote(kept)};")
    before += [f"ALTER TABLE {quote(ours)}.{t} SET SCHEMA {quote(kept)};" for t in present]
    after = []
    if theirs != ours:  # the dump fills its own schema: its tables move into the project's
        after += [f"ALTER TABLE IF EXISTS {quote(theirs)}.{t} SET SCHEMA {quote(ours)};"
                  for t in TABLES]
        if not exists:
            after.append(f"DROP SCHEMA {quote(theirs)};")
    if "changes" in present:  # other windows' polls see a change, whatever the dump counted
        after.append(f"UPDATE {quote(ours)}.changes SET n = "
                     f"(SELECT max(n) FROM {quote(kept)}.changes) + 1;")
    after.append("COMMIT;")
    there = exists or theirs == ours  # the dump's CREATE SCHEMA would fail: left out
    skip = {f"CREATE SCHEMA {theirs};", f"CREATE SCHEMA {quote(theirs)};"} if there else set()
    _run_psql(exe, db, src, before, after, skip)
    return kept if present else None


def _run_psql(exe: str, db: PgDatabase, src: Path, before: list[str], after: list[str],
              skip: set[str]) -> None:
    """Feed psql the statements ``before``, the dump (less the lines in ``skip``) and
    ``after`` as one session; a ProjectError with psql's words if it stopped at an error."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([exe, "-X", "-q", "-d", db.url], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            proc.stdin.write(("\n".join(before) + "\n").encode())
            with open(src, "rb") as f:
                for line in f:
                    if line.rstrip(b"\r\n").decode("utf-8", "replace") not in skip:
                        proc.stdin.write(line)
            proc.stdin.write(("\n" + "\n".join(after) + "\n").encode())
            proc.stdin.close()
        except BrokenPipeError:  # psql stopped at an error: its message is in err
            pass
        rc = proc.wait()
        err.seek(0)
        words = err.read().decode("utf-8", "replace").strip()
    if rc != 0:
        words = " ".join(w.strip() for w in words.splitlines())[-500:] or f"psql exit {rc}"
        raise ProjectError(f"{src}: cannot restore it on {db.path} ({words}); "
                           f"nothing was changed, the project is as it was")
