"""Move a project's index from its SQLite file to a PostgreSQL server (``b2p migrate``)."""

from __future__ import annotations

import datetime as _dt
import os

from ml.project.files import DB_NAME, ProjectError
from ml.project.legacy import fill
from ml.project.pg import PgDatabase, is_url, write_pointer
from ml.project.store import Project


def move_to_postgresql(project: Project, url: str) -> Project:
    """Copy every record, class, setting and audit entry of ``project`` to the database at
    ``url`` (empty), then point the folder at it; the SQLite file is kept beside, renamed
    ``project.sqlite.moved-STAMP``. Close the GUI and workers on the project first."""
    if not is_url(url):
        raise ProjectError(f"'{url}' is not a postgresql:// URL")
    if isinstance(project.db, PgDatabase):
        raise ProjectError(f"{project.root}: its database is already on a server")
    backup = project.auto_backup("migration")
    head = {"name": project.name, "created": project.created,
            "image_root": project.image_root_raw, "split": project.split,
            "settings": project.settings}
    server = PgDatabase(url)
    server.init_schema()
    fill(server, head, project.classes, project.records())
    trail = project.db.q("SELECT at, who, image, action, detail FROM audit ORDER BY id")
    with server.write():
        server.many("INSERT INTO audit (at, who, image, action, detail) VALUES (?, ?, ?, ?, ?)",
                    trail)
    root = project.root
    project.close()
    write_pointer(root, url)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.replace(root / DB_NAME, root / f"{DB_NAME}.moved-{stamp}")
    moved = Project.open(root)
    moved.warnings.append(f"moved to {server.path}; the SQLite file is kept as "
                          f"{DB_NAME}.moved-{stamp}" + (f" (and backed up to {backup})"
                                                         if backup else ""))
    return moved
