"""``b2p history PROJECT``: each defect across inspections (new, grown, stable, shrunk, gone)."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli import CLIError
from app.cli._export import SOURCES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "history", help="match findings across inspections: new / grown / stable / gone",
        description="Compare each inspection of a project (photos grouped by their inspection "
                    "date, else their capture dates) with the one before: findings matched "
                    "on turbine, blade, side and radius, and by region overlap after "
                    "registering the earlier photo onto the new one. A status with '?' was "
                    "matched by position only.")
    p.add_argument("project", type=Path)
    p.add_argument("--previous", type=Path, action="append", default=[], metavar="PROJECT",
                   help="an older inspection's project to compare with (repeatable)")
    p.add_argument("--since", metavar="DATE",
                   help="compare the latest inspection with this one ('DATE #2' for the second "
                        "inspection of one day)")
    p.add_argument("--tolerance", type=float, default=1.0, metavar="M",
                   help="radius tolerance for a match, metres (default: 1.0; the radii's "
                        "uncertainty is added)")
    p.add_argument("--source", choices=SOURCES, default="student",
                   help="masks to read (default: student, else the teacher's)")
    p.add_argument("--csv", type=Path, metavar="FILE", help="also write every change as CSV")
    p.add_argument("--set-inspection", metavar="DATE",
                   help="say the photos of --where belong to the inspection of DATE, then list")
    p.add_argument("--where", metavar="GLOB", help="with --set-inspection: photos whose key "
                                                   "matches, e.g. '2025/*'")
    p.set_defaults(func=cmd_history)


def cmd_history(args: argparse.Namespace) -> int:
    from app.cli._meta import _keys
    from app.cli._progress import tqdm_progress
    from ml.common.atomic import atomic_write_text
    from ml.findings.history import project_history
    from ml.findings.history_csv import history_csv, history_table
    from ml.findings.inspections import set_inspection
    from ml.project.store import Project

    if args.tolerance < 0:
        raise CLIError(f"--tolerance must be >= 0, got {args.tolerance}")
    proj = Project.open(args.project)
    if args.set_inspection:
        if not args.where:
            raise CLIError("--set-inspection needs --where GLOB (the photos of that inspection)")
        n = set_inspection(proj, args.set_inspection, _keys(proj, args.where))
        print(f"{n} photo(s) belong to the inspection of {args.set_inspection}")
    elif args.where:
        raise CLIError("--where goes with --set-inspection")
    previous = [Project.open(p) for p in args.previous]
    with tqdm_progress("history") as bar:
        hist = project_history(proj, previous, args.source, args.tolerance, args.since,
                               progress=bar)
    for comp in hist.comparisons:
        print(f"\n{comp.current.name} since {comp.earlier.name}")
        print(history_table(comp) if comp.changes else "no findings in either inspection")
        for (old, new), why in comp.failed_registrations().items():
            print(f"not registered: {old} -> {new}: {why}")
    if hist.unplaced:
        print("\nunplaced (no turbine or blade; set them with b2p meta): "
              + ", ".join(hist.unplaced))
    for key, why in hist.failed.items():
        print(f"error: {key}: {why}")
    print("\n" + hist.summary())
    if len(hist.inspections) < 2:
        print("one inspection only: nothing to compare (b2p history --help)")
    if args.csv is not None:
        atomic_write_text(args.csv, history_csv(hist.comparisons))
        print(f"csv: {args.csv}")
    return 1 if hist.failed else 0
