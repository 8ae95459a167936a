"""The project database: b2p backup, restore, migrate (to PostgreSQL), audit."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli import CLIError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backup", help="copy the project database (safe while the GUI is open)",
                       description="A consistent copy taken while others may be writing: "
                                   "SQLite's online backup API (a .sqlite file), or pg_dump of "
                                   "the project's schema for a project on PostgreSQL (a .sql "
                                   "file). Mask PNGs are files beside it and are not copied.")
    p.add_argument("project", type=Path)
    p.add_argument("out", type=Path, nargs="?",
                   help="file or folder (default: PROJECT/backups/)")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="put a backup in place of the project database",
                       description="Close the GUI and workers on the project first. What "
                                   "it replaces is kept: SQLite's file beside it, PostgreSQL's "
                                   "tables in a schema SCHEMA_replaced_STAMP. A restore that "
                                   "fails changes nothing.")
    p.add_argument("project", type=Path)
    p.add_argument("backup", type=Path, nargs="?",
                   help="the backup file (default: the newest in PROJECT/backups/)")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("migrate", help="move the project's index to a PostgreSQL server",
                       description="Copies every record, class and decision of the project's "
                                   "SQLite file to an empty PostgreSQL database and points "
                                   "the folder at it (docs/SCALING.md). Close the GUI first.")
    p.add_argument("project", type=Path)
    p.add_argument("--to", required=True, metavar="URL", help="postgresql://HOST/DB")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("audit", help="who decided what, and when (newest first)")
    p.add_argument("project", type=Path)
    p.add_argument("--key", help="one photo's decisions")
    p.add_argument("-n", type=int, default=50, help="how many (default: 50)")
    p.set_defaults(func=cmd_audit)


def cmd_backup(args: argparse.Namespace) -> int:
    from ml.project.files import BACKUP_DIR
    from ml.project.store import Project

    proj = Project.open(args.project)
    out = proj.backup(args.out if args.out is not None else proj.root / BACKUP_DIR)
    print(f"backed up {proj.root} to {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from ml.project.backups import restore
    from ml.project.store import Project

    src = restore(args.project, args.backup)
    proj = Project.open(args.project)
    print(f"restored {proj.root} from {src}: {len(proj.images)} photos")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from ml.project.move import move_to_postgresql
    from ml.project.store import Project

    moved = move_to_postgresql(Project.open(args.project), args.to)
    print(f"{moved.root}: {len(moved.images)} photos now on {moved.db.path}; "
          f"{moved.warnings[-1]}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    import json

    from ml.project.store import Project

    proj = Project.open(args.project)
    if args.key is not None and args.key not in proj.images:
        raise CLIError(f"no photo '{args.key}' in {proj.root}")
    for e in proj.audit(args.key, args.n):
        detail = json.dumps(e["detail"], ensure_ascii=False)
        print(f"{e['at']}  {e['by']:12s} {e['action']:12s} {e['key'] or '-'}  "
              f"{detail[:120]}")
    return 0
